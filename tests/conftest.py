"""Shared fixtures: shared test data, the packaged embedding model, a fake embedding server."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import serve

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One ONNX export of the packaged model serves every test's data dir (it takes ~10 s).
os.environ.setdefault(
    "RAG_MODEL_CACHE_DIR", str(Path(tempfile.gettempdir()) / "rag-pipeline-test-models")
)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_DOCS = REPO / "sample_docs"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("shared test data (../shared/data) is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def local_embedder():
    from rag_pipeline.embedding.local import LocalEmbedder

    return LocalEmbedder()


# A real loopback HTTP server that speaks Ollama's /api/embed and OpenAI's /v1/embeddings.
DIM = 8


def fake_vector(text: str, dim: int = DIM) -> list[float]:
    """A deterministic vector derived from the text (the test's stand-in for a model)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [b / 255.0 for b in digest[:dim]]


@dataclass
class FakeEmbedServer:
    """Records requests; ``faults`` is a queue of status codes to answer before succeeding."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)
    dim: int = DIM
    ragged: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def embed_server() -> Iterator[FakeEmbedServer]:
    state = FakeEmbedServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                fault = state.faults.pop(0) if state.faults else None
            if fault is not None:
                self._send(fault, {"error": f"injected {fault}"})
                return
            texts = body["input"]
            vectors = [fake_vector(t, state.dim) for t in texts]
            if state.ragged and len(vectors) > 1:
                vectors[-1] = vectors[-1][:-1]
            if self.path.endswith("/api/embed"):
                self._send(200, {"model": body["model"], "embeddings": vectors})
            elif self.path.endswith("/embeddings"):
                data = [
                    {"object": "embedding", "index": i, "embedding": v}
                    for i, v in reversed(list(enumerate(vectors)))
                ]
                self._send(200, {"object": "list", "data": data, "model": body["model"]})
            else:
                self._send(404, {"detail": "Not Found"})

    with serve(Handler) as url:
        state.url = url
        yield state
