"""The staged run: plan → prepare (worker processes) → embed (batches across files) → write."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import itertools
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

import numpy as np

from rag_pipeline.chunking.splitter import Chunker
from rag_pipeline.embedding.base import Embedder, TokenIdEmbedder
from rag_pipeline.embedding.choice import EmbedderChoice
from rag_pipeline.embedding.tokens import TokenSpec, token_spec_of
from rag_pipeline.errors import ConfigError, ModelMismatchError, RagError
from rag_pipeline.ingest.ledger import IdDigest, Ledger
from rag_pipeline.ingest.prepare import (
    Failed,
    Paged,
    PrepareConfig,
    Prepared,
    Preparer,
    init_worker,
    prepare_batch_in_worker,
    read_page_in_worker,
    reason,
)
from rag_pipeline.ingest.report import IndexReport, ProgressCallback
from rag_pipeline.ingest.sources import SourceItem, walk_files
from rag_pipeline.languages import NO_LETTERS
from rag_pipeline.loaders import PAGED_SUFFIXES, LoadLimits, PageRef, finish, is_supported
from rag_pipeline.store.base import StoredPoint, VectorStore
from rag_pipeline.types import Document

if TYPE_CHECKING:
    from rag_pipeline.pipeline import Pipeline

# Chunks embedded per call: many files' chunks together let the model sort them by length
# and fill its batches; a few hundred keeps memory bounded.
EMBED_GROUP = 256
# A run with at most this many changed sources prepares them in this process: starting
# worker processes costs more than a couple of files take.
INLINE_MAX = 2
# Sources per worker task, up to this many bytes: small files go in groups.
TASK_SOURCES = 16
TASK_BYTES = 1 << 20
# Worker pools rebuilt after crashes before the run goes on without workers.
MAX_POOL_RESTARTS = 8
log = logging.getLogger(__name__)
_STATE_FIELDS = ["source", "key", "file_hash", "file_chunks", "file_stat", "root"]
# Values per "any of" filter when a run reads the stored state of its own items.
_STATE_SLICE = 500
# Items whose stored state is read together when a run names its items (not prune).
_STATE_WINDOW = 2_000


_Task = tuple[SourceItem, str, str]
T = TypeVar("T")
# Progress events of OCR: a page found to need it, a page read.
OCR_QUEUED, OCR_READ = "ocr_queued", "ocr_page"


@dataclass(frozen=True, slots=True)
class _PageEvent:
    source: str
    status: str


@dataclass
class _Scan:
    """A source whose pages are being OCR'd across the workers."""

    paged: Paged
    read: list[Document | None] = field(default_factory=list)
    waiting: int = 0  # pages queued or in flight
    error: str | None = None


def _batches(planned: Iterator[_Task]) -> Iterator[list[_Task]]:
    """Group small sources into one worker task: a task costs ~0.3 ms of pickling and IPC."""
    batch: list[_Task] = []
    size = 0
    for task in planned:
        batch.append(task)
        size += task[0].size()
        if len(batch) >= TASK_SOURCES or size >= TASK_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _may_ocr(task: _Task) -> bool:
    """Whether a source may have pages to OCR (a PDF or an image file)."""
    path = task[0].path
    return path is not None and path.suffix.lower() in PAGED_SUFFIXES


