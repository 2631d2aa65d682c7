"""``/api/models`` and ``/api/chat/completions``: RAG chat forwarded to the upstream model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from rag_pipeline.errors import UpstreamError
from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.services import Retrieval, Upstream
from rag_pipeline.server.shapes import chat_sources
from rag_pipeline.server.upstream import (
    SseWatch,
    ndjson_lines,
    ollama_completion,
    ollama_sse,
)

router = APIRouter(tags=["chat"])

# Fields Open WebUI's own front end adds to a chat request; upstreams do not know them.
_LOCAL_FIELDS = {
    "files",
    "metadata",
    "chat_id",
    "id",
    "session_id",
    "tool_ids",
    "tool_servers",
    "features",
    "variables",
    "background_tasks",
    "filter_ids",
    "params",
}


def _listing_or_502(errors: list[str], models: list[dict[str, Any]]) -> None:
    if errors and not models:
        raise UpstreamError("; ".join(errors))


@router.get("/api/models")
async def list_models(upstreams: Upstream, user: CurrentUser) -> dict[str, Any]:
    """Every model of every upstream, merged, in Open WebUI's shape."""
    listing = await upstreams.models()
    _listing_or_502(listing.errors, listing.models)
    return {"data": [{**m, "tags": [], "actions": [], "filters": []} for m in listing.models]}


@router.get("/api/models/base")
async def list_base_models(upstreams: Upstream, user: CurrentUser) -> dict[str, Any]:
    """The upstream models without server-side decorations."""
    listing = await upstreams.models()
    _listing_or_502(listing.errors, listing.models)
    return {
        "data": [
            {**m, "tags": []} if m.get("owned_by") == "ollama" else dict(m) for m in listing.models
        ]
    }


@router.get("/openai/models")
async def list_openai_models(upstreams: Upstream, user: CurrentUser) -> dict[str, Any]:
    """The OpenAI-compatible upstream's models."""
    listing = await upstreams.models()
    _listing_or_502(listing.errors, listing.models)
    return {"data": [m for m in listing.models if m.get("owned_by") == "openai"]}


class ContentPart(BaseModel):
    """One part of a message's content list (``text``, ``image_url``…)."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One chat message; other fields (``name``, ``tool_calls``…) pass through."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[ContentPart] | None = None


class FileRef(BaseModel):
    """A ``files`` entry: a file or a knowledge base (``collection``) to ground the answer."""

    model_config = ConfigDict(extra="allow")
    type: str
    id: str


class ChatRequest(BaseModel):
    """Body of ``/api/chat/completions``: OpenAI's, plus Open WebUI's ``files``.

    Validated so that a malformed body (``"files": 5``, ``"messages": [null]``, a content
    list of plain strings) is a 422 naming the field, not a 500; every other field is
    forwarded as sent.
    """

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    files: list[FileRef] | None = None
    stream: bool | None = None


@router.post("/api/chat/completions", response_model=None)
async def chat_completions(
    upstreams: Upstream, user: CurrentUser, retrieval: Retrieval, chat: ChatRequest
) -> JSONResponse | StreamingResponse:
    """OpenAI-compatible chat; ``files`` entries ground the answer in files or collections."""
    body = chat.model_dump(exclude_unset=True)
    model = await upstreams.find(body["model"])
    refs = body.get("files") or []
    forward = {k: v for k, v in body.items() if k not in _LOCAL_FIELDS}
    sources: list[dict[str, Any]] = []
    if refs:
        messages, groups = await run_in_threadpool(
            retrieval.enrich, user, body["model"], forward["messages"], refs
        )
        forward["messages"] = messages
        sources = chat_sources(groups, retrieval.model_name)
    # Retried inside while nothing was received (connect errors, 429, 503); never after.
    response = await upstreams.open_chat(model, forward)
    url, what = upstreams.chat_target(model)
    is_ollama = model.get("owned_by") == "ollama"
    if not forward.get("stream"):
        try:
            answer = response.json()
        except ValueError:
            raise UpstreamError(
                f"{what} at {url} answered something that is not JSON: {response.text[:200]!r}"
            ) from None
        if not isinstance(answer, dict):
            raise UpstreamError(f"{what} at {url} answered JSON that is not an object")
        if is_ollama:
            answer = ollama_completion(body["model"], answer)
        return JSONResponse({"sources": sources, **answer} if sources else answer)

    async def events() -> AsyncIterator[bytes]:
        # The headers are gone already: a stream that breaks off (reset, stall past the
        # read timeout, garbage, an end before the answer is complete) ends with an error
        # event, and the upstream connection is closed whatever happens.
        watch = SseWatch(f"{what} at {url}")
        try:
            if sources:
                yield f"data: {json.dumps({'sources': sources}, ensure_ascii=False)}\n\n".encode()
            try:
                if is_ollama:
                    lines = ndjson_lines(response.aiter_text(), what)
                    async for event in ollama_sse(body["model"], lines, what):
                        yield event.encode()
                else:
                    async for block in response.aiter_bytes():
                        watch.feed(block)
                        yield block
                    if not watch.finished:
                        raise UpstreamError(
                            f"{what} at {url} ended the stream before the answer was complete"
                        )
            except (httpx.HTTPError, UpstreamError) as exc:
                error = {"error": {"message": upstreams.stream_error(exc, what, url)}}
                # Close a half-sent event first, so the error event stands on its own.
                lead = "" if watch.at_boundary else "\n\n"
                yield f"{lead}data: {json.dumps(error)}\n\n".encode()
        finally:
            await response.aclose()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        background=BackgroundTask(response.aclose),
    )
