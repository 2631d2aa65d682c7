"""The chat models behind the server: an OpenAI-compatible base URL and/or an Ollama server.

A request is retried (tenacity) only while no answer has been streamed: after a connect
error (the upstream never saw it) or an answer asking to come back later (429, 503; and
502/504 for GET and HEAD, which may run twice), with exponential backoff and jitter,
honouring ``Retry-After``, bounded in tries and in total time. Once an answer streams,
nothing is retried: a broken or stalled stream ends with an error event (see chat.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, AnyStr, Generic

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)

from rag_pipeline._retry import backoff_wait, retry_after_seconds
from rag_pipeline.errors import ModelNotFoundError, UpstreamError
from rag_pipeline.server.settings import ServerSettings

# What a request that may not run twice (a chat, a pull) is retried on: answers that say
# the request was not taken on. A 500 or 502 may come after the model started working; a
# 504 after it spent the gateway's whole patience: those are not retried.
_RETRY_STATUS = frozenset({429, 503})
# GET and HEAD may run twice: a bad gateway or a gateway timeout is worth another try too.
_RETRY_STATUS_IDEMPOTENT = frozenset({429, 502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class ModelList:
    """Models of every upstream in Open WebUI's shape, and what could not be listed."""

    models: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fetched: float = 0.0


def timeout_status(exc: BaseException) -> int:
    """504 (a gateway timeout) when the upstream did not answer in time, else 502."""
    return 504 if isinstance(exc, httpx.TimeoutException) else 502


def upstream_failure(exc: httpx.HTTPError, what: str, url: str) -> UpstreamError:
    """The error a failed upstream call answers with: its description, 502 or 504."""
    return UpstreamError(describe(exc, what, url), status=timeout_status(exc))


def describe(exc: httpx.HTTPError, what: str, url: str) -> str:
    """A readable sentence for a transport error."""
    if isinstance(exc, httpx.TimeoutException):
        return f"{what} at {url} did not answer in time ({type(exc).__name__})"
    return f"cannot reach {what} at {url}: {type(exc).__name__}: {exc}"


