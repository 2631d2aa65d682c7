"""Leases on files being processed, on SQLite and PostgreSQL: claims exclusive across
replicas, an expired lease taken over, a stale holder's result refused, attempts capped."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings
from rag_pipeline.server.db import (
    COMPLETED,
    FAILED,
    PENDING,
    PROCESSING,
    Database,
    FileAttempt,
    FileRecord,
)
from rag_pipeline.server.db import User as UserRow
from rag_pipeline.server.jobs import JobQueue, Leases
from rag_pipeline.server.services import FileProcessor

from .databases import database_url, fresh_postgres_url, postgres_url

__all__ = ["database_url", "fresh_postgres_url", "postgres_url"]


@pytest.fixture
def parts(database_url: str, tmp_path: Path, local_embedder) -> Iterator[tuple]:
    database = Database(database_url)
    with database.session() as session:
        session.add(UserRow(id="u1", name="U", email="u@example.com", password_hash="x"))
        session.add(UserRow(id="u2", name="V", email="v@example.com", password_hash="x"))
    with Pipeline(ServerSettings(data_dir=tmp_path), embedder=local_embedder) as pipeline:
        yield database, pipeline
    database.close()


def _add_file(
    database: Database, folder: Path, text: str, status: str = PENDING, user: str = "u1"
) -> str:
    file_id = str(uuid.uuid4())
    path = folder / file_id / "note.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    with database.session() as session:
        session.add(
            FileRecord(
                id=file_id,
                user_id=user,
                filename="note.txt",
                path=str(path),
                size=len(text),
                file_hash=hashlib.sha256(text.encode()).hexdigest(),
                status=status,
            )
        )
    return file_id


@dataclass
class _Replica:
    """One replica's queue and the processor it hands claimed files to."""

    queue: JobQueue
    processor: FileProcessor

    @property
    def leases(self) -> Leases:
        return self.queue.leases

    def claim(self) -> list[str]:
        return self.queue.claim()

    def stop(self) -> None:
        self.queue.stop()


def _replica(
    database: Database, pipeline: Pipeline, name: str, seconds: float = 60.0, batch: int = 4
) -> _Replica:
    leases = Leases(database, name, seconds=seconds, max_attempts=3)
    processor = FileProcessor(database, pipeline, leases)
    return _Replica(JobQueue(database, leases, processor.process_batch, batch=batch), processor)


def _row(database: Database, file_id: str) -> FileRecord:
    with database.session() as session:
        record = session.get(FileRecord, file_id)
        assert record is not None
        return record


def _history(database: Database, file_id: str) -> list[tuple]:
    with database.session() as session:
        attempts = session.scalars(
            select(FileAttempt).where(FileAttempt.file_id == file_id).order_by(FileAttempt.id)
        ).all()
        return [(a.attempt, a.replica, a.outcome, a.claimed_at, a.ended_at) for a in attempts]


def test_an_expired_lease_is_taken_over_and_the_stale_holder_cannot_finish(
    parts, tmp_path: Path
) -> None:
    database, pipeline = parts
    file_id = _add_file(database, tmp_path, "Herons stand still in shallow water.\n")
    a = _replica(database, pipeline, "replica-a", seconds=1.0)
    b = _replica(database, pipeline, "replica-b")
    assert a.claim() == [file_id]
    assert b.claim() == []  # a holds a live lease
    # a starts on the file (its rows loaded, as process_batch does) and then stalls: no
    # heartbeat runs, so its lease runs out and b takes the file over.
    stale = a.processor._load_rows([file_id])
    assert [u.attempt for u in stale] == [1]
    time.sleep(1.5)
    assert b.claim() == [file_id]
    taken = _row(database, file_id)
    assert (taken.status, taken.lease_holder, taken.attempts) == (PROCESSING, "replica-b", 2)

    # a wakes up and records its result: refused, the row stays b's.
    stale[0].content = "a stale result"
    a.processor._record(stale[0], 1)
    still = _row(database, file_id)
    assert (still.status, still.lease_holder, still.content) == (PROCESSING, "replica-b", None)

    b.processor.process_batch([file_id])
    done = _row(database, file_id)
    assert (done.status, done.lease_holder, done.lease_expires) == (COMPLETED, None, None)
    assert done.content == "Herons stand still in shallow water."
    history = _history(database, file_id)
    assert [h[:3] for h in history] == [(1, "replica-a", "expired"), (2, "replica-b", COMPLETED)]
    # The two attempts do not overlap: b claimed when a's attempt had ended.
    assert history[0][4] <= history[1][3] <= history[1][4]


