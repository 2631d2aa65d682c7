"""``/api/v1/retrieval``: query a file or knowledge collection without a chat model."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from rag_pipeline.embedding.registry import embedder_kind
from rag_pipeline.loaders import SUPPORTED_SUFFIXES
from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.services import Config, Retrieval
from rag_pipeline.server.shapes import query_result
from rag_pipeline.types import SearchMode

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
def query_doc(user: CurrentUser, retrieval: Retrieval, form: QueryDocForm) -> dict[str, Any]:
    """The best chunks of one collection for a query."""
    hits = retrieval.query(user, [form.collection_name], form.query, form.k, _mode(form.hybrid))
    return query_result(hits, retrieval.model_name, ids=True)


@router.post("/query/collection")
def query_collection(
    user: CurrentUser, retrieval: Retrieval, form: QueryCollectionForm
) -> dict[str, Any]:
    """The best chunks over several collections for a query, merged."""
    hits = retrieval.query(user, form.collection_names, form.query, form.k, _mode(form.hybrid))
    return query_result(hits, retrieval.model_name, ids=False)


# What Open WebUI 0.12.4 answers for the settings we have no counterpart of (other
# loaders, rerankers, cloud drives), as recorded from its defaults; secrets stay empty.
_OPEN_WEBUI_DEFAULTS: dict[str, Any] = {
    "ENABLE_RAG_HYBRID_SEARCH_ENRICHED_TEXTS": False,
    "CONTENT_EXTRACTION_ENGINE": "",
    "CONTENT_EXTRACTION_SUPPORTED_MEDIA_MIME_TYPES": None,
    "PDF_EXTRACT_IMAGES": False,
    "PDF_LOADER_MODE": "page",
    "DATALAB_MARKER_API_KEY": "",
    "DATALAB_MARKER_API_BASE_URL": "",
    "DATALAB_MARKER_ADDITIONAL_CONFIG": "",
    "DATALAB_MARKER_SKIP_CACHE": False,
    "DATALAB_MARKER_FORCE_OCR": False,
    "DATALAB_MARKER_PAGINATE": False,
    "DATALAB_MARKER_STRIP_EXISTING_OCR": False,
    "DATALAB_MARKER_DISABLE_IMAGE_EXTRACTION": False,
    "DATALAB_MARKER_FORMAT_LINES": False,
    "DATALAB_MARKER_USE_LLM": False,
    "DATALAB_MARKER_OUTPUT_FORMAT": "markdown",
    "EXTERNAL_DOCUMENT_LOADER_URL": "",
    "EXTERNAL_DOCUMENT_LOADER_API_KEY": "",
    "EXTERNAL_DOCUMENT_LOADER_HEADERS": {},
    "TIKA_SERVER_URL": "http://tika:9998",
    "TIKA_SERVER_VERSION": "3",
    "DOCLING_SERVER_URL": "http://docling:5001",
    "DOCLING_API_KEY": "",
    "DOCLING_PARAMS": {},
    "DOCUMENT_INTELLIGENCE_ENDPOINT": "",
    "DOCUMENT_INTELLIGENCE_KEY": "",
    "DOCUMENT_INTELLIGENCE_MODEL": "prebuilt-layout",
    "MISTRAL_OCR_API_BASE_URL": "https://api.mistral.ai/v1",
    "MISTRAL_OCR_API_KEY": "",
    "MISTRAL_OCR_USE_BASE64": False,
    "PADDLEOCR_VL_BASE_URL": "http://localhost:8080",
    "PADDLEOCR_VL_TOKEN": "",
    "MINERU_API_MODE": "local",
    "MINERU_API_URL": "http://localhost:8000",
    "MINERU_API_KEY": "",
    "MINERU_API_TIMEOUT": "300",
    "MINERU_PARAMS": {},
    "MINERU_FILE_EXTENSIONS": ["pdf"],
    "RAG_RERANKING_MODEL": "",
    "RAG_RERANKING_ENGINE": "",
    "RAG_RERANKING_BATCH_SIZE": 32,
    "RAG_EXTERNAL_RERANKER_URL": "",
    "RAG_EXTERNAL_RERANKER_API_KEY": "",
    "RAG_EXTERNAL_RERANKER_TIMEOUT": "",
    "CHUNK_MIN_SIZE_TARGET": 0,
    "FILE_IMAGE_COMPRESSION_WIDTH": None,
    "FILE_IMAGE_COMPRESSION_HEIGHT": None,
    "ENABLE_GOOGLE_DRIVE_INTEGRATION": False,
    "ENABLE_ONEDRIVE_INTEGRATION": False,
}
# Web search is off: Open WebUI's defaults for its ``web`` section.
_WEB_DEFAULTS: dict[str, Any] = {
    "ENABLE_WEB_SEARCH": False,
    "ENABLE_WEB_SEARCH_CONFIRMATION": False,
    "WEB_SEARCH_CONFIRMATION_CONTENT": (
        "Your query will be sent to the configured web search provider."
    ),
    "WEB_SEARCH_ENGINE": "",
    "WEB_SEARCH_TRUST_ENV": True,
    "WEB_SEARCH_RESULT_COUNT": 3,
    "WEB_SEARCH_CONCURRENT_REQUESTS": 0,
    "WEB_FETCH_MAX_CONTENT_LENGTH": None,
    "WEB_LOADER_CONCURRENT_REQUESTS": 10,
    "WEB_SEARCH_DOMAIN_FILTER_LIST": [],
    "BYPASS_WEB_SEARCH_EMBEDDING_AND_RETRIEVAL": False,
    "BYPASS_WEB_SEARCH_WEB_LOADER": False,
    "OLLAMA_CLOUD_WEB_SEARCH_API_KEY": "",
    "SEARXNG_QUERY_URL": "",
    "SEARXNG_LANGUAGE": "all",
    "OPENSERP_BASE_URL": "http://localhost:7000",
    "YACY_QUERY_URL": "",
    "YACY_USERNAME": "",
    "YACY_PASSWORD": "",
    "GOOGLE_PSE_API_KEY": "",
    "GOOGLE_PSE_ENGINE_ID": "",
    "BRAVE_SEARCH_API_KEY": "",
    "BRAVE_SEARCH_CONTEXT_TOKENS": 8192,
    "KAGI_SEARCH_API_KEY": "",
    "MOJEEK_SEARCH_API_KEY": "",
    "BOCHA_SEARCH_API_KEY": "",
    "SERPSTACK_API_KEY": "",
    "SERPSTACK_HTTPS": True,
    "SERPER_API_KEY": "",
    "SERPHOUSE_API_KEY": "",
    "SERPHOUSE_DOMAIN": "google.com",
    "SERPLY_API_KEY": "",
    "DDGS_BACKEND": "auto",
    "TAVILY_API_KEY": "",
    "STAAN_API_KEY": "",
    "STAAN_MARKET": "en-us",
    "STAAN_MAX_SNIPPETS": 0,
    "SEARCHAPI_API_KEY": "",
    "SEARCHAPI_ENGINE": "",
    "SERPAPI_API_KEY": "",
    "SERPAPI_ENGINE": "",
    "JINA_API_KEY": "",
    "JINA_API_BASE_URL": "",
    "BING_SEARCH_V7_ENDPOINT": "https://api.bing.microsoft.com/v7.0/search",
    "BING_SEARCH_V7_SUBSCRIPTION_KEY": "",
    "EXA_API_KEY": "",
    "EXA_MAX_CONTENT_LENGTH": None,
    "PERPLEXITY_API_KEY": "",
    "PERPLEXITY_MODEL": "sonar",
    "PERPLEXITY_SEARCH_CONTEXT_USAGE": "medium",
    "PERPLEXITY_SEARCH_API_URL": "https://api.perplexity.ai/search",
    "MICROSOFT_WEB_IQ_API_BASE_URL": "https://api.microsoft.ai/v3",
    "MICROSOFT_WEB_IQ_API_KEY": "",
    "MICROSOFT_WEB_IQ_LANGUAGE": "en",
    "SOUGOU_API_SID": "",
    "SOUGOU_API_SK": "",
    "WEB_LOADER_ENGINE": "",
    "WEB_LOADER_TIMEOUT": "",
    "ENABLE_WEB_LOADER_SSL_VERIFICATION": True,
    "PLAYWRIGHT_WS_URL": "",
    "PLAYWRIGHT_TIMEOUT": 10000,
    "FIRECRAWL_API_KEY": "",
    "FIRECRAWL_API_BASE_URL": "https://api.firecrawl.dev",
    "FIRECRAWL_TIMEOUT": "",
    "TAVILY_EXTRACT_DEPTH": "basic",
    "TAVILY_SEARCH_DEPTH": "basic",
    "EXTERNAL_WEB_SEARCH_URL": "",
    "EXTERNAL_WEB_SEARCH_API_KEY": "",
    "EXTERNAL_WEB_LOADER_URL": "",
    "EXTERNAL_WEB_LOADER_API_KEY": "",
    "YOUTUBE_LOADER_LANGUAGE": ["en"],
    "YOUTUBE_LOADER_PROXY_URL": "",
    "YOUTUBE_LOADER_TRANSLATION": None,
    "YANDEX_WEB_SEARCH_URL": "",
    "YANDEX_WEB_SEARCH_API_KEY": "",
    "YANDEX_WEB_SEARCH_CONFIG": "",
    "YOUCOM_API_KEY": "",
    "LINKUP_API_KEY": "",
    "LINKUP_SEARCH_PARAMS": {},
}


@router.get("/config")
def retrieval_config(user: CurrentUser, settings: Config, retrieval: Retrieval) -> dict[str, Any]:
    """The retrieval settings in force, with every key Open WebUI answers (read-only here)."""
    template = retrieval.prompt_template
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
        # Open WebUI's share of BM25 in hybrid search: none for dense, all for sparse.
        "HYBRID_BM25_WEIGHT": {"dense": 0.0, "hybrid": 0.5, "sparse": 1.0}[settings.search_mode],
        "TEXT_SPLITTER": "token",
        "RAG_TOKENIZER_MODEL": "cl100k_base",
        "ENABLE_MARKDOWN_HEADER_TEXT_SPLITTER": True,
        "CHUNK_SIZE": settings.chunk_size,
        "CHUNK_OVERLAP": settings.chunk_overlap,
        "FILE_MAX_SIZE": settings.max_file_bytes // (1024 * 1024),
        "FILE_MAX_COUNT": None,
        "ALLOWED_FILE_EXTENSIONS": sorted(s.lstrip(".") for s in SUPPORTED_SUFFIXES),
        **copy.deepcopy(_OPEN_WEBUI_DEFAULTS),
        "web": copy.deepcopy(_WEB_DEFAULTS),
        # Ours, not Open WebUI's: what hybrid means here.
        "SEARCH_MODE": settings.search_mode,
        "HYBRID_FUSION": settings.fusion,
    }


@router.get("/embedding")
def embedding_config(user: CurrentUser, settings: Config, retrieval: Retrieval) -> dict[str, Any]:
    """The embedding engine and model, under Open WebUI's key names (read-only here)."""
    engine = "" if embedder_kind(settings.embedder).in_process else settings.embedder
    base = settings.embedding_base_url or ""
    return {
        "status": True,
        "RAG_EMBEDDING_ENGINE": engine,
        "RAG_EMBEDDING_MODEL": retrieval.model_name,
        "RAG_EMBEDDING_BATCH_SIZE": settings.effective_batch_size,
        "ENABLE_ASYNC_EMBEDDING": True,
        "RAG_EMBEDDING_CONCURRENT_REQUESTS": settings.embedding_concurrency,
        "openai_config": {"url": base if engine == "openai" else "", "key": ""},
        "ollama_config": {"url": base if engine == "ollama" else "", "key": ""},
        "azure_openai_config": {"url": "", "key": "", "version": ""},
    }
