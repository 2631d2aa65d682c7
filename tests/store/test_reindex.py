"""`rag reindex`: a knowledge base re-embedded beside the old one, switched only when whole."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from rag_pipeline.cli import app
from rag_pipeline.embedding import OllamaEmbedder
from rag_pipeline.errors import EmbeddingError
from rag_pipeline.store import EdgeStore, VectorStore
from rag_pipeline.store.reindex import reindex
from tests.conftest import DIM as NEW_DIM
from tests.conftest import fake_vector
from tests.loopback import serve

from .test_congruence import DIM, ENGINES, LAYOUTS, make_points, open_store


@dataclass
class FailingEmbedServer:
    """An Ollama /api/embed stand-in that answers 400 once ``fail_after`` requests are done."""

    url: str = ""
    fail_after: int | None = None
    served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def ollama() -> Iterator[FailingEmbedServer]:
    state = FailingEmbedServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                failing = state.fail_after is not None and state.served >= state.fail_after
                state.served += 1
            status, answer = (
                200,
                {
                    "model": body["model"],
                    "embeddings": [fake_vector(t, NEW_DIM) for t in body["input"]],
                },
            )
            if failing:
                status, answer = 400, {"error": "injected failure"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    with serve(Handler) as url:
        state.url = url
        yield state


def embedder(server: FailingEmbedServer, model: str = "new-model") -> OllamaEmbedder:
    return OllamaEmbedder(server.url, model, batch_size=16, concurrency=1)


def snapshot(store: VectorStore, name: str) -> dict[str, tuple[dict, Any, Any]]:
    """Every point of a collection: payload, dense vector, sparse vector."""
    return {
        i: (p, v["dense"], v.get("sparse"))
        for i, p, v in store.scroll_payloads(name, with_vectors=True)
    }


@pytest.fixture(params=[(e, lay) for lay in LAYOUTS for e in ENGINES], ids="-".join)
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    store = open_store(*request.param, tmp_path)
    store.ensure_collection("kb", model="old-model", dimension=DIM)
    store.upsert("kb", make_points(300))
    store.ensure_collection("other", model="old-model", dimension=DIM)
    store.upsert("other", make_points(5))
    yield store
    store.close()


def test_reindex_switches_to_the_complete_new_collection(
    filled: VectorStore, ollama: FailingEmbedServer
) -> None:
    before = snapshot(filled, "kb")
    report = reindex(filled, "kb", embedder(ollama), batch=64)
    assert (report.points, report.old_model, report.new_model) == (300, "old-model", "new-model")
    assert filled.collection_model("kb") == ("new-model", NEW_DIM)
    assert filled.list_collections() == ["kb", "other"]
    after = snapshot(filled, "kb")
    assert after.keys() == before.keys()
    for point_id, (payload, dense, sparse) in after.items():
        # Same payload and sparse vector; the dense one is the new model's for the text.
        assert payload == before[point_id][0]
        assert sparse.indices == before[point_id][2].indices
        expected = np.asarray(fake_vector(payload["text"], NEW_DIM))
        assert np.allclose(dense, expected / np.linalg.norm(expected), atol=1e-5)
    hit = filled.search("kb", dense=np.asarray(fake_vector("chunk 42", NEW_DIM)), limit=1)[0]
    assert hit.text == "chunk 42"
    # A second reindex replaces the collection the alias names now.
    reindex(filled, "kb", embedder(ollama, "newer-model"))
    assert filled.collection_model("kb") == ("newer-model", NEW_DIM)
    assert filled.list_collections() == ["kb", "other"]
    assert filled.count("kb") == 300 and filled.count("other") == 5
    assert filled.delete_collection("kb") is True
    assert filled.list_collections() == ["other"]
    assert filled.collection_model("kb") is None


def test_a_failure_mid_way_leaves_the_old_collection_serving(
    filled: VectorStore, ollama: FailingEmbedServer
) -> None:
    before = snapshot(filled, "kb")
    query = make_points(300)[42].vector
    hits_before = [h.id for h in filled.search("kb", dense=query, limit=5)]
    ollama.fail_after = 5  # 5 batches of 16 embedded, then the model server fails
    with pytest.raises(EmbeddingError, match="400"):
        reindex(filled, "kb", embedder(ollama), batch=32)
    assert ollama.served == 6
    assert filled.collection_model("kb") == ("old-model", DIM)
    assert filled.list_collections() == ["kb", "other"]  # the half-built one is gone
    after = snapshot(filled, "kb")
    assert after.keys() == before.keys()
    for point_id, (payload, dense, _) in after.items():
        assert payload == before[point_id][0]
        # Bit-for-bit on qdrant-edge; local mode re-rounds float32 on each read (1 ulp).
        assert np.allclose(dense, before[point_id][1], rtol=0, atol=1e-6)
    assert [h.id for h in filled.search("kb", dense=query, limit=5)] == hits_before


def test_the_embedded_alias_survives_a_restart(tmp_path: Path, ollama: FailingEmbedServer) -> None:
    store = EdgeStore(tmp_path)
    store.ensure_collection("kb", model="old-model", dimension=DIM)
    store.upsert("kb", make_points(20))
    reindex(store, "kb", embedder(ollama))
    store.close()
    again = EdgeStore(tmp_path)
    assert again.collection_model("kb") == ("new-model", NEW_DIM)
    assert again.list_collections() == ["kb"]
    assert again.count("kb") == 20
    again.close()


def test_rag_reindex_command(
    tmp_path: Path, ollama: FailingEmbedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAG_EMBEDDER", "ollama")
    monkeypatch.setenv("RAG_EMBEDDING_BASE_URL", ollama.url)
    store = EdgeStore(tmp_path / "qdrant-edge")
    store.ensure_collection("kb", model="old-model", dimension=DIM)
    store.upsert("kb", make_points(40))
    store.close()
    runner = CliRunner()
    ollama.fail_after = 1
    failed = runner.invoke(app, ["reindex", "-k", "kb", "--model", "new-model"])
    assert failed.exit_code == 1, failed.output
    assert "old collection still serves" in failed.output
    ollama.fail_after = None
    done = runner.invoke(app, ["reindex", "-k", "kb", "--model", "new-model", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["points"] == 40
    listed = runner.invoke(app, ["collections", "--json"])
    assert [(c["knowledge_id"], c["model"]) for c in json.loads(listed.stdout)] == [
        ("kb", "new-model")
    ]
