"""Faulty chat upstreams: bounded retries before an answer, error events after it started."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag_pipeline.embedding import OllamaEmbedder
from rag_pipeline.errors import UpstreamError
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings
from rag_pipeline.server.upstream import MAX_STREAM_LINE, LineSplitter, Upstreams

from ..fault_server import CHAT_TEXT, Fault, FaultyUpstream, faulty_upstream, status
from .harness import LiveServer, live_server

UPSTREAM_TIMEOUT = 1.0


@dataclass
class Setup:
    server: LiveServer
    upstream: FaultyUpstream
    headers: dict[str, str]

    def chat(self, model: str = "faulty", **body: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **body}
        return httpx.post(
            f"{self.server.url}/api/chat/completions", headers=self.headers, json=body, timeout=20
        )

    def stream(self, model: str = "faulty") -> tuple[list[str], float]:
        """The streamed answer's non-blank lines, and how long the stream took to end."""
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        started = time.monotonic()
        with httpx.stream(
            "POST",
            f"{self.server.url}/api/chat/completions",
            headers=self.headers,
            json=body,
            timeout=20,
        ) as response:
            assert response.status_code == 200
            lines = [line for line in response.iter_lines() if line.strip()]
        return lines, time.monotonic() - started


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with faulty_upstream() as upstream:
        settings = ServerSettings(
            data_dir=tmp_path_factory.mktemp("faulty-server"),
            openai_api_base_url=upstream.url + "/v1",
            ollama_base_url=upstream.url,
            upstream_timeout=UPSTREAM_TIMEOUT,
            models_cache_seconds=60,
        )
        # The faulty upstream embeds too: no local model to load for these tests.
        embedder = OllamaEmbedder(upstream.url, "fake-embed")
        with (
            Pipeline(settings, embedder=embedder) as pipeline,
            live_server(settings, pipeline) as s,
        ):
            token = s.signup("Admin", "admin@example.com")["token"]
            headers = {"Authorization": f"Bearer {s.api_key(token)}"}
            yield Setup(s, upstream, headers)


@pytest.fixture
def faulty(setup: Setup) -> Iterator[Setup]:
    setup.upstream.reset()
    yield setup
    setup.upstream.reset()


def _error_event(lines: list[str]) -> str:
    """The message of the stream's last event, which must be an error event."""
    assert lines[-1].startswith("data: "), lines
    return json.loads(lines[-1].removeprefix("data: "))["error"]["message"]


def test_503_then_an_answer_is_retried(faulty: Setup) -> None:
    faulty.upstream.chat_faults = [status(503)]
    response = faulty.chat()
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == CHAT_TEXT
    assert len(faulty.upstream.attempts("/chat/completions")) == 2


def test_429_retry_after_is_honoured(faulty: Setup) -> None:
    faulty.upstream.chat_faults = [status(429, Retry_After="1")]
    started = time.monotonic()
    response = faulty.chat()
    assert response.status_code == 200
    first, second = faulty.upstream.attempts("/chat/completions")
    assert second - first >= 0.95 and time.monotonic() - started >= 1.0


def test_500_is_not_retried_and_answers_502_naming_the_upstream(faulty: Setup) -> None:
    faulty.upstream.rule = lambda body: status(500)
    response = faulty.chat()
    assert response.status_code == 502
    detail = response.json()["detail"]
    assert f"{faulty.upstream.url}/v1/chat/completions answered 500" in detail
    assert "OpenAI-compatible upstream" in detail
    assert len(faulty.upstream.attempts("/chat/completions")) == 1


def test_retries_are_bounded(faulty: Setup) -> None:
    faulty.upstream.rule = lambda body: status(503)
    response = faulty.chat()
    assert response.status_code == 502
    assert "answered 503" in response.json()["detail"]
    assert "gave up after 3 tries" in response.json()["detail"]
    assert len(faulty.upstream.attempts("/chat/completions")) == 3


def test_a_client_error_is_passed_back_without_retrying(faulty: Setup) -> None:
    faulty.upstream.rule = lambda body: status(400)
    response = faulty.chat()
    assert response.status_code == 400
    assert "answered 400" in response.json()["detail"]
    assert len(faulty.upstream.attempts("/chat/completions")) == 1


def test_malformed_answer_is_a_502_naming_the_upstream(faulty: Setup) -> None:
    faulty.upstream.chat_faults = [Fault("malformed")]
    response = faulty.chat()
    assert response.status_code == 502
    assert f"{faulty.upstream.url}/v1/chat/completions" in response.json()["detail"]
    assert "not JSON" in response.json()["detail"]


def test_a_healthy_stream_ends_without_an_error(faulty: Setup) -> None:
    lines, _ = faulty.stream()
    assert lines[-1] == "data: [DONE]"
    assert not any('"error"' in line for line in lines)


@pytest.mark.parametrize(
    ("kind", "says"),
    [("reset", "broke off the stream"), ("eof", "ended the stream before the answer")],
)
def test_a_stream_cut_mid_way_ends_with_an_error_event(faulty: Setup, kind: str, says: str) -> None:
    faulty.upstream.chat_faults = [Fault(kind)]
    lines, seconds = faulty.stream()
    message = _error_event(lines)
    assert says in message
    assert f"{faulty.upstream.url}/v1/chat/completions" in message
    assert seconds < 5
    assert len(faulty.upstream.attempts("/chat/completions")) == 1  # never retried


