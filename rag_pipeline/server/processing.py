"""Background processing of uploaded files, durable in the database, and vector copies."""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from pathlib import Path

from sqlalchemy import select, update

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
    KnowledgeFile,
)
from rag_pipeline.store.base import StoredPoint

log = logging.getLogger(__name__)

# Point ids in a knowledge collection derive from (file id, point id in the file's
# collection): adding a file twice rewrites the same points, and two files that happen
# to share a chunk id never overwrite each other.
_COPY_NAMESPACE = uuid.UUID("0f3c7d8e-2b6a-4c1e-9a57-6e2d4b8f1c03")
_COPY_BATCH = 256


def file_collection_name(file_id: str) -> str:
    """The collection holding one uploaded file's chunks."""
    return f"file-{file_id}"


class FileProcessor:
    """Extract, chunk, embed and store uploaded files; copy their vectors into knowledge."""

    def __init__(self, database: Database, pipeline: Pipeline) -> None:
        self.db = database
        self.pipeline = pipeline
        # Serialises "is the file done?" against "copy it into its knowledge bases", so a
        # file added while processing is copied exactly once, by whichever side sees it done.
        self.link_lock = threading.Lock()

    def process(self, file_id: str) -> None:
        """Process one file whose row is marked processing; record completion or failure."""
        with self.db.session() as session:
            record = session.get(FileRecord, file_id)
            if record is None:
                return
            path, filename, user_id = Path(record.path), record.filename, record.user_id
            size, file_hash = record.size, record.file_hash
        collection = file_collection_name(file_id)
        try:
            documents = load_file(
                path, source=filename, max_bytes=self.pipeline.settings.max_file_bytes
            )
            content = "\n\n".join(d.text for d in documents)
            content_hash = hashlib.sha256(content.encode("utf-8")).hexdigest()
            # The documents extracted above are indexed as they are: extracting twice
            # would double the slow loaders' share (an EPUB takes 1.5 s). Their fingerprint
            # is the upload's SHA-256, taken while it was received: stored chunks carry the
            # same file_hash as the file's row, and nothing is hashed a third time.
            item = SourceItem(filename, documents=tuple(documents), fingerprint=file_hash)
            report = self.pipeline.index_sources(
                [item],
                collection,
                extra_payload={
                    "file_id": file_id,
                    "name": filename,
                    "created_by": user_id,
                    "hash": content_hash,
                    "size": size,
                },
            )
            if report.errors:
                raise RagError(report.errors[0]["error"])
        except RagError as exc:
            still_there = self._finish(file_id, FAILED, error=str(exc) or type(exc).__name__)
        except Exception as exc:  # a loader bug must fail this file, not the worker
            log.exception("processing file %s failed", file_id)
            still_there = self._finish(file_id, FAILED, error=f"{type(exc).__name__}: {exc}")
        else:
            # A file redone after a crash may find its chunks already stored (skipped).
            chunks = (
                report.chunks_added if not report.skipped else self.pipeline.store.count(collection)
            )
            still_there = self._finish(
                file_id, COMPLETED, content=content, content_hash=content_hash, chunks=chunks
            )
        if not still_there:
            # Deleted while we worked: drop whatever we wrote.
            self.pipeline.store.delete_collection(collection)

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

    def link(self, knowledge_id: str, file_id: str) -> bool:
        """Put a file in a knowledge base: copy now if processed, else when it completes.

        Returns False when the file was already there.
        """
        with self.link_lock, self.db.session() as session:
            link = session.get(KnowledgeFile, (knowledge_id, file_id))
            record = session.get(FileRecord, file_id)
            done = record is not None and record.status == COMPLETED
            if link is not None and (link.copied or not done):
                return False
            if link is None:
                link = KnowledgeFile(knowledge_id=knowledge_id, file_id=file_id, copied=False)
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

    def copy_vectors(self, file_id: str, knowledge_id: str) -> int:
        """Copy a file's stored points (dense, sparse, payload) into a knowledge collection."""
        store = self.pipeline.store
        source = file_collection_name(file_id)
        described = store.collection_model(source)
        if described is None:
            return 0
        store.ensure_collection(knowledge_id, model=described[0], dimension=described[1])
        batch: list[StoredPoint] = []
        copied = 0
        for point_id, payload, vectors in store.scroll_payloads(source, None, with_vectors=True):
            batch.append(
                StoredPoint(
                    id=str(uuid.uuid5(_COPY_NAMESPACE, f"{file_id}/{point_id}")),
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
        if store.collection_model(knowledge_id) is not None:
            store.delete_where(knowledge_id, "file_id", file_id)


class ProcessingWorker:
    """Threads that take pending files from the database, oldest first, and process them."""

    def __init__(self, database: Database, processor: FileProcessor, threads: int = 1) -> None:
        self.db = database
        self.processor = processor
        self._threads_wanted = threads
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

    def claim(self) -> str | None:
        """Mark the oldest pending file as processing and return its id."""
        with self.db.session() as session:
            candidates = session.scalars(
                select(FileRecord.id)
                .where(FileRecord.status == PENDING)
                .order_by(FileRecord.queued_at, FileRecord.id)
                .limit(4)
            ).all()
            for file_id in candidates:
                # The status check in the UPDATE makes a claim atomic between threads.
                result = session.execute(
                    update(FileRecord)
                    .where(FileRecord.id == file_id, FileRecord.status == PENDING)
                    .values(status=PROCESSING)
                )
                if result.rowcount == 1:
                    return file_id
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                file_id = self.claim()
            except Exception:
                log.exception("cannot read pending files")
                file_id = None
            if file_id is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self.processor.process(file_id)
            except Exception:
                log.exception("processing file %s crashed", file_id)
