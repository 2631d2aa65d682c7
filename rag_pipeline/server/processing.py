"""Background processing of uploaded files, durable in the database, and vector copies."""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update

from rag_pipeline.errors import RagError
from rag_pipeline.ingest import SourceItem
from rag_pipeline.loaders import load_file
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server.db import (
    COMPLETED,
    FAILED,
    PENDING,
    PROCESSING,
    Database,
    FileRecord,
    Knowledge,
    KnowledgeFile,
)
from rag_pipeline.server.scopes import UPLOADS_COLLECTION
from rag_pipeline.store.base import StoredPoint

log = logging.getLogger(__name__)

_COPY_NAMESPACE = uuid.UUID("0f3c7d8e-2b6a-4c1e-9a57-6e2d4b8f1c03")
_COPY_BATCH = 256
# Characters of text past which an upload is indexed in a run of its own (~400 chunks).
_LARGE = 200_000


def _knowledge_point_id(file_id: str, point_id: str, payload: dict[str, Any]) -> str:
    """The id of an upload's chunk in a knowledge collection.

    Derived from the file's extracted-text hash and the chunk's place in it, so a
    knowledge base never holds the same content twice: two uploads of one text (two
    files, both still listed) write the same points, and a chat gets each chunk once.
    """
    content_hash, index = payload.get("hash"), payload.get("chunk_index")
    if isinstance(content_hash, str) and isinstance(index, int):
        return str(uuid.uuid5(_COPY_NAMESPACE, f"{content_hash}/{index}"))
    return str(uuid.uuid5(_COPY_NAMESPACE, f"{file_id}/{point_id}"))


@dataclass(slots=True)
class _Upload:
    """One claimed file on its way through a batch."""

    file_id: str
    filename: str
    path: Path
    user_id: str
    size: int
    file_hash: str
    content: str = ""
    content_hash: str = ""
    error: str | None = None


