"""A real ``rag serve`` killed in the middle of add / remove / delete / cleanup / reset:
after the restart, every knowledge base lists exactly the files whose vectors it holds.

Two ways of killing it, on SQLite and on PostgreSQL:
- at each named step of each change (``RAG_FAILPOINT``: the server SIGKILLs itself when a
  real request reaches the step, see rag_pipeline/server/failpoints.py), one after another
  on one growing data set, restarting after each;
- with SIGKILL from outside after a random delay, during a random operation.
After each restart the invariant is read back through the API (listings, file lookups,
``query/collection`` over every vector of each knowledge base); at the end the stopped
server's store is opened directly and checked point by point.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag_pipeline.server import failpoints
from rag_pipeline.server.scopes import UPLOADS_COLLECTION
from rag_pipeline.settings import Settings
from rag_pipeline.store import open_store
from tests.loopback import serve

from .databases import database_url, fresh_postgres_url, postgres_url
from .harness import OllamaEmbedHandler
from .test_postgres import _free_port

__all__ = ["database_url", "fresh_postgres_url", "postgres_url"]

PASSWORD = "pw-123456"
# Paragraphs per file: about 285 chunks, more than one copy batch (256); three files fit in
# one query's 1000 hits, and no knowledge base here holds more.
PARAGRAPHS = 150
MAX_FILES_IN_KNOWLEDGE = 3
WORDS = [
    "harbour", "lantern", "granite", "meadow", "copper", "falcon", "willow", "ember",
    "glacier", "orchard", "saffron", "tundra", "quarry", "lagoon", "thistle", "basalt",
]  # fmt: skip


def document(name: str) -> str:
    """A text of about 285 chunks (at 32 tokens a chunk), different for every name."""
    rng = random.Random(name)
    paragraphs = []
    for n in range(PARAGRAPHS):
        words = " ".join(rng.choice(WORDS) for _ in range(18))
        paragraphs.append(f"{name} part {n}: {words}.")
    return "\n\n".join(paragraphs)


@dataclass
class Server:
    """``rag serve`` in a process of its own, restarted on one data dir and database."""

    root: Path
    database_url: str
    embed_url: str
    url: str = ""
    key: str = ""
    process: subprocess.Popen | None = None
    starts: int = 0
    log: list[str] = field(default_factory=list)
    _killer: threading.Timer | None = None

    def start(self, failpoint: str = "") -> None:
        port = _free_port()
        env = {
            **os.environ,
            "RAG_DATA_DIR": str(self.root / "data"),
            "RAG_DATABASE_URL": self.database_url,
            "RAG_EMBEDDER": "ollama",
            "RAG_EMBEDDING_BASE_URL": self.embed_url,
            "RAG_EMBEDDING_MODEL": "hash-embed",
            "RAG_CHUNK_SIZE": "32",
            "RAG_CHUNK_OVERLAP": "4",
            "RAG_ENABLE_SIGNUP": "true",
            "RAG_REPLICA_ID": "crash-test",
            "RAG_PROCESSING_LEASE_SECONDS": "2",
            failpoints.ENV: failpoint,
        }
        self.starts += 1
        log = self.root / f"server-{self.starts}.log"
        self.log.append(str(log))
        rag = Path(sys.executable).with_name("rag")
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [str(rag), "serve", "--port", str(port), "--log-level", "warning"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    def wait_killed(self) -> None:
        """Wait for a server that a fail point kills; its exit must be that SIGKILL."""
        assert self.process is not None
        code = self.process.wait(60)
        assert code == -signal.SIGKILL, (code, Path(self.log[-1]).read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def process_kill_after(self, seconds: float) -> None:
        """SIGKILL the server ``seconds`` from now, from another thread."""
        self._killer = threading.Timer(seconds, self.kill)
        self._killer.start()

    def join_killer(self) -> None:
        assert self._killer is not None
        self._killer.join()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    # -- the API ------------------------------------------------------------------------

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return httpx.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        return response.json()

    def doomed(self, method: str, path: str, **kwargs: Any) -> None:
        """A request the server dies answering (a fail point on its way)."""
        with pytest.raises(httpx.TransportError):
            self.call(method, path, **kwargs)
        self.wait_killed()

    def sign_in(self) -> None:
        form = {"name": "Admin", "email": "admin@example.com", "password": PASSWORD}
        response = httpx.post(f"{self.url}/api/v1/auths/signup", json=form, timeout=30)
        if response.status_code != 200:
            response = httpx.post(f"{self.url}/api/v1/auths/signin", json=form, timeout=30)
        token = response.json()["token"]
        self.key = httpx.post(
            f"{self.url}/api/v1/auths/api_key",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()["api_key"]

    def upload(self, name: str, wait: bool = True) -> str:
        files = {"file": (f"{name}.txt", document(name).encode(), "text/plain")}
        file_id = self.ok("POST", "/api/v1/files/", files=files)["id"]
        if wait:
            self.wait_processed(file_id)
        return file_id

    def wait_processed(self, file_id: str) -> None:
        deadline = time.monotonic() + 120
        while True:
            status = self.ok("GET", f"/api/v1/files/{file_id}/process/status")["status"]
            if status in ("completed", "failed"):
                assert status == "completed"
                return
            assert time.monotonic() < deadline, f"{file_id} still {status}"
            time.sleep(0.1)

    def knowledge(self, name: str) -> str:
        form = {"name": name, "description": ""}
        return str(self.ok("POST", "/api/v1/knowledge/create", json=form)["id"])

    def add(self, knowledge_id: str, file_id: str) -> None:
        self.ok("POST", f"/api/v1/knowledge/{knowledge_id}/file/add", json={"file_id": file_id})


def _vector_counts(server: Server, collection: str) -> Counter[str]:
    """How many vectors of each file the collection answers a query with (all of them)."""
    form = {"collection_names": [collection], "query": "harbour", "k": 1000, "hybrid": False}
    result = server.ok("POST", "/api/v1/retrieval/query/collection", json=form)
    return Counter(m["file_id"] for m in result["metadatas"][0])


def check_invariant(server: Server, files: dict[str, str], gone: set[str]) -> None:
    """Through the API: each knowledge base holds the vectors of exactly its listed files,
    all of them; deleted files and knowledge bases are gone everywhere."""
    chunks: dict[str, int] = {}
    for file_id in files:
        if file_id in gone:
            assert server.call("GET", f"/api/v1/files/{file_id}").status_code == 404
            continue
        record = server.ok("GET", f"/api/v1/files/{file_id}")
        if record["data"]["status"] == "completed":
            own = _vector_counts(server, f"file-{file_id}")
            assert set(own) == {file_id}
            chunks[file_id] = own[file_id]
    listed_files = {f["id"] for f in server.ok("GET", "/api/v1/files/?content=false")["items"]}
    assert listed_files == set(files) - gone
    for knowledge in server.ok("GET", "/api/v1/knowledge/")["items"]:
        knowledge_id = knowledge["id"]
        listed = {
            item["id"]
            for item in server.ok("GET", f"/api/v1/knowledge/{knowledge_id}/files")["items"]
        }
        assert not listed & gone, (knowledge["name"], listed & gone)
        assert len(listed) <= MAX_FILES_IN_KNOWLEDGE  # else they do not fit in one query
        held = _vector_counts(server, knowledge_id)
        # Files still processing are listed without vectors (they come on completion).
        expected = {file_id: chunks[file_id] for file_id in listed if file_id in chunks}
        assert dict(held) == expected, (knowledge["name"], dict(held), expected)


def check_store(root: Path, knowledge_ids: set[str], files: set[str]) -> None:
    """The stopped server's store, read directly: no collection of a deleted knowledge base,
    no vectors of a deleted file anywhere."""
    store = open_store(Settings(data_dir=root / "data"))
    try:
        collections = set(store.list_collections())
        # (A knowledge base emptied by a reset has no collection until a file comes.)
        assert collections - {UPLOADS_COLLECTION} <= knowledge_ids
        assert UPLOADS_COLLECTION in collections
        for collection in collections:
            counted = store.value_counts(collection, "file_id")
            assert set(counted) <= files, (collection, set(counted) - files)
    finally:
        store.close()


# Each step: the fail point, then what reaches it (a function of the server and the state).
@dataclass
class State:
    files: dict[str, str] = field(default_factory=dict)  # id -> name
    knowledge: dict[str, str] = field(default_factory=dict)  # name -> id
    gone: set[str] = field(default_factory=set)


def test_a_kill_at_any_step_leaves_listings_and_vectors_agreeing(
    database_url: str, tmp_path: Path
) -> None:
    state = State()
    with serve(OllamaEmbedHandler) as embed_url:
        server = Server(tmp_path, database_url, embed_url)
        try:
            server.start()
            server.sign_in()
            for name in ("alpha", "beta", "gamma", "delta", "epsilon"):
                state.files[server.upload(name)] = name
            for name in ("one", "two", "three", "four"):
                state.knowledge[name] = server.knowledge(name)
            ids = {name: file_id for file_id, name in state.files.items()}
            one, two, three, four = (state.knowledge[n] for n in ("one", "two", "three", "four"))
            server.add(three, ids["delta"])
            server.add(four, ids["delta"])
            server.add(four, ids["epsilon"])
            server.stop()

            def add(knowledge_id: str, name: str) -> None:
                path = f"/api/v1/knowledge/{knowledge_id}/file/add"
                server.doomed("POST", path, json={"file_id": ids[name]})

            def remove(knowledge_id: str, name: str) -> None:
                path = f"/api/v1/knowledge/{knowledge_id}/file/remove"
                server.doomed("POST", path, json={"file_id": ids[name]})

            def delete_file(name: str) -> None:
                state.gone.add(ids[name])
                server.doomed("DELETE", f"/api/v1/files/{ids[name]}")

            def cleanup(knowledge_id: str, name: str, deletes: bool) -> None:
                if deletes:  # in no other knowledge base: the file goes too
                    state.gone.add(ids[name])
                path = f"/api/v1/knowledge/{knowledge_id}/sync/cleanup"
                server.doomed("POST", path, json={"file_ids": [ids[name]]})

            def uploaded_then_added(knowledge_id: str, name: str) -> None:
                # Added while it is still processing: its link waits for the completion.
                file_id = server.upload(name, wait=False)
                state.files[file_id], ids[name] = name, file_id
                # (If it completed first, the server died before the add arrived.)
                with contextlib.suppress(httpx.TransportError):
                    server.add(knowledge_id, file_id)
                server.wait_killed()

            def reset(knowledge_id: str) -> None:
                server.doomed("POST", f"/api/v1/knowledge/{knowledge_id}/reset")

            def delete_knowledge(knowledge_id: str) -> None:
                state.gone.add(knowledge_id)
                server.doomed("DELETE", f"/api/v1/knowledge/{knowledge_id}/delete")

            steps = [
                ("knowledge.add.linked", lambda: add(one, "alpha")),
                ("knowledge.copy.batch", lambda: add(one, "beta")),
                ("knowledge.copy.done", lambda: add(one, "gamma")),
                ("knowledge.copy.batch", lambda: add(two, "alpha")),
                ("processor.completed", lambda: uploaded_then_added(two, "zeta")),
                ("knowledge.remove.marked", lambda: remove(one, "beta")),
                ("knowledge.remove.vectors", lambda: remove(one, "gamma")),
                ("knowledge.copy.batch", lambda: add(two, "gamma")),
                ("files.delete.marked", lambda: delete_file("alpha")),
                ("files.delete.unlinked", lambda: delete_file("gamma")),
                ("files.delete.vectors", lambda: delete_file("zeta")),
                ("knowledge.remove.marked", lambda: cleanup(three, "delta", deletes=False)),
                ("files.delete.unlinked", lambda: cleanup(four, "epsilon", deletes=True)),
                ("knowledge.copy.done", lambda: add(two, "beta")),
                ("knowledge.reset.marked", lambda: reset(two)),
                ("knowledge.delete.marked", lambda: delete_knowledge(three)),
                ("knowledge.delete.dropped", lambda: delete_knowledge(one)),
            ]
            assert {point for point, _ in steps} == set(failpoints.POINTS)
            for point, step in steps:
                server.start(failpoint=point)
                check_invariant(server, state.files, state.gone)
                step()
            server.start()
            check_invariant(server, state.files, state.gone)
            alive = {k for k in state.knowledge.values() if k not in state.gone}
            assert {k["id"] for k in server.ok("GET", "/api/v1/knowledge/")["items"]} == alive
        finally:
            server.stop()
    check_store(tmp_path, alive, set(state.files) - state.gone)


def test_kills_at_random_moments_leave_listings_and_vectors_agreeing(
    database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(2026)
    trials = 12
    with serve(OllamaEmbedHandler) as embed_url:
        server = Server(tmp_path, database_url, embed_url)
        files: dict[str, str] = {}
        gone: set[str] = set()
        knowledge: set[str] = set()
        try:
            server.start()
            server.sign_in()
            for trial in range(trials):
                # Enough to work on: three files and two knowledge bases, some of them filled.
                alive = [f for f in files if f not in gone]
                while len(alive) < 3:
                    name = f"file-{len(files)}"
                    file_id = server.upload(name)
                    files[file_id] = name
                    alive.append(file_id)
                bases = sorted(k for k in knowledge if k not in gone)
                while len(bases) < 2:
                    bases.append(server.knowledge(f"kb-{len(knowledge)}"))
                    knowledge.add(bases[-1])
                held: dict[str, list[str]] = {}
                for knowledge_id in bases:
                    path = f"/api/v1/knowledge/{knowledge_id}/files"
                    held[knowledge_id] = [f["id"] for f in server.ok("GET", path)["items"]]
                    if len(held[knowledge_id]) < MAX_FILES_IN_KNOWLEDGE - 1:
                        server.add(knowledge_id, rng.choice(alive))
                        held[knowledge_id] = [f["id"] for f in server.ok("GET", path)["items"]]
                knowledge_id = rng.choice(bases)
                # Usually one of its own files (remove, cleanup), but sometimes a new one.
                file_id = rng.choice(held[knowledge_id] or alive)
                if len(held[knowledge_id]) < MAX_FILES_IN_KNOWLEDGE and rng.random() < 0.3:
                    file_id = rng.choice(alive)
                operation = rng.choice(
                    [
                        ("POST", f"/api/v1/knowledge/{knowledge_id}/file/add", file_id),
                        ("POST", f"/api/v1/knowledge/{knowledge_id}/file/remove", file_id),
                        ("DELETE", f"/api/v1/files/{file_id}", None),
                        ("POST", f"/api/v1/knowledge/{knowledge_id}/sync/cleanup", [file_id]),
                        ("POST", f"/api/v1/knowledge/{knowledge_id}/reset", None),
                        ("DELETE", f"/api/v1/knowledge/{knowledge_id}/delete", None),
                    ]
                )
                method, path, value = operation
                body = (
                    {"file_ids": value}
                    if isinstance(value, list)
                    else {"file_id": value}
                    if value
                    else None
                )
                delay = rng.uniform(0.0, 0.4)
                sent = time.monotonic()
                with contextlib.suppress(httpx.TransportError):
                    # Killed while answering, or answered before the kill: both are fine.
                    server.process_kill_after(delay)
                    server.call(method, path, json=body)
                server.join_killer()
                assert server.process is not None and server.process.poll() is not None
                server.start()
                # What the kill let through: deleted or not, the API says which.
                for some_id in files:
                    if server.call("GET", f"/api/v1/files/{some_id}").status_code == 404:
                        gone.add(some_id)
                for some_id in knowledge:
                    if server.call("GET", f"/api/v1/knowledge/{some_id}").status_code == 404:
                        gone.add(some_id)
                check_invariant(server, files, gone)
                assert time.monotonic() - sent < 120, (trial, operation)
        finally:
            server.stop()
    check_store(tmp_path, knowledge - gone, set(files) - gone)