def _quietly(load: Callable[[], object]) -> None:
    """Run a background model load; a failure shows again, with its reason, at first use."""
    try:
        load()
    except Exception:  # the embedding stage meets it again and reports it per source
        log.debug("preloading the model failed", exc_info=True)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a run builds the big, acyclic and
    long-lived structures of a folder (its items, its stored state per source).

    Collections triggered by those allocations find nothing to free and re-scan all of
    them as they grow: 0.65 s of a 4.6 s re-run of 100k files (the whole re-run with the
    collector off: 3.9 s). Reference counting still frees everything that is dropped.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def default_workers() -> int:
    """Worker processes for extraction: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _Run:
    """The state of one run, shared by its stages."""

    knowledge_id: str
    existing: dict[str, dict[str, Any]]
    report: IndexReport
    root_key: str
    extra: dict[str, Any]
    notify: ProgressCallback
    # None until a new collection's embedder is chosen from its first chunks (auto).
    embedder: Embedder | None
    dimension: int
    # Whether state stays after planning (prune reads it all and needs it at the end).
    keep_state: bool = True
    # Quick keys (SourceItem.quick_key) of changed files, stored with their chunks.
    stats: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    preload: threading.Thread | None = None
    # The collection's ledger (None: the store keeps none), whether ``existing`` came from
    # it, and whether this run has written to the collection.
    ledger: Ledger | None = None
    trusted: bool = False
    changed: bool = False
    # With a trusted ledger: its ids' digest kept up to date, and the sources whose rows
    # changed or went (the ledger is then saved by those rows alone).
    digest: IdDigest | None = None
    touched: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    def before_write(self) -> None:
        """Called before each write to the collection: the first marks the ledger dirty."""
        with self.lock:
            self.changed = True
            if self.ledger is not None:
                self.ledger.mark_dirty()

    def stored(self, prepared: Prepared, stat: str | None) -> None:
        """Keep a written source's new state (prune runs keep every source's state and
        write it to the ledger at the end)."""
        if self.keep_state:
            ids = [chunk.id for chunk in prepared.chunks]
            with self.lock:
                before = self.existing.get(prepared.source)
                self.existing[prepared.source] = {
                    "hashes": {prepared.fingerprint},
                    "ids": ids,
                    "chunks": {len(prepared.chunks)},
                    "stats": {stat},
                    "root": self.root_key,
                }
                self.touched.add(prepared.source)
                if self.digest is not None:
                    self.digest.remove(before["ids"] if before else ())
                    self.digest.add(ids)

    def forget(self, source: str) -> dict[str, Any]:
        """Drop a removed source's state and return it."""
        with self.lock:
            entry = self.existing.pop(source)
            self.touched.discard(source)
            self.removed.add(source)
            if self.digest is not None:
                self.digest.remove(entry["ids"])
        return entry

    def record(self, source: str, status: str, error: str | None = None) -> None:
        """Note what happened to a source, in the report and the progress callback."""
        with self.lock:
            if error is not None:
                self.report.errors.append({"path": source, "error": error})
            else:
                getattr(self.report, status).append(source)
            self.notify(source, status)

    def page(self, source: str, status: str) -> None:
        """Note a page queued for OCR or read (the progress bar counts pages too)."""
        with self.lock:
            if status == OCR_READ:
                self.report.pages_ocr += 1
            self.notify(source, status)

    def written(self, source: str, status: str, chunks: int, deleted: int) -> None:
        """Note a source whose ``chunks`` were stored and ``deleted`` stale ones removed."""
        with self.lock:
            self.report.chunks_added += chunks
            self.report.chunks_deleted += deleted
            self.report.chunk_counts[source] = chunks
        self.record(source, status)


