"""The file processor: an uploaded file's text extracted, chunked, embedded and stored, and
its row told how it went. The job queue (server/jobs.py) hands it claimed files; the
knowledge service hears of each completed file (``on_completed``) and copies its vectors
into the knowledge bases waiting for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from rag_pipeline.errors import RagError
from rag_pipeline.ingest import SourceItem
from rag_pipeline.loaders import load_file
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import failpoints
from rag_pipeline.server.db import (
    COMPLETED,
    DELETING,
    FAILED,
    NO_UPDATE_SYNC,
    PROCESSING,
    Database,
    FileAttempt,
    FileRecord,
    db_clock,
)
from rag_pipeline.server.jobs import Leases
from rag_pipeline.server.scopes import UPLOADS_COLLECTION

log = logging.getLogger(__name__)

# Characters of text past which an upload is indexed in a run of its own (~400 chunks).
_LARGE = 200_000
# What finishing a file found: done, the row deleted meanwhile, or another claim holding it.
_DONE, _DELETED, _LOST = "done", "deleted", "lost"


@dataclass(slots=True)
class _Upload:
    """One claimed file on its way through a batch."""

    file_id: str
    filename: str
    path: Path
    user_id: str
    size: int
    file_hash: str
    attempt: int
    content: str = ""
    content_hash: str = ""
    error: str | None = None
    finished: bool = False


class FileProcessor:
    """Extract, chunk, embed and store uploaded files into the uploads collection."""

    def __init__(
        self,
        database: Database,
        pipeline: Pipeline,
        leases: Leases | None = None,
        on_completed: Callable[[str], None] | None = None,
    ) -> None:
        self.db = database
        self.pipeline = pipeline
        self.leases = leases or Leases(database)
        # Told each file id whose completion was recorded (after the commit).
        self.on_completed = on_completed
        self._indexed = False

    def process(self, file_id: str) -> None:
        """Process one file whose row is marked processing; record completion or failure.

        Should another replica hold the file (it found the row unleased first), wait for it.
        """
        self.process_batch([file_id])
        while True:
            with self.db.session() as session:
                row = session.execute(
                    select(FileRecord.status, FileRecord.lease_holder).where(
                        FileRecord.id == file_id
                    )
                ).first()
            if row is None or row.status != PROCESSING:
                return
            if row.lease_holder in (None, self.leases.replica):
                return
            time.sleep(0.2)

    def process_batch(self, file_ids: list[str]) -> None:
        """Process files marked processing together: their chunks share embedding batches.

        Only files this replica holds are processed: those it claimed, and those nobody
        holds (inline uploads), which it leases first. Small files run first, in one run,
        and are finished before any large one starts: a file with a great deal of text (up
        to the extracted-text limit: minutes of embedding) must not hold back the small
        files claimed beside it.
        """
        self.leases.acquire(file_ids)
        uploads = self._load_rows(file_ids)
        try:
            extracted = [(upload, self._extract(upload)) for upload in uploads]
            for upload, item in extracted:
                if item is None:
                    self._record(upload, None)
            small = [(u, i) for u, i in extracted if i is not None and len(u.content) <= _LARGE]
            large = [(u, i) for u, i in extracted if i is not None and len(u.content) > _LARGE]
            for group in ([small] if small else []) + [[entry] for entry in large]:
                self._index_and_record(group)
        finally:
            self.leases.abandon([u.file_id for u in uploads if not u.finished])

    def _index_and_record(self, group: list[tuple[_Upload, SourceItem]]) -> None:
        items = [item for _, item in group]
        try:
            # Inline: uploads arrive extracted, and the server's threads already run
            # several batches at once (a process pool per batch costs more than it saves).
            report = self.pipeline.index(items, UPLOADS_COLLECTION, workers=0)
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
            outcome = self._finish(upload, FAILED, error=upload.error)
        else:
            outcome = self._finish(
                upload,
                COMPLETED,
                content=upload.content,
                content_hash=upload.content_hash,
                chunks=chunks or 0,
            )
        upload.finished = True
        if outcome == _DONE and upload.error is None:
            failpoints.reach("processor.completed")
            if self.on_completed is not None:
                self.on_completed(upload.file_id)
        elif outcome == _DELETED:
            # Deleted while we worked: drop whatever we wrote (the deletion may have
            # dropped the file's vectors before these were written).
            self.delete_file_vectors(upload.file_id)
        elif outcome == _LOST:
            # Our lease ran out and another replica claimed the file: its result stands, and
            # the vectors we wrote are the same points it writes, so they stay.
            log.warning(
                "file %s was taken over by another replica; replica %s drops its result",
                upload.file_id,
                self.leases.replica,
            )

    def _load_rows(self, file_ids: list[str]) -> list[_Upload]:
        with self.db.session() as session:
            records = session.scalars(
                select(FileRecord).where(
                    FileRecord.id.in_(file_ids),
                    FileRecord.status == PROCESSING,
                    FileRecord.lease_holder == self.leases.replica,
                )
            ).all()
            return [
                _Upload(r.id, r.filename, Path(r.path), r.user_id, r.size, r.file_hash, r.attempts)
                for r in records
            ]

    def _extract(self, upload: _Upload) -> SourceItem | None:
        """Load one upload's text; None (with ``upload.error`` set) if it cannot be read."""
        try:
            documents = load_file(
                upload.path,
                source=upload.filename,
                limits=self.pipeline.settings.load_limits(),
                threads=os.cpu_count() or 1,
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

    def _index_file_ids(self) -> None:
        if not self._indexed:
            self.pipeline.store.ensure_payload_index(UPLOADS_COLLECTION, "file_id")
            self._indexed = True

    def delete_file_vectors(self, file_id: str) -> None:
        """Delete an upload's chunks from the uploads collection."""
        if self.pipeline.store.has_collection(UPLOADS_COLLECTION):
            self.pipeline.store.delete_where(UPLOADS_COLLECTION, "file_id", file_id)

    def _finish(
        self,
        upload: _Upload,
        status: str,
        *,
        error: str | None = None,
        content: str | None = None,
        content_hash: str | None = None,
        chunks: int = 0,
    ) -> str:
        """Record a file's result if this replica still holds the claim it started with."""
        file_id = upload.file_id
        with self.db.session() as session:
            # One conditional write: the lease is checked on the row it updates, so a
            # replica whose lease was taken over cannot overwrite the new holder's result.
            finished = session.execute(
                update(FileRecord)
                .where(
                    FileRecord.id == file_id,
                    FileRecord.status == PROCESSING,
                    FileRecord.lease_holder == self.leases.replica,
                    FileRecord.attempts == upload.attempt,
                )
                .values(
                    status=status,
                    error=error,
                    content=content,
                    content_hash=content_hash,
                    chunks=chunks,
                    lease_holder=None,
                    lease_expires=None,
                )
                .execution_options(**NO_UPDATE_SYNC)
            ).rowcount
            if not finished:
                record = session.get(FileRecord, file_id)
                return _DELETED if record is None or record.status == DELETING else _LOST
            session.execute(
                update(FileAttempt)
                .where(
                    FileAttempt.file_id == file_id,
                    FileAttempt.attempt == upload.attempt,
                    FileAttempt.replica == self.leases.replica,
                    FileAttempt.ended_at.is_(None),
                )
                .values(ended_at=db_clock(), outcome=status)
                .execution_options(**NO_UPDATE_SYNC)
            )
            return _DONE
