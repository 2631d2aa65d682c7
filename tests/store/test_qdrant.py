"""QdrantStore translates the engine's errors on every call, not only when it opens."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from rag_pipeline.errors import StoreError
from rag_pipeline.store import QdrantStore
from rag_pipeline.store.base import StoredPoint
from tests.loopback import serve

# The fake answers qdrant-client's version check with a 500 too; it warns and goes on.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")


class _FailingQdrant(BaseHTTPRequestHandler):
    """A Qdrant server whose every answer is a 500 with Qdrant's error body."""

    def _fail(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"status": {"error": "Service internal error: disk full"}}).encode()
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = _fail

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_error_on_any_call_is_a_store_error_naming_the_call() -> None:
    with serve(_FailingQdrant) as url:
        store = QdrantStore(url, timeout=5)
        try:
            with pytest.raises(StoreError) as caught:
                store.count("kb")
            message = str(caught.value)
            assert message.startswith(f"Qdrant count failed at {url}: HTTP 500")
            assert "disk full" in message
            point = StoredPoint("5b0c1f55-6a43-4b8e-9f0e-3a7c2d1e8b61", np.ones(4), {}, None)
            with pytest.raises(StoreError, match="Qdrant upsert failed"):
                store.upsert("kb", [point])
        finally:
            store.close()


def test_a_server_that_went_away_is_a_store_error() -> None:
    with serve(_FailingQdrant) as url:
        store = QdrantStore(url, timeout=5)
    try:
        with pytest.raises(StoreError, match="Qdrant collection_exists failed"):
            store.has_collection("kb")
    finally:
        store.close()
