"""``/api/models`` and ``/api/chat/completions``: RAG chat forwarded to the upstream model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from rag_pipeline.errors import UpstreamError
from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.services import Retrieval
from rag_pipeline.server.shapes import chat_sources
from rag_pipeline.server.upstream import (
    Upstreams,
    describe,
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


def _upstreams(request: Request) -> Upstreams:
    return request.app.state.upstreams


def _listing_or_502(errors: list[str], models: list[dict[str, Any]]) -> None:
    if errors and not models:
        raise UpstreamError("; ".join(errors))


@router.get("/api/models")
async def list_models(request: Request, user: CurrentUser) -> dict[str, Any]:
    """Every model of every upstream, merged, in Open WebUI's shape."""
    listing = await _upstreams(request).models()
    _listing_or_502(listing.errors, listing.models)
    return {"data": [{**m, "tags": [], "actions": [], "filters": []} for m in listing.models]}


@router.get("/api/models/base")
async def list_base_models(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The upstream models without server-side decorations."""
    listing = await _upstreams(request).models()
    _listing_or_502(listing.errors, listing.models)
    return {
        "data": [
            {**m, "tags": []} if m.get("owned_by") == "ollama" else dict(m) for m in listing.models
        ]
    }


@router.get("/openai/models")
async def list_openai_models(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The OpenAI-compatible upstream's models."""
    listing = await _upstreams(request).models()
    _listing_or_502(listing.errors, listing.models)
    return {"data": [m for m in listing.models if m.get("owned_by") == "openai"]}


@router.post("/api/chat/completions", response_model=None)
async def chat_completions(
    request: Request, user: CurrentUser, retrieval: Retrieval
) -> JSONResponse | StreamingResponse:
    """OpenAI-compatible chat; ``files`` entries ground the answer in files or collections."""
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise HTTPException(400, "The request needs a 'model'")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise HTTPException(400, "The request needs a non-empty 'messages' list")
    upstreams = _upstreams(request)
    model = await upstreams.find(body["model"])
    refs = [ref for ref in body.get("files") or [] if isinstance(ref, dict)]
    forward = {k: v for k, v in body.items() if k not in _LOCAL_FIELDS}
    sources: list[dict[str, Any]] = []
    if refs:
        messages, groups = await run_in_threadpool(
            retrieval.enrich, user, body["model"], forward["messages"], refs
        )
        forward["messages"] = messages
        sources = chat_sources(groups, request.app.state.pipeline.embedder.model_name)
    response = await upstreams.open_chat(model, forward)
    is_ollama = model.get("owned_by") == "ollama"
    if not forward.get("stream"):
        try:
            answer = response.json()
        except ValueError:
            raise HTTPException(502, "The upstream answered something that is not JSON") from None
        if is_ollama:
            answer = ollama_completion(body["model"], answer)
        return JSONResponse({"sources": sources, **answer} if sources else answer)

    async def events() -> AsyncIterator[bytes]:
        if sources:
            yield f"data: {json.dumps({'sources': sources}, ensure_ascii=False)}\n\n".encode()
        try:
            if is_ollama:
                async for event in ollama_sse(body["model"], response.aiter_lines()):
                    yield event.encode()
            else:
                async for block in response.aiter_raw():
                    yield block
        except httpx.HTTPError as exc:
            # Headers are gone already; tell the client in the stream, as an error event.
            error = {"error": {"message": describe(exc, "the upstream", str(response.url))}}
            yield f"data: {json.dumps(error)}\n\n".encode()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        background=BackgroundTask(response.aclose),
    )
