"""Background processing: batches of uploads in one shared collection, and exclusive claims."""

from __future__ import annotations

import hashlib
import threading
import uuid
from pathlib import Path

import pytest

from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings
from rag_pipeline.server.db import COMPLETED, FAILED, PENDING, PROCESSING, Database, FileRecord
from rag_pipeline.server.db import User as UserRow
from rag_pipeline.server.jobs import JobQueue, Leases
from rag_pipeline.server.scopes import UPLOADS_COLLECTION
from rag_pipeline.server.services import FileProcessor


@pytest.fixture
def parts(tmp_path: Path, local_embedder):
    settings = ServerSettings(data_dir=tmp_path)
    database = Database(settings.resolved_database_url())
    with database.session() as session:
        session.add(UserRow(id="u1", name="U", email="u@example.com", password_hash="x"))
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        yield database, pipeline
    database.close()


def _add_file(database: Database, folder: Path, name: str, data: bytes, status: str) -> str:
    file_id = str(uuid.uuid4())
    path = folder / file_id / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    with database.session() as session:
        session.add(
            FileRecord(
                id=file_id,
                user_id="u1",
                filename=name,
                path=str(path),
                size=len(data),
                file_hash=hashlib.sha256(data).hexdigest(),
                status=status,
            )
        )
    return file_id


def test_a_batch_shares_one_run_and_keeps_each_file_apart(parts, tmp_path: Path) -> None:
    database, pipeline = parts
    text = b"Otters hold hands while they sleep so they do not drift apart.\n"
    same_a = _add_file(database, tmp_path, "otters.txt", text, PROCESSING)
    same_b = _add_file(database, tmp_path, "otters.txt", text, PROCESSING)
    other = _add_file(database, tmp_path, "owls.md", b"# Owls\n\nOwls hunt at night.\n", PROCESSING)
    broken = _add_file(database, tmp_path, "broken.pdf", b"not a pdf", PROCESSING)
    processor = FileProcessor(database, pipeline)
    processor.process_batch([same_a, same_b, other, broken])

    with database.session() as session:
        rows = {r.id: r for r in session.query(FileRecord)}
    assert {i: rows[i].status for i in (same_a, same_b, other)} == dict.fromkeys(
        (same_a, same_b, other), COMPLETED
    )
    assert rows[broken].status == FAILED and "pdf" in (rows[broken].error or "").lower()
    assert [rows[i].chunks for i in (same_a, same_b, other)] == [1, 1, 1]

    def points(file_id: str) -> list:
        return list(
            pipeline.store.scroll_payloads(UPLOADS_COLLECTION, None, where={"file_id": file_id})
        )

    # Same name, same text, two uploads: two sets of points, each with its own file id.
    a, b = points(same_a), points(same_b)
    assert len(a) == len(b) == 1 and a[0][0] != b[0][0]
    assert a[0][1]["source"] == b[0][1]["source"] == "otters.txt"
    assert points(broken) == []
    # Deleting one upload's vectors leaves the other's.
    processor.delete_file_vectors(same_a)
    assert points(same_a) == [] and len(points(same_b)) == 1

    # Done again after a crash, a file finds its chunks stored: skipped, same count.
    processor.process_batch([same_b])
    with database.session() as session:
        again = session.get(FileRecord, same_b)
        assert (again.status, again.chunks) == (COMPLETED, 1)
    assert len(points(same_b)) == 1


def _queue(database: Database, pipeline: Pipeline, batch: int) -> JobQueue:
    leases = Leases(database)
    return JobQueue(
        database, leases, FileProcessor(database, pipeline, leases).process_batch, batch=batch
    )


def test_claims_are_exclusive_between_threads(parts, tmp_path: Path) -> None:
    database, pipeline = parts
    ids = {_add_file(database, tmp_path, f"f{n}.txt", b"x", PENDING) for n in range(40)}
    workers = [_queue(database, pipeline, batch=3), _queue(database, pipeline, batch=5)]
    claimed: list[list[str]] = []
    lock = threading.Lock()

    def drain(worker: JobQueue) -> None:
        while batch := worker.claim():
            assert len(batch) <= worker._batch
            with lock:
                claimed.append(batch)

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [file_id for batch in claimed for file_id in batch]
    assert sorted(every) == sorted(ids)  # each file once, none left behind
    with database.session() as session:
        statuses = {r.status for r in session.query(FileRecord)}
    assert statuses == {PROCESSING}


def test_claims_take_turns_between_users(parts, tmp_path: Path) -> None:
    database, pipeline = parts
    with database.session() as session:
        session.add(UserRow(id="u2", name="V", email="v@example.com", password_hash="x"))
    many = [_add_file(database, tmp_path, f"a{n}.txt", b"x", PENDING) for n in range(20)]
    late = _add_file(database, tmp_path, "b.txt", b"y", PENDING)
    with database.session() as session:
        session.get(FileRecord, late).user_id = "u2"
    worker = _queue(database, pipeline, batch=4)
    first = worker.claim()
    # The other user's one file goes in the first batch, beside the oldest of the many.
    assert late in first and len(first) == 4
    assert set(first) - {late} == set(many[:3])


def test_a_large_file_does_not_hold_back_the_small_ones_beside_it(parts, tmp_path: Path) -> None:
    database, pipeline = parts
    sentence = "The archive holds letters about harbours, ships and long winters. "
    large = _add_file(database, tmp_path, "large.txt", (sentence * 3300).encode(), PROCESSING)
    small = _add_file(database, tmp_path, "small.txt", b"A short note on herons.\n", PROCESSING)
    processor = FileProcessor(database, pipeline)
    worker = threading.Thread(target=processor.process_batch, args=([large, small],))
    worker.start()
    seen: set[tuple[str, str]] = set()
    while worker.is_alive():
        with database.session() as session:
            seen.add((session.get(FileRecord, small).status, session.get(FileRecord, large).status))
    worker.join()
    # At some moment the small file was done while the large one was still being indexed.
    assert (COMPLETED, PROCESSING) in seen
    with database.session() as session:
        assert session.get(FileRecord, large).status == COMPLETED
        assert session.get(FileRecord, large).chunks > 100
