"""``POST /v1/rerank`` and ``/rerank``: a reranking API for Open WebUI and other clients.

Open WebUI 0.12.4 with ``RAG_RERANKING_ENGINE=external`` posts the Cohere/Jina shape,
``{"model","query","documents":[...],"top_n"}`` with ``Authorization: Bearer <key>``, once per
query and collection, and reads ``results[i].index`` and ``.relevance_score`` back, pairing
them by index (every document must be scored); it merges collections and applies its
relevance threshold by the raw score, so scores sit on one absolute 0..1 scale. ``/rerank``
also takes Hugging Face TEI's shape (``{"query","texts"}`` → ``[{"index","score"}]``).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.routes.openai_compat import json_object, limit_texts, serves
from rag_pipeline.server.services import Config, Reranking

router = APIRouter(tags=["rerank"])

# Cohere's limit on the documents of one request.
MAX_DOCUMENTS = 1000


class RerankForm(BaseModel):
    """Body of ``POST /v1/rerank`` (documentation only: the route checks it itself, to
    answer a bad body with 400 and a reason). Other fields are ignored."""

    model: str | None = Field(None, description="the reranking model (GET /v1/models)")
    query: str
    documents: list[str | dict[str, str]] = Field(
        description=f"up to {MAX_DOCUMENTS} texts, or objects with a 'text'"
    )
    top_n: int | None = Field(None, ge=1, description="how many results (default: all)")
    return_documents: bool = False


def _documents(body: dict[str, Any], field: str) -> list[str]:
    value = body.get(field)
    if not isinstance(value, list):
        raise HTTPException(400, f"'{field}' must be a list of texts")
    if len(value) > MAX_DOCUMENTS:
        raise HTTPException(
            400, f"'{field}' has {len(value)} documents; at most {MAX_DOCUMENTS} per request"
        )
    texts = []
    for index, item in enumerate(value):
        if isinstance(item, dict):  # Cohere's v1 API also takes {"text": ...}
            item = item.get("text")
        if not isinstance(item, str):
            raise HTTPException(400, f"'{field}'[{index}] must be a text (or {{'text': ...}})")
        texts.append(item)
    return texts


async def _rerank(request: Request, reranking: Reranking, settings: Config) -> Any:
    body = await json_object(request)
    tei = "texts" in body and "documents" not in body
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise HTTPException(400, "'query' must be a non-empty text")
    requested = body.get("model")
    name = reranking.model_name
    if requested not in (None, "") and not (isinstance(requested, str) and serves(name, requested)):
        raise HTTPException(
            400, f"Model '{requested}' is not served here; this server reranks with '{name}'"
        )
    field = "texts" if tei else "documents"
    documents = limit_texts(_documents(body, field), field, settings)
    top_n = body.get("top_n")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise HTTPException(400, "'top_n' must be a positive integer")
    [query] = limit_texts([query], "query", settings)
    scores, model = (
        await run_in_threadpool(reranking.score, query, documents) if documents else ([], name)
    )
    order = sorted(range(len(documents)), key=lambda i: -float(scores[i]))[:top_n]
    wants_text = bool(body.get("return_documents") if not tei else body.get("return_text"))
    if tei:
        return [
            {"index": i, "score": float(scores[i])} | ({"text": documents[i]} if wants_text else {})
            for i in order
        ]
    return {
        "id": str(uuid.uuid4()),
        "model": model,
        "results": [
            {
                "index": i,
                "relevance_score": float(scores[i]),
                **({"document": {"text": documents[i]}} if wants_text else {}),
            }
            for i in order
        ],
    }


_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": RerankForm.model_json_schema()}},
    }
}


@router.post("/v1/rerank", openapi_extra=_BODY)
async def rerank_v1(
    request: Request, user: CurrentUser, reranking: Reranking, settings: Config
) -> Any:
    """Score documents against a query (Cohere/Jina shape), best first."""
    return await _rerank(request, reranking, settings)


@router.post("/rerank", openapi_extra=_BODY)
async def rerank(
    request: Request, user: CurrentUser, reranking: Reranking, settings: Config
) -> Any:
    """As ``/v1/rerank``; also takes TEI's ``{"query","texts"}`` and answers its list shape."""
    return await _rerank(request, reranking, settings)
