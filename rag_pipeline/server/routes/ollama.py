"""``/ollama/{path}``: the Ollama API behind the server's auth, or the local embedding model."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.routes.openai_compat import json_object, limit_texts, serves
from rag_pipeline.server.services import Config, Embeddings, Upstream
from rag_pipeline.server.settings import ServerSettings
from rag_pipeline.server.upstream import Upstreams, describe

router = APIRouter(prefix="/ollama", tags=["ollama"])

# Request headers that describe the hop to us, not the request itself.
_HOP_HEADERS = {
    "host",
    "authorization",
    "content-length",
    "connection",
    "accept-encoding",
    "cookie",
}
_PASS_BACK = {"content-type", "content-disposition"}
# What any signed-in user may call, as in Open WebUI: listing, showing and using models.
# Everything else (pull, push, create, copy, delete, unload, blobs, and any path Ollama
# adds later) manages the shared server's models and is for admins only.
_USER_CALLS = {
    ("GET", "api/tags"),
    ("GET", "api/version"),
    ("GET", "api/ps"),
    ("POST", "api/show"),
    ("POST", "api/embed"),
    ("POST", "api/embeddings"),
    ("POST", "api/generate"),
    ("POST", "api/chat"),
    ("GET", "v1/models"),
    ("POST", "v1/embeddings"),
    ("POST", "v1/completions"),
    ("POST", "v1/chat/completions"),
}


# What an Ollama API path is made of; anything else (control characters, spaces, '..')
# is refused here rather than failing to become an upstream URL.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._:@+-]+")


def _normalised(path: str) -> str:
    """The path without empty or ``.`` segments, so ``api//delete/`` is ``api/delete``."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts or not all(_PATH_SEGMENT.fullmatch(part) for part in parts):
        raise HTTPException(400, f"Not an Ollama API path: {path!r}")
    return "/".join(parts)


def _local_tag(model_name: str) -> dict[str, Any]:
    return {
        "name": model_name,
        "model": model_name,
        "modified_at": "1970-01-01T00:00:00Z",
        "size": 0,
        "digest": hashlib.sha256(model_name.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "safetensors",
            "family": "bert",
            "families": ["bert"],
            "parameter_size": "",
            "quantization_level": "",
        },
        "connection_type": "local",
        "urls": [0],
    }


_EMBED_CALLS = ("api/embed", "api/embeddings")
# Calls naming a model that must be one the upstream lists (Open WebUI 0.12.4's
# routers/ollama.py checks these before it forwards them).
_MODEL_CALLS = ("api/generate", "api/chat")


def _tagged(name: str) -> str:
    """An Ollama model name as Open WebUI keys it: ``:latest`` when it names no tag."""
    name = name.lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _listed(requested: str, tags: list[dict[str, Any]]) -> bool:
    names = {_tagged(str(tag[key])) for tag in tags for key in ("model", "name") if tag.get(key)}
    return bool(requested) and _tagged(requested) in names


async def _check_upstream_model(upstreams: Upstreams, requested: str) -> None:
    """400 as Open WebUI answers when the Ollama upstream does not list the model.

    The cached listing answers first; a model missing there is looked up again in a fresh
    ``/api/tags`` (it may have just been pulled), which raises 502 when Ollama is down."""
    listing = await upstreams.models()
    cached = [m["ollama"] for m in listing.models if m.get("owned_by") == "ollama"]
    if _listed(requested, cached) or _listed(requested, await upstreams.ollama_tags()):
        return
    raise HTTPException(400, f"Model '{requested}' was not found")


async def _local(
    request: Request, embedder: Embedder, settings: ServerSettings, path: str
) -> Response:
    """Answer the embedding part of the Ollama API with the server's own model."""
    name = embedder.model_name
    if path == "api/tags" and request.method == "GET":
        return JSONResponse({"models": [_local_tag(name)]})
    if path == "api/version" and request.method == "GET":
        return JSONResponse({"version": "0.0.0-rag-pipeline"})
    if path in _EMBED_CALLS and request.method == "POST":
        body = await json_object(request)
        requested = str(body.get("model", ""))
        if not serves(name, requested):
            raise HTTPException(400, f"Model '{requested}' was not found")
        field = "input" if path == "api/embed" else "prompt"
        texts = body.get(field)
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise HTTPException(400, f"'{field}' must be a string or a list of strings")
        texts = limit_texts(texts, field, settings)
        started = time.perf_counter_ns()
        vectors = await run_in_threadpool(embedder.embed_documents, texts)
        if path == "api/embeddings":
            return JSONResponse({"embedding": vectors[0].tolist() if len(texts) else []})
        return JSONResponse(
            {
                "model": requested,
                "embeddings": vectors.tolist(),
                "total_duration": time.perf_counter_ns() - started,
                "load_duration": 0,
                "prompt_eval_count": sum(len(t.split()) for t in texts),
            }
        )
    raise HTTPException(
        503, f"No Ollama upstream is configured (RAG_OLLAMA_BASE_URL); cannot serve /{path}"
    )


async def ollama_proxy(
    request: Request,
    user: CurrentUser,
    upstreams: Upstream,
    embedder: Embeddings,
    settings: Config,
    path: str,
) -> Response:
    """Forward any Ollama API call unchanged, streaming NDJSON answers through."""
    path = _normalised(path)
    method = "GET" if request.method == "HEAD" else request.method
    if user.role != "admin" and (method, path) not in _USER_CALLS:
        raise HTTPException(403, f"Only an admin may call /ollama/{path}")
    if not upstreams.ollama_url:
        return await _local(request, embedder, settings, path)
    if path == "api/tags" and request.method == "GET":
        return JSONResponse({"models": await upstreams.ollama_tags()})
    if path in _EMBED_CALLS + _MODEL_CALLS and request.method == "POST":
        # Open WebUI checks the model before it forwards these calls (400 "Model '…' was
        # not found"); so do we. The body read here is forwarded as it came.
        body = await json_object(request)
        await _check_upstream_model(upstreams, str(body.get("model", "")))
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
    response = await upstreams.open(
        request.method,
        f"{upstreams.ollama_url}/{path}",
        "the Ollama upstream",
        content=await request.body(),
        headers=headers,
        params=request.query_params,
    )

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for block in response.aiter_raw():
                yield block
        except httpx.HTTPError as exc:
            # The status line is gone already: end the NDJSON stream with an error line,
            # as Ollama itself reports a failure mid-stream, instead of a dropped socket.
            message = describe(exc, "the Ollama upstream", str(response.url))
            yield b"\n" + json.dumps({"error": message}).encode() + b"\n"

    return StreamingResponse(
        relay(),
        status_code=response.status_code,
        headers={k: v for k, v in response.headers.items() if k.lower() in _PASS_BACK},
        background=BackgroundTask(response.aclose),
    )


for _method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"):
    router.add_api_route(
        "/{path:path}",
        ollama_proxy,
        methods=[_method],
        operation_id=f"ollama_proxy_{_method.lower()}",
    )
