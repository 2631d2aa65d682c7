"""The batch pipeline: walk → load → chunk → embed → upsert, incremental and resumable."""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_pipeline.chunking.splitter import Chunker, embedding_text
from rag_pipeline.embedding.base import Embedder
from rag_pipeline.errors import ConfigError, LoaderError, ModelMismatchError, RagError
from rag_pipeline.loaders import is_supported, load_file
from rag_pipeline.store.base import StoredPoint, VectorStore
from rag_pipeline.types import Chunk, Document

# Embedding many files' chunks in one call lets the model sort them by length and fill
# its batches; a few hundred chunks keeps memory bounded.
EMBED_GROUP = 256
_STATE_FIELDS = ["source", "file_hash", "file_chunks", "root"]

ProgressCallback = Callable[[str, str], None]


@dataclass
class IndexReport:
    """What an indexing run did, file by file."""

    knowledge_id: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        """Sources that could not be indexed."""
        return [e["path"] for e in self.errors]

    @property
    def ok(self) -> bool:
        """True when every file was indexed."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape printed by ``rag index --json``."""
        return {
            "knowledge_id": self.knowledge_id,
            "files": {
                "added": len(self.added),
                "updated": len(self.updated),
                "skipped": len(self.skipped),
                "deleted": len(self.deleted),
                "failed": len(self.errors),
            },
            "chunks": {"added": self.chunks_added, "deleted": self.chunks_deleted},
            "errors": list(self.errors),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Prepared:
    source: str
    file_hash: str
    chunks: list[Chunk]
    status: str  # "added" or "updated"


def walk_files(root: Path) -> Iterator[Path]:
    """Yield supported files under ``root`` in a stable order, skipping hidden entries."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and is_supported(path):
                yield path


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Indexer:
    """Index a folder or file into one knowledge collection, re-embedding only changes."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        chunker: Chunker,
        *,
        sparse_encoder: Any = None,
        max_file_bytes: int | None = None,
        workers: int = 2,
    ) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.sparse_encoder = sparse_encoder
        self.max_file_bytes = max_file_bytes
        self.workers = workers
        self._dimension = 0

    def _existing(self, knowledge_id: str) -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {}
        for point_id, payload, _ in self.store.scroll_payloads(knowledge_id, _STATE_FIELDS):
            entry = state.setdefault(
                payload.get("source", ""),
                {"hashes": set(), "ids": [], "chunks": set(), "root": payload.get("root")},
            )
            entry["hashes"].add(payload.get("file_hash"))
            entry["chunks"].add(payload.get("file_chunks"))
            entry["ids"].append(point_id)
        return state

    def _open(self, knowledge_id: str) -> dict[str, dict[str, Any]]:
        info = self.store.collection_info(knowledge_id)
        if info is None or info.model != self.embedder.model_name:
            # Knowing the dimension may mean loading a model; a re-run that finds
            # nothing changed should not pay for that, so only ask when creating.
            info = self.store.ensure_collection(
                knowledge_id, model=self.embedder.model_name, dimension=self.embedder.dimension
            )
        self._dimension = info.dimension
        return self._existing(knowledge_id)

    @staticmethod
    def _unchanged(before: dict[str, Any] | None, content_hash: str) -> bool:
        # Every chunk must carry the new hash and all of them must be there: a run cut
        # off mid-file leaves a mix or a short count, and the file is done again.
        return (
            before is not None
            and before["hashes"] == {content_hash}
            and before["chunks"] == {len(before["ids"])}
        )

    def index(
        self,
        path: str | os.PathLike[str],
        knowledge_id: str,
        *,
        progress: ProgressCallback | None = None,
        prune: bool = True,
        extra_payload: dict[str, Any] | None = None,
    ) -> IndexReport:
        """Index ``path`` into ``knowledge_id``; ``prune`` removes files no longer there.

        ``extra_payload`` is stored with every chunk written (e.g. a server's file id).
        """
        started = time.perf_counter()
        root = Path(path).resolve()
        if not root.exists():
            raise ConfigError(f"no such file or folder: {path}")
        report = IndexReport(knowledge_id=knowledge_id)
        existing = self._open(knowledge_id)
        base = root.parent if root.is_file() else root

        def prepare(file: Path, source: str) -> _Prepared | None:
            try:
                file_hash = file_sha256(file)
            except OSError as exc:
                raise LoaderError(source, f"cannot read file: {exc.strerror or exc}") from exc
            before = existing.get(source)
            if self._unchanged(before, file_hash):
                return None
            documents = load_file(file, source=source, max_bytes=self.max_file_bytes)
            return self._prepare(source, file_hash, documents, before)

        tasks = (
            (source, functools.partial(prepare, f, source))
            for f in walk_files(root)
            for source in [f.relative_to(base).as_posix()]
        )
        self._run(knowledge_id, tasks, existing, report, str(root), progress, extra_payload, prune)
        report.seconds = time.perf_counter() - started
        return report

    def index_documents(
        self,
        items: Iterable[tuple[str, Sequence[Document]]],
        knowledge_id: str,
        *,
        progress: ProgressCallback | None = None,
        prune: bool = False,
        root: str = "documents",
        extra_payload: dict[str, Any] | None = None,
    ) -> IndexReport:
        """Index already-extracted documents, one ``(source, documents)`` item per source."""
        started = time.perf_counter()
        report = IndexReport(knowledge_id=knowledge_id)
        existing = self._open(knowledge_id)

        def prepare(source: str, documents: Sequence[Document]) -> _Prepared | None:
            digest = hashlib.sha256()
            for document in documents:
                digest.update(document.text.encode("utf-8"))
                digest.update(repr(sorted(document.metadata.items())).encode("utf-8"))
            content_hash = digest.hexdigest()
            before = existing.get(source)
            if self._unchanged(before, content_hash):
                return None
            return self._prepare(source, content_hash, documents, before)

        tasks = ((source, functools.partial(prepare, source, docs)) for source, docs in items)
        self._run(knowledge_id, tasks, existing, report, root, progress, extra_payload, prune)
        report.seconds = time.perf_counter() - started
        return report

    def _prepare(
        self,
        source: str,
        content_hash: str,
        documents: Sequence[Document],
        before: dict[str, Any] | None,
    ) -> _Prepared:
        chunks = self.chunker.split(documents, source)
        if not chunks:
            raise LoaderError(source, "no text to index after chunking")
        return _Prepared(source, content_hash, chunks, "updated" if before else "added")

    def _run(
        self,
        knowledge_id: str,
        tasks: Iterator[tuple[str, Callable[[], _Prepared | None]]],
        existing: dict[str, dict[str, Any]],
        report: IndexReport,
        root_key: str,
        progress: ProgressCallback | None,
        extra_payload: dict[str, Any] | None,
        prune: bool,
    ) -> None:
        notify = progress or (lambda source, status: None)
        extra = dict(extra_payload or {})
        seen: set[str] = set()
        pending: list[_Prepared] = []
        window: deque[tuple[str, Future[_Prepared | None]]] = deque()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while True:
                # Load a few files ahead of the embedder, never the whole folder:
                # memory stays bounded however many files there are.
                while len(window) < self.workers * 4:
                    task = next(tasks, None)
                    if task is None:
                        break
                    window.append((task[0], pool.submit(task[1])))
                if not window:
                    break
                source, future = window.popleft()
                seen.add(source)
                try:
                    prepared = future.result()
                except RagError as exc:
                    report.errors.append({"path": source, "error": _reason(exc)})
                    notify(source, "failed")
                    continue
                except Exception as exc:  # a loader library bug must not stop the batch
                    report.errors.append({"path": source, "error": f"{type(exc).__name__}: {exc}"})
                    notify(source, "failed")
                    continue
                if prepared is None:
                    report.skipped.append(source)
                    notify(source, "skipped")
                    continue
                pending.append(prepared)
                if sum(len(p.chunks) for p in pending) >= EMBED_GROUP:
                    self._write(knowledge_id, pending, existing, report, root_key, notify, extra)
                    pending = []
            self._write(knowledge_id, pending, existing, report, root_key, notify, extra)
        if prune:
            for source, entry in existing.items():
                # Only sources indexed from this same root are ours to remove.
                if source not in seen and entry.get("root") in (root_key, None):
                    self.store.delete_points(knowledge_id, entry["ids"])
                    report.deleted.append(source)
                    report.chunks_deleted += len(entry["ids"])
                    notify(source, "deleted")

    def _write(
        self,
        knowledge_id: str,
        batch: Sequence[_Prepared],
        existing: dict[str, dict[str, Any]],
        report: IndexReport,
        root_key: str,
        notify: ProgressCallback,
        extra: dict[str, Any],
    ) -> None:
        if not batch:
            return
        chunks = [c for p in batch for c in p.chunks]
        texts = [embedding_text(c) for c in chunks]
        try:
            vectors = self.embedder.embed_documents(texts)
            if vectors.shape[1] != self._dimension:
                raise ModelMismatchError(
                    f"{self.embedder.model_name!r} returned {vectors.shape[1]}-dimensional "
                    f"vectors but collection {knowledge_id!r} holds {self._dimension}: "
                    "index into a new knowledge id"
                )
        except ModelMismatchError:
            raise
        except RagError as exc:
            for prepared in batch:
                report.errors.append({"path": prepared.source, "error": _reason(exc)})
                notify(prepared.source, "failed")
            return
        sparse = (
            [self.sparse_encoder.embed_document(t) for t in texts] if self.sparse_encoder else None
        )
        offset = 0
        for prepared in batch:
            points = []
            for chunk in prepared.chunks:
                payload = {**chunk.metadata, **extra}
                payload.update(
                    text=chunk.text,
                    source=chunk.source,
                    chunk_index=chunk.index,
                    file_hash=prepared.file_hash,
                    file_chunks=len(prepared.chunks),
                    root=root_key,
                )
                points.append(
                    StoredPoint(
                        id=chunk.id,
                        vector=vectors[offset],
                        payload=payload,
                        sparse=sparse[offset] if sparse else None,
                    )
                )
                offset += 1
            # Write the new chunks first, then drop the old ones: a crash in between
            # leaves both (found and redone next run), never neither.
            self.store.upsert(knowledge_id, points)
            new_ids = {p.id for p in points}
            stale = [
                i for i in existing.get(prepared.source, {}).get("ids", []) if i not in new_ids
            ]
            self.store.delete_points(knowledge_id, stale)
            report.chunks_added += len(points)
            report.chunks_deleted += len(stale)
            getattr(report, prepared.status).append(prepared.source)
            notify(prepared.source, prepared.status)


def _reason(exc: RagError) -> str:
    if isinstance(exc, LoaderError):
        return exc.reason
    return str(exc)