def test_the_heartbeat_keeps_a_lease_until_the_replica_stops_renewing(
    parts, tmp_path: Path
) -> None:
    database, pipeline = parts
    file_id = _add_file(database, tmp_path, "Owls hunt at night.\n")
    a = _replica(database, pipeline, "replica-a", seconds=2.0)
    b = _replica(database, pipeline, "replica-b")
    a.leases.start()
    try:
        assert a.claim() == [file_id]
        time.sleep(5.0)  # two and a half leases, renewed every third of one
        assert b.claim() == []
    finally:
        a.leases.stop()
    time.sleep(2.5)  # no renewals now: the lease runs out
    assert b.claim() == [file_id]


def test_a_file_whose_lease_keeps_running_out_is_failed_with_a_reason(
    parts, tmp_path: Path
) -> None:
    database, pipeline = parts
    poison = _add_file(database, tmp_path, "This file kills every server that reads it.\n")
    replicas = [_replica(database, pipeline, f"replica-{n}", batch=1) for n in range(3)]
    for replica in replicas:
        assert replica.claim() == [poison]
        replica.leases.abandon([poison])  # as if it died: the lease ends at once
    healthy = _add_file(database, tmp_path, "A harmless note.\n")
    survivor = _replica(database, pipeline, "replica-s", batch=1)
    # The spent file is failed, and the claim goes on to the next file.
    assert survivor.claim() == [healthy]
    failed = _row(database, poison)
    assert (failed.status, failed.lease_holder, failed.attempts) == (FAILED, None, 3)
    assert "did not finish in 3 attempts" in (failed.error or "")
    assert [h[:3] for h in _history(database, poison)] == [
        (n + 1, f"replica-{n}", "expired") for n in range(3)
    ]


def test_a_stopping_replica_gives_its_files_back(parts, tmp_path: Path) -> None:
    database, pipeline = parts
    file_id = _add_file(database, tmp_path, "Beavers build dams.\n")
    a = _replica(database, pipeline, "replica-a")
    assert a.claim() == [file_id]
    a.stop()
    back = _row(database, file_id)
    assert (back.status, back.lease_holder, back.lease_expires) == (PENDING, None, None)
    b = _replica(database, pipeline, "replica-b")
    assert b.claim() == [file_id]
    assert [h[:3] for h in _history(database, file_id)] == [
        (1, "replica-a", "released"),
        (2, "replica-b", None),
    ]


def test_inline_processing_leases_the_file_first(parts, tmp_path: Path) -> None:
    database, pipeline = parts
    # An upload processed inline: marked processing at once, with no lease yet.
    file_id = _add_file(database, tmp_path, "Puffins nest on cliffs.\n", status=PROCESSING)
    other = _replica(database, pipeline, "replica-other")
    assert other.claim() == []  # a new unleased row is not another replica's to take
    a = _replica(database, pipeline, "replica-a")
    a.processor.process(file_id)
    assert _row(database, file_id).status == COMPLETED
    assert [h[:3] for h in _history(database, file_id)] == [(1, "replica-a", COMPLETED)]


def test_claims_are_exclusive_across_replicas(parts, tmp_path: Path) -> None:
    database, pipeline = parts
    ids = {_add_file(database, tmp_path, f"note {n}\n", user=f"u{n % 2 + 1}") for n in range(60)}
    replicas = [_replica(database, pipeline, f"replica-{n}", batch=3) for n in range(4)]
    claimed: dict[str, list[str]] = {}
    lock = threading.Lock()
    gate = threading.Barrier(8)

    def drain(replica: _Replica) -> None:
        gate.wait()
        while batch := replica.claim():
            assert len(batch) <= 3
            with lock:
                for file_id in batch:
                    claimed.setdefault(file_id, []).append(replica.leases.replica)

    threads = [threading.Thread(target=drain, args=(r,)) for r in replicas * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(claimed) == ids
    assert all(len(holders) == 1 for holders in claimed.values())  # each file once
    with database.session() as session:
        holders = dict(session.execute(select(FileRecord.id, FileRecord.lease_holder)).all())
    assert holders == {file_id: names[0] for file_id, names in claimed.items()}


def test_claims_take_turns_between_users(parts, tmp_path: Path) -> None:
    database, pipeline = parts
    many = [_add_file(database, tmp_path, f"a{n}\n") for n in range(20)]
    late = _add_file(database, tmp_path, "b\n", user="u2")
    first = _replica(database, pipeline, "replica-a").claim()
    # The other user's one file goes in the first batch, beside the oldest of the many.
    assert late in first and len(first) == 4
    assert set(first) - {late} == set(many[:3])
