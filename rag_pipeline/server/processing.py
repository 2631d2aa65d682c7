"""Background processing of uploaded files, durable in the database, and vector copies."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal, null, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

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
    FileAttempt,
    FileRecord,
    Knowledge,
    KnowledgeFile,
    db_clock,
)
from rag_pipeline.server.scopes import UPLOADS_COLLECTION
from rag_pipeline.store.base import StoredPoint

log = logging.getLogger(__name__)

_COPY_NAMESPACE = uuid.UUID("0f3c7d8e-2b6a-4c1e-9a57-6e2d4b8f1c03")
_COPY_BATCH = 256
# Characters of text past which an upload is indexed in a run of its own (~400 chunks).
_LARGE = 200_000

# How an attempt ended, besides COMPLETED and FAILED (see FileAttempt.outcome).
EXPIRED, RELEASED = "expired", "released"
# What finishing a file found: done, the row deleted meanwhile, or another claim holding it.
_DONE, _DELETED, _LOST = "done", "deleted", "lost"
_NO_UPDATE_SYNC = {"synchronize_session": False}


def default_replica_id() -> str:
    """A name for this server process, unique among replicas: host:pid:random."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leases:
    """This replica's hold on the files it processes: a lease per file, kept alive by a
    heartbeat thread, so that another replica takes over the files of one that died."""

    def __init__(
        self,
        database: Database,
        replica: str | None = None,
        seconds: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        self.db = database
        self.replica = replica or default_replica_id()
        self.seconds = seconds
        self.max_attempts = max_attempts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def expiry(self) -> ColumnElement[float]:
        """When a lease taken or renewed now runs out, as SQL (the database's clock)."""
        return db_clock() + self.seconds

    def claimable(self) -> ColumnElement[bool]:
        """Files a replica may claim: pending, or processing under a lease that ran out."""
        # A row without a lease (processed inline, or left by a version before leases) is
        # treated as leased from its upload: inline processing takes its lease well within.
        expires = func.coalesce(FileRecord.lease_expires, FileRecord.queued_at + self.seconds)
        return or_(
            FileRecord.status == PENDING,
            and_(FileRecord.status == PROCESSING, expires < db_clock()),
        )

    def acquire(self, file_ids: list[str]) -> None:
        """Lease files marked processing that nobody holds yet (uploads processed inline)."""
        with self.db.session() as session:
            taken = session.scalars(
                update(FileRecord)
                .where(
                    FileRecord.id.in_(file_ids),
                    FileRecord.status == PROCESSING,
                    FileRecord.lease_holder.is_(None),
                )
                .values(
                    lease_holder=self.replica,
                    lease_expires=self.expiry(),
                    attempts=FileRecord.attempts + 1,
                )
                .returning(FileRecord.id)
                .execution_options(**_NO_UPDATE_SYNC)
            ).all()
            self.record_attempts(session, list(taken))

    def record_attempts(self, session: Any, file_ids: list[str]) -> None:
        """Open an attempt in the history for each file just leased by this replica."""
        if not file_ids:
            return
        leased = select(
            FileRecord.id, FileRecord.attempts, FileRecord.lease_holder, db_clock()
        ).where(FileRecord.id.in_(file_ids), FileRecord.lease_holder == self.replica)
        columns = ["file_id", "attempt", "replica", "claimed_at"]
        session.execute(insert(FileAttempt).from_select(columns, leased))

    def renew(self) -> int:
        """Extend the lease of every file this replica holds; how many there are."""
        with self.db.session() as session:
            result = session.execute(
                update(FileRecord)
                .where(FileRecord.lease_holder == self.replica, FileRecord.status == PROCESSING)
                # A renewal is not a change of the file: updated_at keeps its value.
                .values(lease_expires=self.expiry(), updated_at=FileRecord.updated_at)
                .execution_options(**_NO_UPDATE_SYNC)
            )
        return int(result.rowcount)

    def abandon(self, file_ids: list[str]) -> None:
        """End this replica's lease on files it holds but will not finish (a crashed batch):
        they are claimed again at once, and count towards their attempts."""
        if not file_ids:
            return
        with self.db.session() as session:
            session.execute(
                update(FileRecord)
                .where(
                    FileRecord.id.in_(file_ids),
                    FileRecord.lease_holder == self.replica,
                    FileRecord.status == PROCESSING,
                )
                .values(lease_expires=0.0)
                .execution_options(**_NO_UPDATE_SYNC)
            )

    def release(self) -> None:
        """Give back every file this replica holds (the server stops): pending again."""
        with self.db.session() as session:
            released = session.scalars(
                update(FileRecord)
                .where(FileRecord.lease_holder == self.replica, FileRecord.status == PROCESSING)
                .values(status=PENDING, lease_holder=None, lease_expires=None)
                .returning(FileRecord.id)
                .execution_options(**_NO_UPDATE_SYNC)
            ).all()
            self._close_attempts(session, list(released), RELEASED)

    def _close_attempts(self, session: Any, file_ids: list[str], outcome: str) -> None:
        if file_ids:
            session.execute(
                update(FileAttempt)
                .where(
                    FileAttempt.file_id.in_(file_ids),
                    FileAttempt.replica == self.replica,
                    FileAttempt.ended_at.is_(None),
                )
                .values(ended_at=db_clock(), outcome=outcome)
                .execution_options(**_NO_UPDATE_SYNC)
            )

    def start(self) -> None:
        """Start the heartbeat; files this replica id held before a crash are expired first.

        Only a stable ``replica_id`` finds any: this replica is not processing them (it just
        started), so they need not wait out their lease, yet they count as an attempt.
        """
        with self.db.session() as session:
            session.execute(
                update(FileRecord)
                .where(FileRecord.lease_holder == self.replica, FileRecord.status == PROCESSING)
                .values(lease_expires=0.0)
                .execution_options(**_NO_UPDATE_SYNC)
            )
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="rag-lease-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the heartbeat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _beat(self) -> None:
        # A third of the lease: two renewals may fail (a slow database) before it runs out.
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception:
                log.exception("renewing the leases of replica %s failed", self.replica)


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
    attempt: int
    content: str = ""
    content_hash: str = ""
    error: str | None = None
    finished: bool = False


class FileProcessor:
    """Extract, chunk, embed and store uploaded files; copy their vectors into knowledge."""

    def __init__(
        self, database: Database, pipeline: Pipeline, leases: Leases | None = None
    ) -> None:
        self.db = database
        self.pipeline = pipeline
        self.leases = leases or Leases(database)
        # Serialises "is the file done?" against "copy it into its knowledge bases", so a
        # file added while processing is copied exactly once, by whichever side sees it done.
        self.link_lock = threading.Lock()
        self._indexed: set[str] = set()

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
        if outcome == _DELETED:
            # Deleted while we worked: drop whatever we wrote.
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
        with self.link_lock, self.db.session() as session:
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
                .execution_options(**_NO_UPDATE_SYNC)
            ).rowcount
            if not finished:
                gone = session.get(FileRecord, file_id) is None
                return _DELETED if gone else _LOST
            session.execute(
                update(FileAttempt)
                .where(
                    FileAttempt.file_id == file_id,
                    FileAttempt.attempt == upload.attempt,
                    FileAttempt.replica == self.leases.replica,
                    FileAttempt.ended_at.is_(None),
                )
                .values(ended_at=db_clock(), outcome=status)
                .execution_options(**_NO_UPDATE_SYNC)
            )
            if status != COMPLETED:
                return _DONE
            links = session.scalars(
                select(KnowledgeFile).where(
                    KnowledgeFile.file_id == file_id, KnowledgeFile.copied.is_(False)
                )
            ).all()
            for link in links:
                self.copy_vectors(file_id, link.knowledge_id)
                link.copied = True
            return _DONE

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
    """Threads that take pending files from the database, oldest first, a batch at a time.

    Any number of replicas may run one on the same database: a claim leases its files to
    this replica (see Leases), and a file whose lease ran out is claimed again.
    """

    def __init__(
        self, database: Database, processor: FileProcessor, threads: int = 1, batch: int = 16
    ) -> None:
        self.db = database
        self.processor = processor
        self.leases = processor.leases
        self._threads_wanted = threads
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the lease heartbeat and the threads."""
        # Files another replica holds are left alone, even right after a restart: a
        # dead holder's lease runs out and they are claimed then.
        self.leases.start()
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
        """Ask the threads to stop after their current file; give back what they still hold."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.leases.stop()
        try:
            self.leases.release()
        except Exception:  # the database is down: the leases run out instead
            log.exception("giving back the files of replica %s failed", self.leases.replica)

    def claim(self) -> list[str]:
        """Lease pending files (up to a batch, fairly across users) to this replica; their ids.

        Files whose lease ran out are claimed like pending ones, except that one claimed
        ``max_attempts`` times already is failed instead.
        """
        while True:
            claimed, spent = self._claim_once()
            if claimed or not spent:
                return claimed

    def _claim_once(self) -> tuple[list[str], int]:
        leases = self.leases
        claimable = leases.claimable()
        # Round robin over users, oldest first within each: one user's thousand uploads
        # must not make another user's single file wait behind all of them.
        turn = (
            func.row_number()
            .over(partition_by=FileRecord.user_id, order_by=(FileRecord.queued_at, FileRecord.id))
            .label("turn")
        )
        ranked = select(FileRecord.id, FileRecord.queued_at, turn).where(claimable).subquery()
        order = (ranked.c.turn, ranked.c.queued_at, ranked.c.id)
        spent = and_(FileRecord.status == PROCESSING, FileRecord.attempts >= leases.max_attempts)
        reason = (
            f"processing did not finish in {leases.max_attempts} attempts: each time, the "
            "server processing the file stopped (or stalled) before it was done"
        )
        with self.db.session() as session:
            if self.db.dialect == "postgresql":
                # Lock the batch's rows first, skipping rows another replica is claiming
                # right now: replicas never wait on each other, and never claim one row twice.
                # (FOR UPDATE cannot share a query level with the window: it locks files only.)
                chosen = session.scalars(
                    select(FileRecord.id)
                    .join(ranked, ranked.c.id == FileRecord.id)
                    .where(claimable)
                    .order_by(*order)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True, of=FileRecord)
                ).all()
                if not chosen:
                    return [], 0
                target = FileRecord.id.in_(chosen)
            else:
                # SQLite: one UPDATE … RETURNING, a write from its first statement, so SQLite
                # takes its write lock at once instead of failing a read-then-write upgrade,
                # and the claimable condition, checked again on the locked rows, makes each
                # claim exclusive between threads (and processes on one file).
                target = FileRecord.id.in_(
                    select(ranked.c.id).order_by(*order).limit(self._batch).scalar_subquery()
                )
            rows = session.execute(
                update(FileRecord)
                .where(target, claimable)
                .values(
                    status=case((spent, literal(FAILED)), else_=literal(PROCESSING)),
                    error=case((spent, literal(reason)), else_=null()),
                    lease_holder=case((spent, null()), else_=literal(leases.replica)),
                    lease_expires=case((spent, null()), else_=leases.expiry()),
                    attempts=case((spent, FileRecord.attempts), else_=FileRecord.attempts + 1),
                )
                .returning(FileRecord.id, FileRecord.status)
                .execution_options(**_NO_UPDATE_SYNC)
            ).all()
            # The previous holders of files taken over: their attempts ended (expired).
            taken = [row.id for row in rows]
            if taken:
                session.execute(
                    update(FileAttempt)
                    .where(FileAttempt.file_id.in_(taken), FileAttempt.ended_at.is_(None))
                    .values(ended_at=db_clock(), outcome=EXPIRED)
                    .execution_options(**_NO_UPDATE_SYNC)
                )
            claimed = [row.id for row in rows if row.status == PROCESSING]
            leases.record_attempts(session, claimed)
        failed = len(rows) - len(claimed)
        if failed:
            log.warning(
                "failed %d files whose processing stopped %d times", failed, leases.max_attempts
            )
        return claimed, failed

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