class FileProcessor:
    """Extract, chunk, embed and store uploaded files; copy their vectors into knowledge."""

    def __init__(self, database: Database, pipeline: Pipeline) -> None:
        self.db = database
        self.pipeline = pipeline
        # Serialises "is the file done?" against "copy it into its knowledge bases", so a
        # file added while processing is copied exactly once, by whichever side sees it done.
        self.link_lock = threading.Lock()
        self._indexed: set[str] = set()

    def process(self, file_id: str) -> None:
        """Process one file whose row is marked processing; record completion or failure."""
        self.process_batch([file_id])

    def process_batch(self, file_ids: list[str]) -> None:
        """Process files marked processing together: their chunks share embedding batches.

        Small files run first, in one run, and are finished before any large one starts:
        a file with a great deal of text (up to the extracted-text limit: minutes of
        embedding) must not hold back the small files claimed beside it.
        """
        uploads = self._load_rows(file_ids)
        extracted = [(upload, self._extract(upload)) for upload in uploads]
        for upload, item in extracted:
            if item is None:
                self._record(upload, None)
        small = [(u, i) for u, i in extracted if i is not None and len(u.content) <= _LARGE]
        large = [(u, i) for u, i in extracted if i is not None and len(u.content) > _LARGE]
        for group in ([small] if small else []) + [[entry] for entry in large]:
            self._index_and_record(group)

    def _index_and_record(self, group: list[tuple[_Upload, SourceItem]]) -> None:
        items = [item for _, item in group]
        try:
            # Inline: uploads arrive extracted, and the server's threads already run
            # several batches at once (a process pool per batch costs more than it saves).
            report = self.pipeline.indexer(workers=0).run(items, UPLOADS_COLLECTION)
        except Exception as exc:  # the store or the model failed the whole run
            log.exception("indexing uploads %s failed", [i.key for i in items])
            for upload, _ in group:
                upload.error = f"{type(exc).__name__}: {exc}"
                self._record(upload, None)
            return
        self._index_file_ids()
        failed = {e["path"]: e["error"] for e in report.errors}
        for upload, _ in group:
            upload.error = failed.get(upload.file_id)
            self._record(upload, report.chunk_counts.get(upload.file_id, 0))

    def _record(self, upload: _Upload, chunks: int | None) -> None:
        if upload.error is not None:
            still_there = self._finish(upload.file_id, FAILED, error=upload.error)
        else:
            still_there = self._finish(
                upload.file_id,
                COMPLETED,
                content=upload.content,
                content_hash=upload.content_hash,
                chunks=chunks or 0,
            )
        if not still_there:
            # Deleted while we worked: drop whatever we wrote.
            self.delete_file_vectors(upload.file_id)

    def _load_rows(self, file_ids: list[str]) -> list[_Upload]:
        with self.db.session() as session:
            records = session.scalars(select(FileRecord).where(FileRecord.id.in_(file_ids))).all()
            return [
                _Upload(r.id, r.filename, Path(r.path), r.user_id, r.size, r.file_hash)
                for r in records
            ]

    def _extract(self, upload: _Upload) -> SourceItem | None:
        """Load one upload's text; None (with ``upload.error`` set) if it cannot be read."""
        try:
            documents = load_file(
                upload.path, source=upload.filename, limits=self.pipeline.settings.load_limits()
            )
        except RagError as exc:
            upload.error = str(exc) or type(exc).__name__
            return None
        except Exception as exc:  # a loader bug must fail this file, not the batch
            log.exception("extracting file %s failed", upload.file_id)
            upload.error = f"{type(exc).__name__}: {exc}"
            return None
        upload.content = "\n\n".join(d.text for d in documents)
        upload.content_hash = hashlib.sha256(upload.content.encode("utf-8")).hexdigest()
        # The documents extracted above are indexed as they are: extracting twice would
        # double the slow loaders' share (an EPUB takes 1.5 s). Their fingerprint is the
        # upload's SHA-256, taken while it was received: stored chunks carry the same
        # file_hash as the file's row, and nothing is hashed a third time. The file id is
        # the key: two uploads of one name never share points.
        return SourceItem(
            upload.filename,
            documents=tuple(documents),
            fingerprint=upload.file_hash,
            key=upload.file_id,
            payload={
                "file_id": upload.file_id,
                "name": upload.filename,
                "created_by": upload.user_id,
                "hash": upload.content_hash,
                "size": upload.size,
            },
        )

    def _index_file_ids(self, collection: str = UPLOADS_COLLECTION) -> None:
        if collection not in self._indexed:
            self.pipeline.store.ensure_payload_index(collection, "file_id")
            self._indexed.add(collection)

    def delete_file_vectors(self, file_id: str) -> None:
        """Delete an upload's chunks from the uploads collection."""
        if self.pipeline.store.has_collection(UPLOADS_COLLECTION):
            self.pipeline.store.delete_where(UPLOADS_COLLECTION, "file_id", file_id)

    def _finish(
        self,
        file_id: str,
        status: str,
        *,
        error: str | None = None,
        content: str | None = None,
        content_hash: str | None = None,
        chunks: int = 0,
    ) -> bool:
        with self.link_lock, self.db.session() as session:
            record = session.get(FileRecord, file_id)
            if record is None:
                return False
            record.status = status
            record.error = error
            record.content = content
            record.content_hash = content_hash
            record.chunks = chunks
            if status != COMPLETED:
                return True
            links = session.scalars(
                select(KnowledgeFile).where(
                    KnowledgeFile.file_id == file_id, KnowledgeFile.copied.is_(False)
                )
            ).all()
            for link in links:
                self.copy_vectors(file_id, link.knowledge_id)
                link.copied = True
            return True

    def link(self, knowledge_id: str, file_id: str, path: str = "") -> bool:
        """Put a file in a knowledge base (in folder ``path``): copy now if processed, else
        when it completes.

        Returns False when the file was already there.
        """
        with self.link_lock, self.db.session() as session:
            link = session.get(KnowledgeFile, (knowledge_id, file_id))
            record = session.get(FileRecord, file_id)
            done = record is not None and record.status == COMPLETED
            if link is not None and (link.copied or not done):
                return False
            if link is None:
                link = KnowledgeFile(
                    knowledge_id=knowledge_id, file_id=file_id, copied=False, path=path
                )
                session.add(link)
            if done:
                self.copy_vectors(file_id, knowledge_id)
                link.copied = True
            return True

    def unlink(self, knowledge_id: str, file_id: str) -> None:
        """Take a file out of a knowledge base and its vectors out of the collection."""
        with self.link_lock, self.db.session() as session:
            link = session.get(KnowledgeFile, (knowledge_id, file_id))
            if link is not None:
                session.delete(link)
            self.remove_vectors(file_id, knowledge_id)
            record = session.get(FileRecord, file_id)
            if record is None or record.content_hash is None:
                return
            # Files with the same text share their points in a knowledge base (see
            # copy_vectors): the points just removed may have been another file's too.
            twins = session.scalars(
                select(FileRecord.id)
                .join(KnowledgeFile, KnowledgeFile.file_id == FileRecord.id)
                .where(
                    KnowledgeFile.knowledge_id == knowledge_id,
                    KnowledgeFile.copied.is_(True),
                    FileRecord.content_hash == record.content_hash,
                    FileRecord.id != file_id,
                )
            ).all()
            for twin in twins[:1]:
                self.copy_vectors(twin, knowledge_id)

    def delete_file(self, file_id: str) -> None:
        """Delete a file's row (links cascade) and its chunks; the caller unlinked it first."""
        with self.link_lock, self.db.session() as session:
            record = session.get(FileRecord, file_id)
            if record is not None:
                session.delete(record)
        self.delete_file_vectors(file_id)

    def reset_knowledge(self, knowledge_id: str) -> None:
        """Take every file out of a knowledge base and drop its collection."""
        # One lock for rows and collection, so a concurrent link cannot land in between.
        with self.link_lock, self.db.session() as session:
            session.execute(delete(KnowledgeFile).where(KnowledgeFile.knowledge_id == knowledge_id))
            self.pipeline.store.delete_collection(knowledge_id)

    def delete_knowledge(self, knowledge_id: str) -> None:
        """Delete a knowledge base's row (links cascade) and its collection."""
        with self.link_lock, self.db.session() as session:
            knowledge = session.get(Knowledge, knowledge_id)
            if knowledge is not None:
                session.delete(knowledge)
        self.pipeline.store.delete_collection(knowledge_id)

    def copy_vectors(self, file_id: str, knowledge_id: str) -> int:
        """Copy a file's stored points (dense, sparse, payload) into a knowledge collection."""
        store = self.pipeline.store
        described = store.collection_model(UPLOADS_COLLECTION)
        if described is None:
            return 0
        store.ensure_collection(knowledge_id, model=described[0], dimension=described[1])
        self._index_file_ids(knowledge_id)
        batch: list[StoredPoint] = []
        copied = 0
        for point_id, payload, vectors in store.scroll_payloads(
            UPLOADS_COLLECTION, None, with_vectors=True, where={"file_id": file_id}
        ):
            payload.pop("key", None)  # the uploads collection's bookkeeping
            batch.append(
                StoredPoint(
                    id=_knowledge_point_id(file_id, point_id, payload),
                    vector=vectors["dense"],
                    payload=payload,
                    sparse=vectors.get("sparse"),
                )
            )
            if len(batch) >= _COPY_BATCH:
                store.upsert(knowledge_id, batch)
                copied += len(batch)
                batch = []
        store.upsert(knowledge_id, batch)
        return copied + len(batch)

    def remove_vectors(self, file_id: str, knowledge_id: str) -> None:
        """Delete a file's points from a knowledge collection, if the collection exists."""
        store = self.pipeline.store
        if store.has_collection(knowledge_id):
            store.delete_where(knowledge_id, "file_id", file_id)