class _Retryable(UpstreamError):
    """A failure met before any answer was taken on: another try may succeed."""

    def __init__(self, message: str, *, status: int = 502, retry_after: float | None = None):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class Upstreams:
    """Lists models and forwards requests to the configured upstreams, with timeouts."""

    def __init__(
        self,
        settings: ServerSettings,
        client: httpx.AsyncClient,
        *,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 4.0,
        max_retry_after: float = 10.0,
        retry_deadline: float = 30.0,
    ) -> None:
        """``max_retries`` more tries follow a retryable failure, ``backoff`` seconds apart
        and doubling (at most ``max_backoff``, or the upstream's ``Retry-After`` up to
        ``max_retry_after``); none starts past ``retry_deadline`` seconds after the first."""
        self.settings = settings
        self.client = client
        self.openai_url = settings.openai_api_base_url
        self.ollama_url = settings.ollama_base_url
        self._cache = ModelList()
        self._lock = asyncio.Lock()
        self.max_retries = max_retries
        self.retry_deadline = retry_deadline
        self._wait = backoff_wait(backoff, max_backoff, max_retry_after)

    def _openai_headers(self) -> dict[str, str]:
        key = self.settings.openai_api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def _get_json(self, url: str, what: str, headers: dict[str, str]) -> Any:
        try:
            response = await self.client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise upstream_failure(exc, what, url) from exc
        if response.status_code != 200:
            raise UpstreamError(f"{what} at {url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError(f"{what} at {url} did not answer JSON") from exc

    async def _openai_models(self) -> list[dict[str, Any]]:
        if not self.openai_url:
            return []
        url = f"{self.openai_url}/models"
        data = await self._get_json(url, "the OpenAI-compatible upstream", self._openai_headers())
        models = []
        for item in data.get("data", []) if isinstance(data, dict) else []:
            original = {**item, "connection_type": "external"}
            models.append(
                {
                    "id": item["id"],
                    "object": "model",
                    "created": item.get("created", 0),
                    "owned_by": "openai",
                    "connection_type": "external",
                    "name": item.get("name") or item["id"],
                    "openai": original,
                    "provider": "",
                    "urlIdx": 0,
                }
            )
        return models

    async def ollama_tags(self) -> list[dict[str, Any]]:
        """The Ollama upstream's models as ``/api/tags`` lists them, with Open WebUI's fields."""
        if not self.ollama_url:
            return []
        url = f"{self.ollama_url}/api/tags"
        data = await self._get_json(url, "the Ollama upstream", {})
        return [
            {**tag, "connection_type": "local", "urls": [0]}
            for tag in (data.get("models", []) if isinstance(data, dict) else [])
        ]

    async def _ollama_models(self) -> list[dict[str, Any]]:
        return [
            {
                "id": tag["model"] if "model" in tag else tag["name"],
                "name": tag["name"],
                "object": "model",
                "created": 0,
                "owned_by": "ollama",
                "ollama": tag,
                "loaded": False,
                "connection_type": "local",
            }
            for tag in await self.ollama_tags()
        ]

    async def models(self, *, fresh: bool = False) -> ModelList:
        """Every upstream's models, cached for a few seconds."""
        async with self._lock:
            age = time.monotonic() - self._cache.fetched
            if not fresh and self._cache.fetched and age < self.settings.models_cache_seconds:
                return self._cache
            listing = ModelList(fetched=time.monotonic())
            results = await asyncio.gather(
                self._openai_models(), self._ollama_models(), return_exceptions=True
            )
            for result in results:
                if isinstance(result, UpstreamError):
                    listing.errors.append(str(result))
                elif isinstance(result, BaseException):
                    raise result
                else:
                    listing.models.extend(result)
            # A failed listing is not cached: the next request asks again.
            self._cache = listing if not listing.errors else ModelList()
            return listing

    async def find(self, model_id: str) -> dict[str, Any]:
        """The model entry for ``model_id``; 400-style when unknown, 502-style when unreachable."""
        listing = await self.models()
        for model in listing.models:
            if model["id"] == model_id:
                return model
        if listing.errors:
            listing = await self.models(fresh=True)
            for model in listing.models:
                if model["id"] == model_id:
                    return model
            raise UpstreamError("; ".join(listing.errors))
        raise ModelNotFoundError("Model not found")

    def chat_target(self, model: dict[str, Any]) -> tuple[str, str]:
        """The chat URL of the model's upstream, and the upstream's name for messages."""
        if model.get("owned_by") == "ollama":
            return f"{self.ollama_url}/api/chat", "the Ollama upstream"
        return f"{self.openai_url}/chat/completions", "the OpenAI-compatible upstream"

    async def open_chat(self, model: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
        """Send a chat request to the model's upstream; the answer is left open for streaming."""
        url, what = self.chat_target(model)
        if model.get("owned_by") == "ollama":
            payload = ollama_chat_body(body)
            headers: dict[str, str] = {}
        else:
            payload = body
            headers = self._openai_headers()
        return await self.open(
            "POST", url, what, json_body=payload, headers=headers, stream=bool(body.get("stream"))
        )

    async def open(
        self,
        method: str,
        url: str,
        what: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: Any = None,
        stream: bool = True,
    ) -> httpx.Response:
        """Send a request; raise UpstreamError on transport errors and 4xx/5xx answers.

        Connect errors and answers asking to come back later are retried (see the module's
        docstring); the answer's headers have arrived when this returns, its body has not
        (unless ``stream`` is false)."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1) | stop_before_delay(self.retry_deadline),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        statuses = _RETRY_STATUS_IDEMPOTENT if method.upper() in _IDEMPOTENT else _RETRY_STATUS
        try:
            response = await retrying(
                self._send_once,
                method,
                url,
                what,
                statuses,
                json_body=json_body,
                content=content,
                headers=headers,
                params=params,
            )
        except _Retryable as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            message = str(exc) if tries == 1 else f"{exc} (gave up after {tries} tries)"
            raise UpstreamError(message, status=exc.status) from exc
        if not stream:
            try:
                await response.aread()
            except httpx.HTTPError as exc:
                raise upstream_failure(exc, what, url) from exc
            finally:
                await response.aclose()
        return response

    async def _send_once(
        self,
        method: str,
        url: str,
        what: str,
        retry_statuses: frozenset[int],
        **request: Any,
    ) -> httpx.Response:
        built = self.client.build_request(
            method,
            url,
            json=request["json_body"],
            content=request["content"],
            headers=request["headers"],
            params=request["params"],
        )
        try:
            response = await self.client.send(built, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # The request never reached the upstream: safe to send again.
            raise _Retryable(describe(exc, what, url), status=timeout_status(exc)) from exc
        except httpx.HTTPError as exc:
            raise upstream_failure(exc, what, url) from exc
        if response.status_code < 400:
            return response
        try:
            detail = (await response.aread()).decode("utf-8", "replace")[:500]
        except httpx.HTTPError:
            detail = ""
        finally:
            await response.aclose()
        status = 502 if response.status_code >= 500 else response.status_code
        message = f"{what} at {url} answered {response.status_code}: {detail}"
        if response.status_code in retry_statuses:
            retry_after = retry_after_seconds(response.headers)
            raise _Retryable(message, status=status, retry_after=retry_after)
        raise UpstreamError(message, status=status)

    def stream_error(self, exc: BaseException, what: str, url: str) -> str:
        """The error event's message for a stream that broke off after it started."""
        if isinstance(exc, httpx.TimeoutException):
            return (
                f"{what} at {url} stopped sending for {self.settings.upstream_timeout:g} s "
                f"({type(exc).__name__}); the answer is incomplete"
            )
        if isinstance(exc, httpx.HTTPError):
            return (
                f"{what} at {url} broke off the stream ({type(exc).__name__}: {exc}); "
                "the answer is incomplete"
            )
        return str(exc)


# The longest line a streamed answer may send (an SSE event or an NDJSON line): far past
# any real chunk of an answer; past it the stream ends with an error, instead of a server
# that holds (and re-scans) one ever-growing line.
MAX_STREAM_LINE = 16 * 1024 * 1024


class LineSplitter(Generic[AnyStr]):
    """Cuts a stream of chunks into lines in linear time, refusing a line past ``limit``.

    ``pending + chunk`` per chunk re-copied the whole unfinished line each time: a 50 MB
    line took 12.7 s, growing with its square. Pieces are kept apart until a newline comes.
    """

    def __init__(self, newline: AnyStr, limit: int, where: str) -> None:
        self.newline = newline
        self.limit = limit
        self.where = where
        self._parts: list[AnyStr] = []
        self._size = 0

    def feed(self, chunk: AnyStr) -> list[AnyStr]:
        """The lines ``chunk`` completes (without their newlines)."""
        if self.newline not in chunk:
            self._keep(chunk)
            return []
        first, *rest = chunk.split(self.newline)
        lines = [first[:0].join([*self._parts, first]), *rest[:-1]]
        self._parts, self._size = [], 0
        self._keep(rest[-1])
        for line in lines:
            self._check(len(line))
        return lines

    @property
    def pending(self) -> AnyStr | None:
        """The unfinished last line, if any."""
        return self._parts[0][:0].join(self._parts) if self._parts else None

    def _keep(self, piece: AnyStr) -> None:
        if piece:
            self._parts.append(piece)
            self._size += len(piece)
            self._check(self._size)

    def _check(self, size: int) -> None:
        if size > self.limit:
            raise UpstreamError(
                f"{self.where} sent a line longer than {self.limit} bytes; the stream was ended"
            )


class SseWatch:
    """Follows the OpenAI server-sent events forwarded to a client, to tell whether the
    stream finished (``[DONE]``, a ``finish_reason`` or an error event) and whether the
    bytes so far end on an event boundary."""

    def __init__(self, where: str = "the upstream", limit: int = MAX_STREAM_LINE) -> None:
        self.finished = False
        self._tail = b""
        self._lines = LineSplitter(b"\n", limit, where)

    @property
    def at_boundary(self) -> bool:
        """Whether what was fed so far ends with a whole event (or nothing was fed)."""
        return not self._tail or self._tail.endswith((b"\n\n", b"\r\n\r\n"))

    def feed(self, block: bytes) -> None:
        if not block:
            return
        self._tail = (self._tail + block[-4:])[-4:]
        lines = self._lines.feed(block)
        if not self.finished:
            for line in lines:
                self._see(line.strip())

    def _see(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.finished = True
            return
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        choices = data.get("choices")
        if "error" in data or (
            isinstance(choices, list)
            and any(isinstance(c, dict) and c.get("finish_reason") for c in choices)
        ):
            self.finished = True


def ollama_chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat request as Ollama's ``/api/chat`` takes it."""
    options = {
        key: body[key]
        for key in ("temperature", "top_p", "seed", "stop", "num_ctx")
        if body.get(key) is not None
    }
    if body.get("max_tokens") is not None:
        options["num_predict"] = body["max_tokens"]
    messages = []
    for message in body.get("messages", []):
        content = message.get("content", "")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
        messages.append({"role": message.get("role", "user"), "content": content})
    payload: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "stream": bool(body.get("stream")),
    }
    if options:
        payload["options"] = options
    return payload


def ollama_usage(data: dict[str, Any]) -> dict[str, Any]:
    """Open WebUI's ``usage`` object built from Ollama's final counters."""
    prompt = int(data.get("prompt_eval_count") or 0)
    completion = int(data.get("eval_count") or 0)
    total_ns = int(data.get("total_duration") or 0)
    eval_ns = int(data.get("eval_duration") or 0)
    prompt_ns = int(data.get("prompt_eval_duration") or 0)
    seconds = total_ns // 1_000_000_000
    return {
        "response_token/s": round(completion / (eval_ns / 1e9), 2) if eval_ns else 0,
        "prompt_token/s": round(prompt / (prompt_ns / 1e9), 2) if prompt_ns else 0,
        "total_duration": total_ns,
        "load_duration": int(data.get("load_duration") or 0),
        "prompt_eval_count": prompt,
        "prompt_tokens": prompt,
        "prompt_eval_duration": prompt_ns,
        "eval_count": completion,
        "completion_tokens": completion,
        "eval_duration": eval_ns,
        "approximate_total": f"{seconds // 3600}h{seconds % 3600 // 60}m{seconds % 60}s",
        "total_tokens": prompt + completion,
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def ollama_completion(model: str, data: dict[str, Any]) -> dict[str, Any]:
    """An Ollama ``/api/chat`` answer as an OpenAI chat completion (Open WebUI's shape)."""
    message = data.get("message") or {}
    return {
        "id": f"{model}-{uuid.uuid4()}",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": data.get("done_reason") or "stop",
                "message": {
                    "role": message.get("role", "assistant"),
                    "content": message.get("content", ""),
                },
            }
        ],
        "object": "chat.completion",
        "usage": ollama_usage(data),
    }


async def ndjson_lines(
    chunks: AsyncIterator[str], where: str = "the Ollama upstream", limit: int = MAX_STREAM_LINE
) -> AsyncIterator[str]:
    """The lines of an NDJSON stream; one cut off before its newline, or longer than
    ``limit``, raises UpstreamError."""
    splitter = LineSplitter("\n", limit, where)
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line
    pending = splitter.pending or ""
    if pending.strip():
        raise UpstreamError(
            f"{where} ended the stream before the answer was complete (mid-line: {pending[:100]!r})"
        )


async def ollama_sse(
    model: str, lines: AsyncIterator[str], where: str = "the Ollama upstream"
) -> AsyncIterator[str]:
    """Ollama's NDJSON chat stream as OpenAI server-sent chunks, ending with ``[DONE]``.

    Raises UpstreamError (naming ``where``) for a line that is not JSON, an error line, or
    a stream that ends before Ollama's final ``done`` line.
    """
    chat_id = f"{model}-{uuid.uuid4()}"
    done = False
    async for line in lines:
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise UpstreamError(f"{where} sent a line that is not JSON: {line[:200]!r}") from exc
        if not isinstance(data, dict):
            raise UpstreamError(f"{where} sent a line that is not a JSON object: {line[:200]!r}")
        if data.get("error"):
            raise UpstreamError(f"{where} failed: {data['error']}")
        done = done or bool(data.get("done"))
        chunk: dict[str, Any] = {
            "id": chat_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        if data.get("done"):
            chunk["choices"] = [
                {"index": 0, "delta": {}, "finish_reason": data.get("done_reason") or "stop"}
            ]
            chunk["usage"] = ollama_usage(data)
        else:
            content = (data.get("message") or {}).get("content", "")
            chunk["choices"] = [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": content},
                    "finish_reason": None,
                }
            ]
        yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
    if not done:
        raise UpstreamError(f"{where} ended the stream before the answer was complete")
    yield "data: [DONE]\n\n"
