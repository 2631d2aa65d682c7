"""The job queue of uploaded files: leases, claims and the heartbeat, durable in the database.

It knows files only as rows to claim: what processing a file means is the handler it is
given (``FileProcessor.process_batch``); vectors and knowledge bases are not its business.
Any number of replicas may run one on the same database: a claim leases files to one
replica, the heartbeat keeps the lease, and a file whose lease ran out is claimed again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, case, func, insert, literal, null, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from rag_pipeline.server.db import (
    FAILED,
    NO_UPDATE_SYNC,
    PENDING,
    PROCESSING,
    Database,
    FileAttempt,
    FileRecord,
    db_clock,
)

log = logging.getLogger(__name__)

# How an attempt ended, besides COMPLETED and FAILED (see FileAttempt.outcome).
EXPIRED, RELEASED = "expired", "released"


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
                .execution_options(**NO_UPDATE_SYNC)
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
                .execution_options(**NO_UPDATE_SYNC)
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
                .execution_options(**NO_UPDATE_SYNC)
            )

    def release(self) -> None:
        """Give back every file this replica holds (the server stops): pending again."""
        with self.db.session() as session:
            released = session.scalars(
                update(FileRecord)
                .where(FileRecord.lease_holder == self.replica, FileRecord.status == PROCESSING)
                .values(status=PENDING, lease_holder=None, lease_expires=None)
                .returning(FileRecord.id)
                .execution_options(**NO_UPDATE_SYNC)
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
                .execution_options(**NO_UPDATE_SYNC)
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
                .execution_options(**NO_UPDATE_SYNC)
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


class JobQueue:
    """Threads that take pending files from the database, oldest first, a batch at a time.

    Any number of replicas may run one on the same database: a claim leases its files to
    this replica (see Leases), and a file whose lease ran out is claimed again.
    """

    def __init__(
        self,
        database: Database,
        leases: Leases,
        handler: Callable[[list[str]], None],
        threads: int = 1,
        batch: int = 16,
    ) -> None:
        self.db = database
        self.leases = leases
        # Processes claimed files; whatever it does not finish, it abandons (Leases.abandon).
        self.handler = handler
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
                .execution_options(**NO_UPDATE_SYNC)
            ).all()
            # The previous holders of files taken over: their attempts ended (expired).
            taken = [row.id for row in rows]
            if taken:
                session.execute(
                    update(FileAttempt)
                    .where(FileAttempt.file_id.in_(taken), FileAttempt.ended_at.is_(None))
                    .values(ended_at=db_clock(), outcome=EXPIRED)
                    .execution_options(**NO_UPDATE_SYNC)
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
                self.handler(file_ids)
            except Exception:
                log.exception("processing files %s crashed", file_ids)