def test_a_stalled_stream_ends_within_the_timeout(faulty: Setup) -> None:
    faulty.upstream.chat_faults = [Fault("stall", seconds=10)]
    lines, seconds = faulty.stream()
    assert "stopped sending" in _error_event(lines)
    assert seconds < UPSTREAM_TIMEOUT + 3


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("reset", "broke off the stream"),
        ("eof", "ended the stream before the answer"),
        ("malformed", "not JSON"),
        ("stall", "stopped sending"),
    ],
)
def test_a_broken_ollama_stream_ends_with_an_error_event(
    faulty: Setup, kind: str, says: str
) -> None:
    faulty.upstream.chat_faults = [Fault(kind, seconds=10)]
    lines, seconds = faulty.stream("faulty-ollama")
    message = _error_event(lines)
    assert says in message and "the Ollama upstream" in message
    assert seconds < UPSTREAM_TIMEOUT + 3


def test_a_healthy_ollama_stream_ends_with_done(faulty: Setup) -> None:
    lines, _ = faulty.stream("faulty-ollama")
    assert lines[-1] == "data: [DONE]"


def _upstreams(handler: Any, tmp_path: Path, **kw: Any) -> Upstreams:
    settings = ServerSettings(data_dir=tmp_path, openai_api_base_url="http://upstream.test/v1")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Upstreams(settings, client, backoff=0.01, max_backoff=0.05, **kw)


def test_connect_errors_are_retried(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"ok": True})

    upstreams = _upstreams(handler, tmp_path)
    url = "http://upstream.test/v1/chat/completions"
    response = asyncio.run(upstreams.open("POST", url, "the upstream", json_body={}, stream=False))
    assert response.json() == {"ok": True}
    assert calls == ["POST"] * 3


def test_read_errors_of_a_post_are_not_retried(tmp_path: Path) -> None:
    # The upstream may have started on it: a chat is not sent twice.
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadTimeout("slow", request=request)

    upstreams = _upstreams(handler, tmp_path)
    url = "http://upstream.test/v1/chat/completions"
    with pytest.raises(UpstreamError, match="did not answer in time") as raised:
        asyncio.run(upstreams.open("POST", url, "the upstream", json_body={}))
    assert len(calls) == 1
    assert raised.value.status == 504


@pytest.mark.parametrize(
    ("fault", "stream"),
    [
        (Fault("timeout", seconds=3), False),  # nothing, not even headers
        (Fault("timeout", seconds=3), True),
        (Fault("stall", seconds=3), False),  # headers and part of the body, then nothing
    ],
)
def test_an_upstream_that_does_not_answer_in_time_is_a_504(
    faulty: Setup, fault: Fault, stream: bool
) -> None:
    faulty.upstream.chat_faults = [fault]
    response = faulty.chat(stream=stream)
    assert response.status_code == 504, response.text
    assert "did not answer in time" in response.json()["detail"]


@pytest.mark.parametrize(("method", "tries"), [("GET", 3), ("POST", 1)])
def test_a_bad_gateway_is_retried_only_where_running_twice_is_harmless(
    tmp_path: Path, method: str, tries: int
) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(502, text="bad gateway")

    upstreams = _upstreams(handler, tmp_path)
    with pytest.raises(UpstreamError, match="answered 502") as info:
        asyncio.run(upstreams.open(method, "http://upstream.test/api/x", "the upstream"))
    assert info.value.status == 502
    assert len(calls) == tries


def test_the_ollama_proxy_ends_a_broken_stream_with_an_error_line(faulty: Setup) -> None:
    faulty.upstream.chat_faults = [Fault("reset")]
    started = time.monotonic()
    with httpx.stream(
        "POST",
        f"{faulty.server.url}/ollama/api/chat",
        headers=faulty.headers,
        json={
            "model": "faulty-ollama",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        },
        timeout=30,
    ) as response:
        lines = [line for line in response.iter_lines() if line.strip()]
    assert time.monotonic() - started < UPSTREAM_TIMEOUT + 3
    last = json.loads(lines[-1])
    assert "the Ollama upstream" in last["error"]


@pytest.mark.parametrize("model", ["faulty", "faulty-ollama"])
def test_a_streamed_line_past_the_limit_ends_the_stream_with_an_error(
    faulty: Setup, model: str
) -> None:
    faulty.upstream.chat_faults = [Fault("longline")]
    lines, _ = faulty.stream(model)
    assert f"longer than {MAX_STREAM_LINE} bytes" in _error_event(lines)


def test_line_splitter_keeps_lines_whole_across_chunks_and_refuses_long_ones() -> None:
    splitter = LineSplitter(b"\n", 10, "the upstream")
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\nde") == [b"abc"]
    assert splitter.feed(b"f\n\ng\n") == [b"def", b"", b"g"]
    assert splitter.pending is None
    assert splitter.feed(b"0123456789") == []
    with pytest.raises(UpstreamError, match="longer than 10 bytes"):
        splitter.feed(b"x")
    text = LineSplitter("\n", 100, "the upstream")
    assert text.feed("한국어\n日本") == ["한국어"] and text.pending == "日本"