class _Stage(Generic[T]):
    """One stage of a run on its own thread, fed through a short queue.

    ``put`` blocks while ``depth`` items wait (the slower stage sets the pace and memory
    stays bounded); the first error the thread meets is raised in the feeding thread by
    the next ``put`` or by ``close``, and what is queued after it is dropped.
    """

    def __init__(self, name: str, handle: Callable[[T], None], depth: int = 2) -> None:
        self._handle = handle
        self._queue: queue.Queue[tuple[T] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        """Queue an item; blocks while the queue is full."""
        self._raise()
        self._queue.put((item,))

    def close(self) -> None:
        """Finish what is queued, stop the thread, and raise what it raised."""
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        while (work := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._handle(work[0])
                except BaseException as exc:  # handed to the feeding thread by _raise
                    self._error = exc


class _Writer(_Stage[tuple[list[Prepared], np.ndarray]]):
    """The write stage: upserts embedded batches while the next ones are embedded."""

    def __init__(self, store: VectorStore, run: _Run) -> None:
        self.store = store
        self.run = run
        super().__init__("rag-index-writer", lambda work: self._write(*work))

    def _write(self, batch: list[Prepared], vectors: np.ndarray) -> None:
        run = self.run
        old_ids = {p.source: run.existing.get(p.source, {}).get("ids", []) for p in batch}
        stats = {p.source: run.stats.pop(p.source, None) for p in batch}
        run.before_write()
        deleted = write_prepared(
            self.store,
            run.knowledge_id,
            batch,
            vectors,
            old_ids=old_ids,
            extra=run.extra,
            root_key=run.root_key,
            stats=stats,
        )
        for prepared, stale in zip(batch, deleted, strict=True):
            run.stored(prepared, stats[prepared.source])
            run.written(prepared.source, prepared.status, len(prepared.chunks), stale)


def write_prepared(
    store: VectorStore,
    knowledge_id: str,
    batch: list[Prepared],
    vectors: np.ndarray,
    *,
    old_ids: Mapping[str, Sequence[str]],
    extra: Mapping[str, Any],
    root_key: str,
    stats: Mapping[str, str | None] | None = None,
) -> list[int]:
    """Store embedded sources and remove their stale chunks; return how many went per source.

    ``old_ids`` are the point ids each source had before this run; ``stats`` the quick key
    of each file (``SourceItem.quick_key``) the next run may trust instead of hashing it.
    """
    points: list[StoredPoint] = []
    for prepared in batch:
        for chunk, sparse in zip(
            prepared.chunks, prepared.sparse or itertools.repeat(None), strict=False
        ):
            payload = {**chunk.metadata, **extra, **(prepared.payload or {})}
            if prepared.name != prepared.source:
                payload["key"] = prepared.source
            payload.update(
                text=chunk.text,
                source=prepared.name,
                chunk_index=chunk.index,
                file_hash=prepared.fingerprint,
                file_chunks=len(prepared.chunks),
                root=root_key,
            )
            if stats and stats.get(prepared.source):
                payload["file_stat"] = stats[prepared.source]
            points.append(StoredPoint(chunk.id, vectors[len(points)], payload, sparse))
    # One upsert for the whole batch, then each source's stale chunks: new chunks are
    # written before old ones go, so a crash in between leaves both (found and redone
    # next run), never neither.
    store.upsert(knowledge_id, points)
    deleted: list[int] = []
    for prepared in batch:
        new_ids = {c.id for c in prepared.chunks}
        stale = [i for i in old_ids.get(prepared.source, ()) if i not in new_ids]
        store.delete_points(knowledge_id, stale)
        deleted.append(len(stale))
    return deleted


def embed_prepared(
    embedder: Embedder, batch: list[Prepared], dimension: int, knowledge_id: str
) -> np.ndarray:
    """Embed the texts of prepared sources, in order; refuse vectors of another dimension.

    Token ids the workers made are used where the embedder takes them and they are its own
    (an auto run may have chosen another model since).
    """
    spec = token_spec_of(embedder) if batch and batch[0].token_ids is not None else None
    if spec is not None and all(p.token_ids is not None and p.tokens == spec for p in batch):
        ids = [i for p in batch for i in p.token_ids or ()]
        vectors = cast(TokenIdEmbedder, embedder).embed_token_ids(ids)
    else:
        vectors = embedder.embed_documents([t for p in batch for t in p.texts])
    if vectors.shape[1] != dimension:
        raise ModelMismatchError(
            f"{embedder.model_name!r} returned {vectors.shape[1]}-dimensional "
            f"vectors but collection {knowledge_id!r} holds {dimension}: "
            "index into a new knowledge id"
        )
    return vectors


class Indexer:
    """Index sources into one knowledge collection in stages, re-embedding only changes.

    Stages run at once: the calling thread plans (fingerprints, skips what is unchanged),
    ``workers`` processes load, chunk, sparse-encode and tokenise (GIL-bound Python), the
    calling thread groups their results into batches across files, a model thread embeds
    the batches, and a writer thread stores them. The store's write-ahead log is the
    durability: nothing is flushed per file.
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder | EmbedderChoice,
        chunker: Chunker,
        *,
        sparse_encoder: Any = None,
        limits: LoadLimits | None = None,
        workers: int | None = None,
        embed_group: int = EMBED_GROUP,
        checksum: bool = False,
    ) -> None:
        """``checksum``: hash every file, even one whose size, times and inode are as
        the last run stored them (``SourceItem.quick_key``; rsync's ``--checksum``)."""
        if workers is not None and workers < 0:
            raise ConfigError(f"workers must be >= 0 (0: no worker processes), got {workers}")
        if embed_group < 1:
            raise ConfigError(f"embed_group must be >= 1, got {embed_group}")
        self.store = store
        # A choice (RAG_EMBEDDER=auto) picks a new collection's model from its first
        # chunks; an existing collection keeps the one it was made with.
        self.choice: EmbedderChoice | None = None
        if isinstance(embedder, EmbedderChoice):
            self.choice, embedder = embedder, embedder.default
        self.embedder: Embedder = embedder
        self.chunker = chunker
        self.sparse_encoder = sparse_encoder
        self.limits = limits or LoadLimits()
        self.workers = default_workers() if workers is None else workers
        self.embed_group = embed_group
        self.checksum = checksum

    @classmethod
    def for_pipeline(cls, pipeline: Pipeline, *, workers: int | None = None, **extra: Any) -> Self:
        """One over a pipeline's parts and settings (``workers``: default the setting)."""
        settings = pipeline.settings
        return cls(
            pipeline.store,
            pipeline.choice or pipeline.embedder,
            pipeline.chunker,
            sparse_encoder=pipeline.sparse_encoder,
            limits=settings.load_limits(),
            workers=settings.workers if workers is None else workers,
            # Enough chunks per call to fill several of the model's batches after sorting.
            embed_group=max(EMBED_GROUP, 4 * settings.effective_batch_size),
            **extra,
        )

    def index(
        self,
        path: str | os.PathLike[str],
        knowledge_id: str,
        *,
        progress: ProgressCallback | None = None,
        on_total: Callable[[int], None] | None = None,
        prune: bool = True,
        extra_payload: dict[str, Any] | None = None,
    ) -> IndexReport:
        """Index a folder or file; ``prune`` removes files no longer there.

        ``on_total`` hears the number of files found (the folder is walked once);
        ``extra_payload`` is stored with every chunk written (e.g. a server's file id).
        """
        root = Path(path).resolve()
        if not root.exists():
            raise ConfigError(f"no such file or folder: {path}")
        base = root.parent if root.is_file() else root
        # Every file is listed, those no loader reads too: they are reported as failed, by
        # name and why, never skipped without a word.
        files = walk_files(root, supported_only=False)
        # The name under the folder, as f.relative_to(base).as_posix() gives it but by
        # slicing the string: pathlib's parsing cost 1.4 s of a 100k-file re-run (cProfile).
        prefix = len(str(base))
        with _collector_paused():
            items = [
                SourceItem.from_file(f, str(f)[prefix:].lstrip(os.sep).replace(os.sep, "/"))
                for f in files
            ]
        if on_total is not None:
            on_total(len(items))
        return self.run(
            items,
            knowledge_id,
            root_key=str(root),
            prune=prune,
            progress=progress,
            extra_payload=extra_payload,
        )

    def run(
        self,
        items: Iterable[SourceItem],
        knowledge_id: str,
        *,
        root_key: str = "documents",
        prune: bool = False,
        progress: ProgressCallback | None = None,
        extra_payload: dict[str, Any] | None = None,
    ) -> IndexReport:
        """Index source items; ``prune`` removes sources of ``root_key`` not among them."""
        started = time.perf_counter()
        report = IndexReport(knowledge_id=knowledge_id)
        # prune: the whole collection's stored state is read first (what is not among the
        # items goes). Otherwise only these sources' state is needed (a server's shared
        # uploads collection grows with every upload): read a window of items at a time,
        # just before they are planned, so a re-run of 500k items holds one window's state
        # and one window of items (listing them all measured a 6.4 GB peak at 540k).
        ledger = self._ledger(knowledge_id)
        with _collector_paused():
            existing, embedder, dimension, trusted = self._open(
                knowledge_id, None if prune else [], ledger
            )
        run = _Run(
            knowledge_id,
            existing,
            report,
            root_key,
            dict(extra_payload or {}),
            progress or (lambda source, status: None),
            embedder,
            dimension,
            keep_state=prune,
            ledger=ledger,
            trusted=trusted is not None,
            digest=None if trusted is None else IdDigest.parse(trusted),
        )
        if not prune:
            items = self._with_state(items, run)
        writer = _Writer(self.store, run)
        try:
            self._process(self._plan(items, run), run, writer)
        except KeyboardInterrupt:
            # Stop cleanly: batches already handed to the model or the writer are finished
            # (a source's chunks are written whole), nothing else starts, and the report
            # says so.
            report.interrupted = True
        finally:
            writer.close()
            if run.preload is not None:
                run.preload.join()
        if prune and not report.interrupted:
            self._prune(run)
        if run.embedder is None:
            # Nothing was embedded: the collection is made, as always, but with the
            # default model: there was no text to choose by.
            self._create(run, self.embedder)
        self.store.flush(knowledge_id)
        if prune and not report.interrupted and (run.changed or not run.trusted):
            self._save_ledger(run)
        report.sort()
        report.seconds = time.perf_counter() - started
        return report

    def _process(self, planned: Iterator[_Task], run: _Run, writer: _Writer) -> None:
        """Prepare the sources the plan yields and embed them in groups, for the writer."""
        # The model runs on its own thread: this one keeps taking the workers' results
        # and grouping the next batch meanwhile (on a GPU machine it did both in turn, and
        # the model waited; benchmarks/RESULTS.md, "GPU ingest").
        model: _Stage[list[Prepared]] = _Stage(
            "rag-index-model", lambda batch: self._embed(batch, run, writer)
        )
        try:
            self._group(planned, run, model)
        finally:
            model.close()  # what was handed over is embedded and written, even on Ctrl-C

    def _group(self, planned: Iterator[_Task], run: _Run, model: _Stage[list[Prepared]]) -> None:
        pending: list[Prepared] = []
        pending_chunks = 0
        for result in self._prepare(self._preloading(planned, run), run):
            if isinstance(result, _PageEvent):
                run.page(result.source, result.status)
                continue
            if isinstance(result, Failed):
                run.record(result.source, "failed", result.reason)
                continue
            if result.ocr_pages:
                for _ in range(result.ocr_pages):
                    run.page(result.name, OCR_QUEUED)
                    run.page(result.name, OCR_READ)
            pending.append(result)
            pending_chunks += len(result.chunks)
            if pending_chunks >= self.embed_group:
                model.put(pending)
                pending, pending_chunks = [], 0
        if pending:
            model.put(pending)

    def _ledger(self, knowledge_id: str) -> Ledger | None:
        """The collection's ledger, where the store keeps files beside it."""
        if not self.store.has_collection(knowledge_id):
            return None  # made by this run; the ledger's place is known then
        path = self.store.sidecar(knowledge_id, "sources.sqlite")
        return None if path is None else Ledger(path)

    def _point_ids(self, knowledge_id: str) -> Iterator[str]:
        return (point_id for point_id, _, _ in self.store.scroll_payloads(knowledge_id, []))

    def _save_ledger(self, run: _Run) -> None:
        """Write every source's state to the ledger, if it lists exactly the stored ids."""
        ledger = run.ledger or self._ledger(run.knowledge_id)
        if ledger is None:
            return
        # The digest is of the rows' own ids, not the collection's: the next run compares
        # the two, so a row kept wrong here, or a write made meanwhile, is found then.
        if run.trusted and run.digest is not None:
            ledger.save(run.existing, str(run.digest), changed=run.touched, removed=run.removed)
        else:
            digest = IdDigest(i for entry in run.existing.values() for i in entry["ids"])
            ledger.save(run.existing, str(digest))

    def _open(
        self, knowledge_id: str, only: list[SourceItem] | None, ledger: Ledger | None = None
    ) -> tuple[dict[str, dict[str, Any]], Embedder | None, int, str | None]:
        """The collection's stored state per source (of ``only``, if given), its embedder
        and dimension (None, 0: a new collection whose embedder is chosen later), and the
        digest of its ids when the state came from the ledger (else None)."""
        described = self.store.collection_model(knowledge_id)
        if described is None and self.choice is not None:
            return {}, None, 0, None
        embedder = self.embedder
        if described is not None and self.choice is not None:
            embedder = self.choice.for_model(described[0]) or embedder
        if described is None or described[0] != embedder.model_name:
            # Knowing the dimension may mean loading a model; a re-run that finds
            # nothing changed should not pay for that, so only ask when creating.
            described = self._ensure(knowledge_id, embedder)
        # checksum: nothing is taken on trust, the ledger neither.
        if only is None and ledger is not None and not self.checksum:
            kept = ledger.load()
            if kept is not None and kept[1] == str(IdDigest(self._point_ids(knowledge_id))):
                return kept[0], embedder, described[1], kept[1]
        existing: dict[str, dict[str, Any]] = {}
        _merge_state(existing, self._stored_state(knowledge_id, only))
        return existing, embedder, described[1], None

    def _with_state(self, items: Iterable[SourceItem], run: _Run) -> Iterator[SourceItem]:
        """The items, a window at a time, each window's stored state read into
        ``run.existing`` just before the window is planned."""
        if not self.store.has_collection(run.knowledge_id):
            yield from items  # a new collection: nothing stored to read
            return
        iterator = iter(items)
        while window := list(itertools.islice(iterator, _STATE_WINDOW)):
            _merge_state(run.existing, self._stored_state(run.knowledge_id, window))
            yield from window

    def _ensure(self, knowledge_id: str, embedder: Embedder) -> tuple[str, int]:
        """Create the collection for ``embedder`` (or check it is the one it holds)."""
        dimension = embedder.dimension
        self.store.ensure_collection(knowledge_id, model=embedder.model_name, dimension=dimension)
        # Keyed sources are looked up by key: index it from the start.
        self.store.ensure_payload_index(knowledge_id, "key")
        return embedder.model_name, dimension

    def _create(self, run: _Run, embedder: Embedder) -> None:
        """Create the run's new collection for ``embedder``, and embed with it from now on."""
        run.dimension = self._ensure(run.knowledge_id, embedder)[1]
        run.embedder = embedder

    def _choose(self, run: _Run, batch: list[Prepared]) -> Embedder:
        """Choose a new collection's embedder from the scripts of its first chunks."""
        assert self.choice is not None
        scripts = Counter(
            chunk.metadata.get("script", NO_LETTERS) for p in batch for chunk in p.chunks
        )
        return self.choice.choose(scripts, collection=run.knowledge_id)

    def _stored_state(
        self, knowledge_id: str, only: list[SourceItem] | None
    ) -> Iterator[tuple[str, dict[str, Any], Any]]:
        if only is None:
            yield from self.store.scroll_payloads(knowledge_id, _STATE_FIELDS)
            return
        keys = sorted({item.key for item in only if item.key})
        names = sorted({item.source for item in only if not item.key})
        # A few hundred values per filter: the engine applies the whole "any of" list to
        # every page of the scroll, so one filter naming every item made a re-run of 54k
        # files cost 11 s, against 2.8 s to read the whole collection
        # (benchmarks/scale_curve.py); slices keep it in proportion to the items.
        for name, values in (("key", keys), ("source", names)):
            for start in range(0, len(values), _STATE_SLICE):
                yield from self.store.scroll_payloads(
                    knowledge_id,
                    _STATE_FIELDS,
                    where={name: values[start : start + _STATE_SLICE]},
                )

    def _plan(self, items: Iterable[SourceItem], run: _Run) -> Iterator[_Task]:
        """Yield (item, fingerprint, status) for each source that changed; record the rest."""
        for item in items:
            identity = item.identity
            run.seen.add(identity)
            if item.path is not None and not is_supported(item.path):
                suffix = item.path.suffix.lower() or "(no suffix)"
                run.record(identity, "failed", f"unsupported file type {suffix}")
                continue
            before = run.existing.get(identity)
            quick = item.quick_key()  # stored either way; trusted unless checksum
            if (
                not self.checksum
                and quick is not None
                and before is not None
                and before["stats"] == {quick}
                and len(before["hashes"]) == 1
            ):
                # As the last run found it: its stored fingerprint stands, unread.
                fingerprint = next(iter(before["hashes"]))
            else:
                try:
                    fingerprint = item.resolve_fingerprint(self.limits.max_bytes)
                except RagError as exc:
                    run.record(identity, "failed", reason(exc))
                    continue
            # Every chunk must carry this fingerprint and all of them must be there: a run
            # cut off mid-file leaves a mix or a short count, and the file is done again.
            if (
                before is not None
                and before["hashes"] == {fingerprint}
                and before["chunks"] == {len(before["ids"])}
            ):
                if quick is not None and before["stats"] != {quick}:
                    self._remember_stat(run, item, quick)
                with run.lock:
                    run.report.chunk_counts[identity] = len(before["ids"])
                run.record(identity, "skipped")
                if not run.keep_state:
                    run.existing.pop(identity)  # only a changed source's old ids are needed
                continue
            if quick is not None:
                run.stats[identity] = quick
            yield item, fingerprint, "updated" if before else "added"

    def _remember_stat(self, run: _Run, item: SourceItem, quick: str) -> None:
        """Store an unchanged file's new quick key (touched, copied, or indexed before
        keys were stored), so the next run need not read it again. One write per such
        file; a run cut off midway leaves some chunks with the old key: those files are
        only hashed again next time."""
        field_name, value = ("key", item.key) if item.key else ("source", item.source)
        run.before_write()
        entry = run.existing.get(item.identity) if run.keep_state else None
        if entry is not None and entry["root"] == run.root_key:  # as the filter below
            with run.lock:
                entry["stats"] = {quick}
                run.touched.add(item.identity)
        self.store.set_payload_where(
            run.knowledge_id, {"file_stat": quick}, field_name, value, where={"root": run.root_key}
        )

    def _preloading(self, planned: Iterator[_Task], run: _Run) -> Iterator[_Task]:
        """Pass the plan on; at its first changed source, load the model in the background."""
        first = next(planned, None)
        if first is None:
            return  # nothing to embed: no model
        # Loading a model takes ~0.4 s (ONNX) to ~10 s (torch on a GPU machine, measured in
        # benchmarks/RESULTS.md); done here, it overlaps extracting the first files instead
        # of waiting for them. auto: the default model, the likelier choice.
        preload = getattr(run.embedder or self.embedder, "preload", None)
        if preload is not None:
            run.preload = threading.Thread(target=_quietly, args=(preload,), daemon=True)
            run.preload.start()
        yield first
        yield from planned

    def _prepare(
        self, planned: Iterator[_Task], run: _Run
    ) -> Iterator[Prepared | Failed | _PageEvent]:
        """Yield prepared sources, from worker processes, or inline for small runs."""
        first = list(itertools.islice(planned, INLINE_MAX + 1))
        # One scan alone is still worth the workers: its pages are read in parallel.
        few = len(first) <= INLINE_MAX and not (self.workers > 1 and any(map(_may_ocr, first)))
        if self.workers == 0 or few:
            yield from self._prepare_inline(itertools.chain(first, planned))
            return
        # Workers tokenise for the run's model (auto, new collection: the default, the
        # likelier choice); the main thread then only runs it.
        tokens = token_spec_of(run.embedder or self.embedder)
        yield from self._prepare_in_pool(itertools.chain(first, planned), tokens)

    def _prepare_inline(self, planned: Iterator[_Task]) -> Iterator[Prepared | Failed]:
        preparer = Preparer(self.chunker, self.sparse_encoder, self.limits)
        for task in planned:
            yield preparer(*task)

    def _pool(self, tokens: TokenSpec | None = None) -> ProcessPoolExecutor:
        sparse = self.sparse_encoder.config if self.sparse_encoder is not None else None
        config = PrepareConfig(
            self.chunker.chunk_size, self.chunker.chunk_overlap, sparse, self.limits, True, tokens
        )
        # forkserver, not fork: the model runtime and the store already run threads here,
        # and a forked copy of a locked mutex deadlocks.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["rag_pipeline.ingest.prepare"])
        return ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=init_worker,
            initargs=(config, os.getpid()),
        )

    def _prepare_in_pool(
        self, planned: Iterator[_Task], tokens: TokenSpec | None = None
    ) -> Iterator[Prepared | Failed | _PageEvent]:
        # Look-ahead is bounded: a few tasks per worker in flight, so memory does not grow
        # with the folder. A scan's pages are tasks of their own, so one 200-page scan
        # keeps every worker busy; pages and finished scans go before new files, so the
        # scans already opened finish first.
        window = self.workers * 2
        batches = _batches(planned)
        retried: set[object] = set()
        produced = restarts = 0
        scans: dict[str, _Scan] = {}
        pages: collections.deque[PageRef] = collections.deque()
        ready: collections.deque[_Task] = collections.deque()
        pool = self._pool(tokens)
        in_flight: dict[Future[Any], tuple[str, Any]] = {}

        def submit(work: tuple[str, Any]) -> None:
            kind, what = work
            if kind == "page":
                in_flight[pool.submit(read_page_in_worker, what)] = work
            else:
                in_flight[pool.submit(prepare_batch_in_worker, what)] = work

        def next_work() -> tuple[str, Any] | None:
            if ready:
                return "batch", [ready.popleft()]
            while pages:
                page = pages.popleft()
                if scans[page.source].error is None:
                    return "page", page
                scans[page.source].waiting -= 1  # its file already failed: not read
            batch = next(batches, None)
            return None if batch is None else ("batch", batch)

        def page_done(page: PageRef, result: Document | Failed | None) -> Iterator[Any]:
            scan = scans[page.source]
            scan.waiting -= 1
            if isinstance(result, Failed):
                scan.error = scan.error or result.reason
            else:
                scan.read.append(result)
                yield _PageEvent(page.source, OCR_READ)
            yield from finish_scan(page.source)

        def finish_scan(source: str) -> Iterator[Any]:
            scan = scans[source]
            if scan.waiting > 0:
                return
            del scans[source]
            paged = scan.paged
            if scan.error is not None:
                yield Failed(paged.item.identity, scan.error)
                return
            try:
                documents = finish(paged.extraction, scan.read, self.limits)
            except RagError as exc:
                yield Failed(paged.item.identity, reason(exc))
                return
            item = dataclasses.replace(paged.item, path=None, documents=tuple(documents))
            ready.append((item, paged.fingerprint, paged.status))

        try:
            while True:
                while len(in_flight) < window and (work := next_work()) is not None:
                    submit(work)
                if not in_flight:
                    return
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                broken: list[tuple[str, Any]] = []
                for future in done:
                    work = in_flight.pop(future)
                    try:
                        results = future.result()
                    except BrokenProcessPool:
                        broken.append(work)
                        continue
                    if work[0] == "page":
                        produced += 1
                        yield from page_done(work[1], results)
                        continue
                    produced += len(results)
                    for result in results:
                        if isinstance(result, Paged):
                            source = result.item.source
                            scans[source] = _Scan(result, waiting=len(result.extraction.pages))
                            pages.extend(result.extraction.pages)
                            for _ in result.extraction.pages:
                                yield _PageEvent(source, OCR_QUEUED)
                        else:
                            yield result
                if not broken:
                    continue
                broken.extend(in_flight.values())
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                restarts += 1
                if produced == 0 or restarts > MAX_POOL_RESTARTS:
                    # Workers that never work (e.g. a script without a __main__ guard,
                    # re-run by every worker) must not fail the run: go on inline.
                    log.warning("extraction workers keep failing; preparing in this process")
                    yield from self._pool_gave_up(broken, scans, pages, ready, planned)
                    return
                # A worker died (a loader crashed in C, or ran out of memory): the pool is
                # gone. Every task that was in flight is tried again alone in a new pool;
                # one that breaks it a second time is reported, the rest go on.
                pool = self._pool(tokens)
                for kind, what in broken:
                    tasks = [what] if kind == "page" else what
                    for task in tasks:
                        key = (task.source, task.number) if kind == "page" else task[0].identity
                        if key not in retried:
                            retried.add(key)
                            submit((kind, task if kind == "page" else [task]))
                        elif kind == "page":
                            crashed = Failed(
                                task.source, f"page {task.number}: OCR crashed its worker process"
                            )
                            yield from page_done(task, crashed)
                        else:
                            yield Failed(task[0].identity, "extraction crashed its worker process")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _pool_gave_up(
        self,
        broken: list[tuple[str, Any]],
        scans: dict[str, _Scan],
        pages: collections.deque[PageRef],
        ready: collections.deque[_Task],
        planned: Iterator[_Task],
    ) -> Iterator[Prepared | Failed | _PageEvent]:
        """Go on without workers: scans whose pages were being read are read again here."""
        tasks = [task for kind, what in broken if kind == "batch" for task in what]
        tasks.extend(ready)
        for scan in scans.values():
            item = scan.paged.item
            tasks.append((item, scan.paged.fingerprint, scan.paged.status))
        pages.clear()
        yield from self._prepare_inline(itertools.chain(tasks, planned))

    def _embed(self, batch: list[Prepared], run: _Run, writer: _Writer) -> None:
        if not batch:
            return
        if run.embedder is None:
            self._create(run, self._choose(run, batch))
        assert run.embedder is not None
        try:
            vectors = embed_prepared(run.embedder, batch, run.dimension, run.knowledge_id)
        except ModelMismatchError:
            raise
        except RagError as exc:
            for prepared in batch:
                run.record(prepared.source, "failed", reason(exc))
            return
        writer.put((batch, vectors))

    def _prune(self, run: _Run) -> None:
        gone = [
            source
            for source, entry in run.existing.items()
            # Only sources indexed from this same root are ours to remove.
            if source not in run.seen and entry.get("root") in (run.root_key, None)
        ]
        for source in gone:
            entry = run.forget(source)
            run.before_write()
            self.store.delete_points(run.knowledge_id, entry["ids"])
            with run.lock:
                run.report.chunks_deleted += len(entry["ids"])
            run.record(source, "deleted")


def _merge_state(
    existing: dict[str, dict[str, Any]], rows: Iterable[tuple[str, dict[str, Any], Any]]
) -> None:
    """Add stored points' (id, payload) to the state per source: its fingerprints, its
    chunk counts as written, its point ids and the root it was indexed from."""
    for point_id, payload, _ in rows:
        identity = payload.get("key") or payload.get("source", "")
        entry = existing.get(identity)
        if entry is None:  # not setdefault: it would build a new entry for every point
            entry = existing[identity] = {
                "hashes": set(),
                "ids": [],
                "chunks": set(),
                "stats": set(),
                "root": payload.get("root"),
            }
        entry["hashes"].add(payload.get("file_hash"))
        entry["stats"].add(payload.get("file_stat"))
        entry["chunks"].add(payload.get("file_chunks"))
        entry["ids"].append(point_id)
