"""A model server on loopback that answers with scripted faults (tests of retries)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import serve

DIM = 8
CHAT_TEXT = "The quick brown fox jumps over the lazy dog."


def vector(text: str, dim: int = DIM) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [b / 255.0 for b in digest[:dim]]


@dataclass
class Fault:
    """What the server does to one request instead of answering it well.

    ``kind``: ``status`` (answer ``status`` with ``headers``), ``timeout`` (say nothing for
    ``seconds``), ``reset`` (send part of the answer, then a TCP reset), ``eof`` (send part,
    then close cleanly), ``stall`` (send part — a non-streamed answer: the headers and half
    the body — then nothing for ``seconds``), ``malformed``
    (200 with broken JSON), ``longline`` (a streamed line of 20 MB), ``count`` (one vector
    too few), ``dim`` (one dimension too many).
    """

    kind: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 5.0


def status(code: int, **headers: str) -> Fault:
    return Fault("status", code, {k.replace("_", "-"): v for k, v in headers.items()})


@dataclass
class FaultyUpstream:
    """Speaks /api/embed, /v1/embeddings, /v1/chat/completions, /api/chat and the listings.

    ``embed_faults`` and ``chat_faults`` are consumed one per request (``None``: answer
    well); ``rule`` may pick a fault from the request body. ``hits`` records every
    embedding or chat request as ``(path, monotonic time)``.
    """

    url: str = ""
    embed_faults: list[Fault | None] = field(default_factory=list)
    chat_faults: list[Fault | None] = field(default_factory=list)
    rule: Callable[[dict[str, Any]], Fault | None] | None = None
    hits: list[tuple[str, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        with self.lock:
            self.embed_faults.clear()
            self.chat_faults.clear()
            self.hits.clear()
            self.rule = None

    def attempts(self, suffix: str = "") -> list[float]:
        """When each request whose path ends with ``suffix`` arrived."""
        with self.lock:
            return [t for path, t in self.hits if path.endswith(suffix)]


class _Handler(BaseHTTPRequestHandler):
    state: FaultyUpstream

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may have given up, as it should
            self.wfile.write(data)

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends a TCP reset instead of an orderly FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            data = [{"id": "faulty", "object": "model", "created": 0, "owned_by": "x"}]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())
        elif self.path == "/api/tags":
            models = [{"name": "faulty-ollama", "model": "faulty-ollama"}]
            self._send(200, json.dumps({"models": models}).encode())
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else {}
        state = self.state
        is_chat = self.path.endswith(("/chat/completions", "/api/chat"))
        with state.lock:
            state.hits.append((self.path, time.monotonic()))
            queue = state.chat_faults if is_chat else state.embed_faults
            fault = queue.pop(0) if queue else None
            if fault is None and state.rule is not None:
                fault = state.rule(body)
        if fault is not None and fault.kind == "status":
            self._send(fault.status, b'{"error": "injected"}', fault.headers)
        elif fault is not None and fault.kind == "timeout":
            state.stop.wait(fault.seconds)
            self._send(500, b'{"error": "too late"}')
        elif fault is not None and fault.kind == "reset" and not is_chat:
            self._reset()
        elif is_chat:
            self._chat(body, fault)
        else:
            self._embed(body, fault)

    def _embed(self, body: dict[str, Any], fault: Fault | None) -> None:
        kind = fault.kind if fault else None
        if kind == "malformed":
            self._send(200, b'{"embeddings": [[0.1, 0.2')
            return
        texts = body["input"]
        vectors = [vector(t, DIM + 1 if kind == "dim" else DIM) for t in texts]
        if kind == "count":
            vectors = vectors[:-1]
        if self.path.endswith("/api/embed"):
            answer: dict[str, Any] = {"model": body["model"], "embeddings": vectors}
        else:
            data = [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ]
            answer = {"object": "list", "data": data, "model": body["model"]}
        self._send(200, json.dumps(answer).encode())

    def _chat(self, body: dict[str, Any], fault: Fault | None) -> None:
        ollama = self.path.endswith("/api/chat")
        pieces = [CHAT_TEXT[:10], CHAT_TEXT[10:]]
        if not body.get("stream"):
            if fault and fault.kind == "malformed":
                self._send(200, b'{"choices": [')
                return
            message = {"role": "assistant", "content": CHAT_TEXT}
            if ollama:
                answer: dict[str, Any] = {"model": body["model"], "message": message, "done": True}
            else:
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                answer = {"id": "c", "object": "chat.completion", "choices": [choice]}
            data = json.dumps(answer).encode()
            if fault and fault.kind == "stall":
                # Headers and half the body, then nothing: a read timeout after the headers.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.state.stop.wait(fault.seconds)
                return
            self._send(200, data)
            return
        if ollama:
            lines = [
                json.dumps({"model": body["model"], "message": {"content": p}, "done": False})
                for p in pieces
            ]
            lines.append(json.dumps({"model": body["model"], "done": True}))
            parts = [line + "\n" for line in lines]
            if fault and fault.kind == "malformed":
                parts[1] = "{this is not json\n"
        else:
            parts = []
            for piece in pieces:
                delta = {"role": "assistant", "content": piece}
                chunk = {"id": "c", "object": "chat.completion.chunk", "model": body["model"]}
                chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
                parts.append(f"data: {json.dumps(chunk)}\n\n")
            stop = {"id": "c", "object": "chat.completion.chunk", "model": body["model"]}
            stop["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
            parts += [f"data: {json.dumps(stop)}\n\n", "data: [DONE]\n\n"]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson" if ollama else "text/event-stream")
        self.end_headers()
        try:
            # A broken stream sends its first part, and half of the second: mid-event.
            for i, part in enumerate(parts):
                if fault and fault.kind == "longline" and i == 1:
                    # One line of 20 MB, sent in 64 KB pieces, that never ends.
                    piece = "x" * 65536
                    for _ in range(20 * 16):
                        self.wfile.write(piece.encode())
                    self.wfile.flush()
                    return
                if fault and fault.kind in ("reset", "eof", "stall") and i == 1:
                    self.wfile.write(part[: len(part) // 2].encode())
                    self.wfile.flush()
                    # Let the first parts reach the server under test before the reset.
                    time.sleep(0.2)
                    if fault.kind == "reset":
                        self._reset()
                    elif fault.kind == "stall":
                        self.state.stop.wait(fault.seconds)
                    return
                self.wfile.write(part.encode())
                self.wfile.flush()
        except OSError:
            pass


@contextmanager
def faulty_upstream() -> Iterator[FaultyUpstream]:
    """Run a ``FaultyUpstream`` on a loopback port."""
    state = FaultyUpstream()
    with serve(type("Handler", (_Handler,), {"state": state})) as url:
        state.url = url
        try:
            yield state
        finally:
            state.stop.set()  # wake stalled handlers before the server shuts down
