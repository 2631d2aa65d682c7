"""Collection settings (shards, replicas, on-disk, int8 quantization, HNSW) reach the engine."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_pipeline.errors import ConfigError
from rag_pipeline.settings import Settings
from rag_pipeline.store import CollectionConfig, EdgeStore, QdrantStore, open_store
from rag_pipeline.store.base import FILTERED_FIELDS
from tests.loopback import serve

from .test_congruence import DIM, make_points

FULL = CollectionConfig(
    shard_number=3,
    replication_factor=2,
    write_consistency_factor=2,
    on_disk=True,
    quantization="int8",
    hnsw_m=32,
    hnsw_ef_construct=200,
)


class FakeQdrant:
    """A loopback HTTP server answering the few Qdrant REST calls collection creation makes,
    recording each request (qdrant-client's local mode keeps only some of the settings)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""

    def bodies(self, method: str, path: str) -> list[Any]:
        """The JSON bodies sent with ``method`` to ``path``."""
        return [b for m, p, b in self.requests if m == method and p.split("?")[0] == path]


@pytest.fixture
def fake_qdrant() -> Iterator[FakeQdrant]:
    state = FakeQdrant()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, result: Any, *, wrap: bool = True) -> None:
            body = {"result": result, "status": "ok", "time": 0.0} if wrap else result
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with state.lock:
                state.requests.append((self.command, self.path, body))

        def do_GET(self) -> None:
            self._record()
            if self.path.endswith("/exists"):
                self._answer({"exists": False})
            else:
                self._answer({"title": "qdrant", "version": "1.20.0"}, wrap=False)

        def do_PUT(self) -> None:
            self._record()
            if "/index" in self.path:
                self._answer({"operation_id": 1, "status": "completed"})
            else:
                self._answer(True)

    with serve(Handler) as url:
        state.url = url
        yield state
        # qdrant-client asks for the server's version from a thread of its own; let it
        # finish before the server goes, or it warns of a failed compatibility check.
        for _ in range(100):
            if any(m == "GET" and p == "/" for m, p, _ in state.requests):
                break
            time.sleep(0.05)


def test_a_server_is_asked_for_every_setting(fake_qdrant: FakeQdrant) -> None:
    store = QdrantStore(fake_qdrant.url, config=FULL)
    store.ensure_collection("kb", model="m", dimension=DIM)
    [body] = fake_qdrant.bodies("PUT", "/collections/kb")
    assert body["shard_number"] == 3
    assert body["replication_factor"] == 2
    assert body["write_consistency_factor"] == 2
    assert body["on_disk_payload"] is True
    assert body["vectors"]["dense"]["on_disk"] is True
    assert body["sparse_vectors"]["sparse"]["index"]["on_disk"] is True
    assert body["hnsw_config"]["m"] == 32 and body["hnsw_config"]["ef_construct"] == 200
    assert body["quantization_config"]["scalar"]["type"] == "int8"
    assert body["metadata"] == {"model": "m", "dimension": DIM}
    # Every field our code filters on is indexed when the collection is made.
    indexed = {
        b["field_name"]: b["field_schema"]
        for b in fake_qdrant.bodies("PUT", "/collections/kb/index")
    }
    assert indexed == dict.fromkeys(FILTERED_FIELDS, "keyword")
    store.ensure_payload_index("kb", "tenant", is_tenant=True)
    last = fake_qdrant.bodies("PUT", "/collections/kb/index")[-1]
    assert last == {"field_name": "tenant", "field_schema": {"type": "keyword", "is_tenant": True}}
    store.close()


def test_defaults_leave_the_engine_its_own(fake_qdrant: FakeQdrant) -> None:
    store = QdrantStore(fake_qdrant.url)
    store.ensure_collection("kb", model="m", dimension=DIM)
    [body] = fake_qdrant.bodies("PUT", "/collections/kb")
    for key in ("shard_number", "replication_factor", "hnsw_config", "quantization_config"):
        assert body.get(key) is None, key
    store.close()


def test_settings_from_the_environment_reach_the_server(
    fake_qdrant: FakeQdrant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "RAG_QDRANT_URL": fake_qdrant.url,
        "RAG_QDRANT_SHARDS": "4",
        "RAG_QDRANT_REPLICATION": "2",
        "RAG_QDRANT_WRITE_CONSISTENCY": "1",
        "RAG_QDRANT_ON_DISK": "true",
        "RAG_QDRANT_QUANTIZATION": "int8",
        "RAG_QDRANT_HNSW_M": "0",
        "RAG_QDRANT_HNSW_EF_CONSTRUCT": "64",
    }.items():
        monkeypatch.setenv(name, value)
    store = open_store(Settings(data_dir=tmp_path))
    store.ensure_collection("kb", model="m", dimension=DIM)
    [body] = fake_qdrant.bodies("PUT", "/collections/kb")
    assert (body["shard_number"], body["replication_factor"]) == (4, 2)
    assert body["write_consistency_factor"] == 1
    assert body["hnsw_config"] == {"m": 0, "ef_construct": 64}
    assert body["quantization_config"]["scalar"]["type"] == "int8"
    assert body["on_disk_payload"] is True
    store.close()


def test_local_mode_keeps_the_storage_settings(tmp_path: Path) -> None:
    store = QdrantStore(path=str(tmp_path), config=FULL)
    store.ensure_collection("kb", model="m", dimension=DIM)
    store.upsert("kb", make_points(20))
    store.close()
    from qdrant_client import QdrantClient

    # Read back by a fresh client from what local mode persisted. It keeps the vectors'
    # on-disk flags and metadata; sharding, HNSW and quantization mean nothing to it.
    client = QdrantClient(path=str(tmp_path))
    params = client.get_collection("kb").config.params
    assert params.vectors["dense"].on_disk is True  # type: ignore[index]
    assert params.sparse_vectors["sparse"].index.on_disk is True  # type: ignore[index,union-attr]
    client.close()


def test_the_embedded_engine_applies_storage_quantization_and_hnsw(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path, config=FULL)
    store.ensure_collection("kb", model="m", dimension=DIM)
    points = make_points(50)
    store.upsert("kb", points)
    store.build_index("kb")
    hits = store.search("kb", dense=np.asarray(points[7].vector), limit=1)
    assert hits[0].id == points[7].id
    store.close()
    # The engine's own record of the shard's configuration.
    config = json.loads((tmp_path / "kb" / "shard" / "edge_config.json").read_text())
    assert config["on_disk_payload"] is True
    assert config["vectors"]["dense"]["on_disk"] is True
    assert config["sparse_vectors"]["sparse"]["on_disk"] is True
    assert (config["hnsw_config"]["m"], config["hnsw_config"]["ef_construct"]) == (32, 200)
    assert config["quantization_config"]["scalar"]["type"] == "int8"


def test_bad_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="shard_number"):
        CollectionConfig(shard_number=0)
    with pytest.raises(ConfigError, match="quantization"):
        CollectionConfig(quantization="int4")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ef_construct"):
        CollectionConfig(hnsw_ef_construct=1)
