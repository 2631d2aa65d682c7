"""Two real ``rag serve`` replicas on one PostgreSQL: uploads spread over both, one replica
SIGKILLed while it holds files; every file ends completed, none twice at once, none lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.loopback import serve

from .conftest import upload_text
from .databases import fresh_postgres_url, postgres_url
from .harness import OllamaEmbedHandler
from .test_postgres import _free_port

__all__ = ["fresh_postgres_url", "postgres_url"]

LEASE_SECONDS = 3
EMBED_DELAY = 0.3  # seconds per embedding request: processing lasts long enough to kill


class _SlowEmbedder(OllamaEmbedHandler):
    """Ollama's /api/embed, answering each request after EMBED_DELAY."""

    delay = EMBED_DELAY


@dataclass
class Replica:
    """One ``rag serve`` process."""

    name: str
    url: str
    process: subprocess.Popen
    log: Path


@contextmanager
def _replica(name: str, database_url: str, embed_url: str, root: Path) -> Iterator[Replica]:
    # Each replica has its own data dir, so its own embedded vector store: the embedded
    # engines are single-process and no Qdrant server runs here; this test is about the job
    # queue. (Uploads land in the receiving replica's folder; on one host the other
    # replica reads them by path, as replicas do from a shared volume in a deployment.)
    data_dir = root / name
    data_dir.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(data_dir),
        "RAG_DATABASE_URL": database_url,
        "RAG_EMBEDDER": "ollama",
        "RAG_EMBEDDING_BASE_URL": embed_url,
        "RAG_EMBEDDING_MODEL": "slow-embed",
        "RAG_ENABLE_SIGNUP": "true",
        "RAG_REPLICA_ID": name,
        "RAG_PROCESSING_LEASE_SECONDS": str(LEASE_SECONDS),
        "RAG_PROCESSING_WORKERS": "1",
        "RAG_PROCESSING_BATCH": "2",
    }
    log = root / f"{name}.log"
    rag = Path(sys.executable).with_name("rag")
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(rag), "serve", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    replica = Replica(name, f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{replica.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield replica
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_a_killed_replicas_files_are_taken_over_and_none_is_processed_twice_at_once(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(fresh_postgres_url)

    def query(sql: str) -> list[Any]:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)).all())

    with serve(_SlowEmbedder) as embed_url, ExitStack() as stack:
        one = stack.enter_context(_replica("replica-1", fresh_postgres_url, embed_url, tmp_path))
        two = stack.enter_context(_replica("replica-2", fresh_postgres_url, embed_url, tmp_path))
        token = httpx.post(
            f"{one.url}/api/v1/auths/signup",
            json={"name": "Admin", "email": "admin@example.com", "password": "pw-123456"},
            timeout=30,
        ).json()["token"]
        key = httpx.post(
            f"{one.url}/api/v1/auths/api_key",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()["api_key"]

        uploaded = [
            upload_text(
                (one, two)[n % 2].url,
                key,
                f"note-{n}.txt",
                f"Note {n}: the lighthouse keeper counted {n} ships passing in the fog.\n",
            )["id"]
            for n in range(40)
        ]

        # Kill replica 1 mid-way, at a moment it holds claimed files.
        deadline = time.monotonic() + 120
        while True:
            done = query("SELECT count(*) FROM files WHERE status = 'completed'")[0][0]
            held = query(
                "SELECT count(*) FROM files "
                "WHERE status = 'processing' AND lease_holder = 'replica-1'"
            )[0][0]
            if done >= 8 and held:
                break
            assert time.monotonic() < deadline, "replica 1 never held files"
            time.sleep(0.02)
        one.process.send_signal(signal.SIGKILL)
        one.process.wait(10)
        killed_at = time.time()

        deadline = time.monotonic() + 180
        while query("SELECT count(*) FROM files WHERE status IN ('pending', 'processing')")[0][0]:
            assert two.process.poll() is None, two.log.read_text()
            assert time.monotonic() < deadline, "files left unfinished:\n" + two.log.read_text()
            time.sleep(0.2)

    files = {row.id: row for row in query("SELECT id, status, error, chunks FROM files")}
    # None lost, every one completed (one takeover is far from the attempts cap).
    assert set(files) == set(uploaded)
    assert {f.status for f in files.values()} == {"completed"}, [
        (f.id, f.status, f.error) for f in files.values() if f.status != "completed"
    ]
    assert all(f.chunks == 1 for f in files.values())

    attempts: dict[str, list[Any]] = {}
    for row in query(
        "SELECT file_id, attempt, replica, claimed_at, ended_at, outcome "
        "FROM file_attempts ORDER BY file_id, claimed_at"
    ):
        attempts.setdefault(row.file_id, []).append(row)
    assert set(attempts) == set(uploaded)
    taken_over = 0
    for history in attempts.values():
        # Never two holders at once: each attempt ended before the next was claimed.
        for before, after in pairwise(history):
            assert before.ended_at is not None and before.ended_at <= after.claimed_at, history
        # Processed to the end exactly once, by the last attempt.
        assert [a.outcome for a in history].count("completed") == 1, history
        assert history[-1].outcome == "completed", history
        assert [a.attempt for a in history] == list(range(1, len(history) + 1)), history
        for attempt in history[:-1]:
            # Only the killed replica lost files, and they were taken over after it died.
            assert (attempt.replica, attempt.outcome) == ("replica-1", "expired"), history
            assert attempt.ended_at >= killed_at, history
            taken_over += 1
    assert taken_over >= 1  # it was killed while holding files
    finishers = {history[-1].replica for history in attempts.values()}
    assert finishers == {"replica-1", "replica-2"}  # both did work before the kill
    engine.dispose()
