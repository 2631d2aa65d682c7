"""Test harness: the real server under uvicorn on a loopback port, and a fake upstream LLM."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import uvicorn

from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings, create_app
from tests.loopback import serve

OPENAI_MODELS = ["fake-echo", "gpt-4-turbo", "fake-slow"]
OLLAMA_MODELS = [
    "fake-ollama:latest",
    "llama3.1",
    "llama3.2",
    "llama3.2:3b",
    "gemma3:4b",
    "granite3.1-dense:8b",
]
EMBED_DIM = 16


def fake_vector(text: str) -> list[float]:
    """A deterministic stand-in embedding."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [b / 255.0 for b in digest[:EMBED_DIM]]


def echo_text(messages: list[dict[str, Any]]) -> str:
    """What the fake model answers: the messages it received."""
    return "ECHO " + json.dumps(messages, ensure_ascii=False)


@dataclass
class FakeUpstream:
    """An OpenAI- and Ollama-compatible server that records requests and echoes them back."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    slow_seconds: float = 3.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def chats(self) -> list[dict[str, Any]]:
        """The chat requests received, OpenAI and Ollama alike."""
        with self.lock:
            return [r for r in self.requests if r["path"] in ("/v1/chat/completions", "/api/chat")]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


class _Handler(BaseHTTPRequestHandler):
    upstream: FakeUpstream

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        # The server under test may have given up waiting, as it should on a timeout.
        with contextlib.suppress(BrokenPipeError):
            self.wfile.write(data)

    def _stream(self, content_type: str, parts: list[str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        for part in parts:
            self.wfile.write(part.encode())
            self.wfile.flush()
            time.sleep(0.01)

    def _record(self, body: Any) -> None:
        with self.upstream.lock:
            self.upstream.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": body,
                }
            )

    def do_GET(self) -> None:
        self._record(None)
        if self.path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"}
                for m in OPENAI_MODELS
            ]
            self._json(200, {"object": "list", "data": data})
        elif self.path == "/api/tags":
            models = [
                {
                    "name": m,
                    "model": m,
                    "modified_at": "2025-01-01T00:00:00Z",
                    "size": 1234,
                    "digest": "0" * 64,
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "bert",
                        "families": ["bert"],
                        "parameter_size": "22M",
                        "quantization_level": "F16",
                    },
                }
                for m in OLLAMA_MODELS
            ]
            self._json(200, {"models": models})
        elif self.path == "/api/version":
            self._json(200, {"version": "0.9.0"})
        else:
            self._json(404, {"error": "not found"})

    def _other(self) -> None:
        # An Ollama server answers methods and paths it does not serve with 404 or 405.
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._record(None)
        self._json(404, {"error": "not found"})

    do_PUT = do_DELETE = do_PATCH = _other

    def do_HEAD(self) -> None:
        self._record(None)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else {}
        self._record(body)
        if self.path == "/v1/chat/completions":
            self._openai_chat(body)
        elif self.path == "/api/chat":
            self._ollama_chat(body)
        elif self.path == "/api/generate":
            self._ollama_generate(body)
        elif self.path == "/api/embed":
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            self._json(200, {"model": body["model"], "embeddings": [fake_vector(t) for t in texts]})
        else:
            self._json(404, {"error": "not found"})

    def _openai_chat(self, body: dict[str, Any]) -> None:
        if body["model"] == "fake-slow":
            time.sleep(self.upstream.slow_seconds)
        text = echo_text(body["messages"])
        base = {"id": "chatcmpl-fake", "created": 1795313365, "model": body["model"]}
        if not body.get("stream"):
            self._json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
            )
            return
        pieces = [text[:10], text[10:]]
        events = []
        for piece in pieces:
            delta = {"role": "assistant", "content": piece}
            chunk = {**base, "object": "chat.completion.chunk"}
            chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
            events.append(f"data: {json.dumps(chunk)}\n\n")
        stop = {**base, "object": "chat.completion.chunk"}
        stop["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        events += [f"data: {json.dumps(stop)}\n\n", "data: [DONE]\n\n"]
        self._stream("text/event-stream", events)

    def _final(self, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": "2025-09-04T06:27:15Z",
            "done": True,
            "done_reason": "stop",
            "total_duration": 2_000_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": 11,
            "prompt_eval_duration": 100_000_000,
            "eval_count": 14,
            "eval_duration": 500_000_000,
        }

    def _ollama_chat(self, body: dict[str, Any]) -> None:
        text = echo_text(body["messages"])
        model = body["model"]
        if not body.get("stream", True):
            final = self._final(model)
            final["message"] = {"role": "assistant", "content": text}
            self._json(200, final)
            return
        lines = [
            json.dumps(
                {
                    "model": model,
                    "created_at": "2025-09-04T06:27:14Z",
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            )
            + "\n"
            for piece in (text[:10], text[10:])
        ]
        final = self._final(model)
        final["message"] = {"role": "assistant", "content": ""}
        lines.append(json.dumps(final) + "\n")
        self._stream("application/x-ndjson", lines)

    def _ollama_generate(self, body: dict[str, Any]) -> None:
        words = ["echo", ":", " ", body.get("prompt", "")]
        if body.get("stream") is False:  # as Ollama: one object when asked not to stream
            final = self._final(body["model"])
            final.update(response="".join(words), context=[1, 2, 3])
            self._json(200, final)
            return
        lines = [
            json.dumps(
                {
                    "model": body["model"],
                    "created_at": "2025-09-04T06:27:14Z",
                    "response": w,
                    "done": False,
                },
                ensure_ascii=False,
            )
            + "\n"
            for w in words
        ]
        final = self._final(body["model"])
        final.update(response="", context=[1, 2, 3])
        lines.append(json.dumps(final) + "\n")
        self._stream("application/x-ndjson", lines)


class OllamaEmbedHandler(BaseHTTPRequestHandler):
    """Ollama's /api/embed (an upstream a test cannot run): 8 numbers from each text's
    SHA-256, answered after ``delay`` seconds (a subclass sets it)."""

    delay = 0.0

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = [
            [b / 255.0 + 0.01 for b in hashlib.sha256(t.encode()).digest()[:8]] for t in texts
        ]
        data = json.dumps({"model": body["model"], "embeddings": vectors}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def fake_upstream() -> Iterator[FakeUpstream]:
    """Run the fake upstream on a loopback port."""
    state = FakeUpstream()
    with serve(type("Handler", (_Handler,), {"upstream": state})) as url:
        state.url = url
        yield state


@dataclass
class LiveServer:
    """A running ``rag serve`` and what the tests need to talk to it."""

    url: str
    settings: ServerSettings
    app: Any

    def signup(self, name: str, email: str, password: str = "pw-123456") -> dict[str, Any]:
        """Sign up through the API; return the answer (with ``token``)."""
        body = {"name": name, "email": email, "password": password}
        response = httpx.post(f"{self.url}/api/v1/auths/signup", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def api_key(self, token: str) -> str:
        """Create an API key through the API."""
        response = httpx.post(
            f"{self.url}/api/v1/auths/api_key",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["api_key"]


@contextmanager
def live_server(settings: ServerSettings, pipeline: Pipeline | None = None) -> Iterator[LiveServer]:
    """Serve ``create_app(settings, pipeline)`` with uvicorn in a thread on 127.0.0.1:0."""
    app = create_app(settings, pipeline)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings, app=app)
    finally:
        server.should_exit = True
        thread.join(15)


def wait_processed(url: str, token: str, file_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll a file's status until it is completed or failed; return the last status body."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        body = httpx.get(
            f"{url}/api/v1/files/{file_id}/process/status", headers=headers, timeout=30
        ).json()
        if body["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)