class ProcessingWorker:
    """Threads that take pending files from the database, oldest first, a batch at a time."""

    def __init__(
        self, database: Database, processor: FileProcessor, threads: int = 1, batch: int = 16
    ) -> None:
        self.db = database
        self.processor = processor
        self._threads_wanted = threads
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Resume work a previous run left unfinished, then start the threads."""
        with self.db.session() as session:
            session.execute(
                update(FileRecord).where(FileRecord.status == PROCESSING).values(status=PENDING)
            )
        for number in range(self._threads_wanted):
            thread = threading.Thread(
                target=self._run, name=f"rag-file-worker-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """Tell the threads new work is waiting."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the threads to stop after their current file."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def claim(self) -> list[str]:
        """Mark pending files (up to a batch, fairly across users) as processing; their ids."""
        # Round robin over users, oldest first within each: one user's thousand uploads
        # must not make another user's single file wait behind all of them.
        turn = (
            func.row_number()
            .over(partition_by=FileRecord.user_id, order_by=(FileRecord.queued_at, FileRecord.id))
            .label("turn")
        )
        pending = (
            select(FileRecord.id, FileRecord.queued_at, turn)
            .where(FileRecord.status == PENDING)
            .subquery()
        )
        oldest = (
            select(pending.c.id)
            .order_by(pending.c.turn, pending.c.queued_at, pending.c.id)
            .limit(self._batch)
        )
        # One UPDATE … RETURNING: a single write, so SQLite takes its write lock at once
        # instead of failing a read-then-write upgrade, and the status condition, checked
        # again on the locked row, makes each claim exclusive between threads.
        with self.db.session() as session:
            claimed = session.scalars(
                update(FileRecord)
                .where(FileRecord.id.in_(oldest.scalar_subquery()))
                .where(FileRecord.status == PENDING)
                .values(status=PROCESSING)
                .returning(FileRecord.id)
            ).all()
        return list(claimed)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                file_ids = self.claim()
            except Exception:
                log.exception("cannot read pending files")
                file_ids = []
            if not file_ids:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self.processor.process_batch(file_ids)
            except Exception:
                log.exception("processing files %s crashed", file_ids)
