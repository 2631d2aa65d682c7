"""The chat models behind the server: an OpenAI-compatible base URL and/or an Ollama server."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from rag_pipeline.errors import ModelNotFoundError, UpstreamError
from rag_pipeline.server.settings import ServerSettings


@dataclass
class ModelList:
    """Models of every upstream in Open WebUI's shape, and what could not be listed."""

    models: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fetched: float = 0.0


def describe(exc: httpx.HTTPError, what: str, url: str) -> str:
    """A readable sentence for a transport error."""
    if isinstance(exc, httpx.TimeoutException):
        return f"{what} at {url} did not answer in time ({type(exc).__name__})"
    return f"cannot reach {what} at {url}: {type(exc).__name__}: {exc}"


class Upstreams:
    """Lists models and forwards requests to the configured upstreams, with timeouts."""

    def __init__(self, settings: ServerSettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.openai_url = settings.openai_api_base_url
        self.ollama_url = settings.ollama_base_url
        self._cache = ModelList()
        self._lock = asyncio.Lock()

    def _openai_headers(self) -> dict[str, str]:
        key = self.settings.openai_api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def _get_json(self, url: str, what: str, headers: dict[str, str]) -> Any:
        try:
            response = await self.client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise UpstreamError(describe(exc, what, url)) from exc
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

    async def open_chat(self, model: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
        """Send a chat request to the model's upstream; the answer is left open for streaming."""
        if model.get("owned_by") == "ollama":
            url = f"{self.ollama_url}/api/chat"
            what = "the Ollama upstream"
            payload = ollama_chat_body(body)
            headers: dict[str, str] = {}
        else:
            url = f"{self.openai_url}/chat/completions"
            what = "the OpenAI-compatible upstream"
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
        """Send a request; raise UpstreamError on transport errors and 5xx answers."""
        request = self.client.build_request(
            method, url, json=json_body, content=content, headers=headers, params=params
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise UpstreamError(describe(exc, what, url)) from exc
        if response.status_code >= 400:
            try:
                detail = (await response.aread()).decode("utf-8", "replace")[:500]
            except httpx.HTTPError:
                detail = ""
            finally:
                await response.aclose()
            status = 502 if response.status_code >= 500 else response.status_code
            raise UpstreamError(
                f"{what} at {url} answered {response.status_code}: {detail}", status=status
            )
        if not stream:
            try:
                await response.aread()
            except httpx.HTTPError as exc:
                raise UpstreamError(describe(exc, what, url)) from exc
            finally:
                await response.aclose()
        return response


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


async def ollama_sse(model: str, lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """Ollama's NDJSON chat stream as OpenAI server-sent chunks, ending with ``[DONE]``."""
    chat_id = f"{model}-{uuid.uuid4()}"
    async for line in lines:
        if not line.strip():
            continue
        data = json.loads(line)
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
    yield "data: [DONE]\n\n"
