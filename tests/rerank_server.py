"""A loopback reranking server (the stand-in for Infinity, TEI or Jina, which cannot run
here): Cohere's shape at ``/v1/rerank``, TEI's at ``/rerank``, scoring by shared words."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def overlap_score(query: str, document: str) -> float:
    """The share of the query's words the document holds (the stand-in model)."""
    words = set(re.findall(r"\w+", query.lower()))
    found = set(re.findall(r"\w+", document.lower()))
    return len(words & found) / max(1, len(words))


@dataclass
class RerankServer:
    """Records requests; ``faults`` is a queue of what to answer before answering well:
    a status code, or "missing", "duplicate", "malformed", "stall"."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    faults: list[int | str] = field(default_factory=list)
    stall_seconds: float = 3.0


@contextmanager
def rerank_server() -> Iterator[RerankServer]:
    state = RerankServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, raw: bytes | None = None) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            state.headers.append(dict(self.headers))
            fault = state.faults.pop(0) if state.faults else None
            if isinstance(fault, int):
                self._send(fault, {"error": f"fault {fault}"})
                return
            if fault == "malformed":
                self._send(200, None, raw=b"{not json")
                return
            if fault == "stall":
                time.sleep(state.stall_seconds)
            tei = self.path == "/rerank"
            texts = body["texts"] if tei else body["documents"]
            scored = [(i, overlap_score(body["query"], t)) for i, t in enumerate(texts)]
            scored.sort(key=lambda pair: -pair[1])  # best first, as servers answer
            if fault == "missing":
                scored = scored[1:]
            if fault == "duplicate":
                scored = [scored[0], *scored]
            key = "score" if tei else "relevance_score"
            items = [{"index": i, key: s} for i, s in scored]
            self._send(200, items if tei else {"results": items[: body.get("top_n")]})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
