"""``create_app(settings)``: the FastAPI application, its state held on ``app.state``."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from rag_pipeline import __version__
from rag_pipeline.embedding.base import Embedder
from rag_pipeline.embedding.batching import BatchingEmbedder
from rag_pipeline.embedding.cache import CachedEmbedder
from rag_pipeline.errors import (
    AuthError,
    ConfigError,
    CredentialsError,
    EmbeddingError,
    LoaderError,
    ModelMismatchError,
    ModelNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    RagError,
    RemoteError,
    RerankError,
    StatusError,
    StoreError,
    TooLargeError,
    UnsupportedTypeError,
    UpstreamError,
)
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.retrieval.rerank import Reranker
from rag_pipeline.server import failpoints
from rag_pipeline.server.auth import TokenIssuer
from rag_pipeline.server.db import Database
from rag_pipeline.server.guard import RequestGuard
from rag_pipeline.server.jobs import JobQueue, Leases
from rag_pipeline.server.routes import (
    auths,
    chat,
    files,
    knowledge,
    ollama,
    openai_compat,
    process,
    rerank,
    retrieval,
)
from rag_pipeline.server.services import (
    AccountService,
    ExtractionService,
    FileProcessor,
    FileService,
    KnowledgeService,
    RerankService,
    RetrievalService,
    Services,
)
from rag_pipeline.server.settings import ServerSettings
from rag_pipeline.server.upstream import Upstreams

log = logging.getLogger(__name__)


# The one table from library error to HTTP status; the most specific class in an error's
# MRO wins, so a new subclass inherits its parent's status until it gets its own row.
ERROR_STATUS: dict[type[RagError], int] = {
    RagError: 500,
    ConfigError: 400,
    LoaderError: 400,
    AuthError: 401,
    CredentialsError: 400,  # Open WebUI answers a wrong password or a taken e-mail with 400
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ModelNotFoundError: 400,  # Open WebUI answers an unknown chat model with 400
    ModelMismatchError: 409,
    TooLargeError: 413,
    UnsupportedTypeError: 415,
    StatusError: 502,
    EmbeddingError: 502,
    RerankError: 502,
    UpstreamError: 502,  # or the status the error carries (e.g. 504 on a timeout)
    RemoteError: 502,
    StoreError: 500,
}


class ErrorBody(BaseModel):
    """What every error answers with (as Open WebUI does)."""

    detail: str


# Declared on every route, so clients and schema-driven tests know the error answers.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request: the reason is in `detail`"),
        (401, "Missing or invalid token"),
        (403, "Not allowed for this user"),
        (404, "Not found, or not this user's to see"),
        (409, "Conflicts with what is stored (e.g. another embedding model)"),
        (413, "Body or file past its size limit"),
        (415, "A file type that is not read"),
        (502, "An upstream model server failed"),
    )
}


def status_for(exc: RagError) -> int:
    """The HTTP status a library error is answered with."""
    if isinstance(exc, UpstreamError) and isinstance(getattr(exc, "status", None), int):
        return exc.status
    if isinstance(exc, StatusError) and getattr(exc, "status", None) == 504:
        return 504  # whatever we called did not answer in time: a gateway timeout
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def _warm_up(pipeline: Pipeline) -> None:
    try:
        pipeline.warm_up()
    except Exception as exc:  # reported again, to the caller, on first real use
        log.warning("embedding model not ready: %s", exc)


def _server_pipeline(settings: ServerSettings) -> Pipeline:
    """The server's pipeline: one embedder for every upload, batched across requests."""
    from rag_pipeline.server.scopes import UPLOADS_COLLECTION

    # Every upload shares one collection (and knowledge bases copy its vectors), so auto
    # cannot choose per collection here: it keeps the model the uploads were made with
    # (the pipeline's own per-collection choice, asked for that collection).
    chooser = Pipeline(settings)
    embedder = chooser.embedder_for(UPLOADS_COLLECTION)
    # Uploads processed at once share model batches (see BatchingEmbedder). A batch is a
    # few of the model's own batches (32 texts on a CPU, 1,024 on a GPU): a large
    # embedding-API request then delays another user's upload by about that much, not
    # by its whole length (benchmarks/embed_fairness.py).
    batching = BatchingEmbedder(embedder, max_batch=4 * settings.effective_batch_size)
    return Pipeline(settings, embedder=batching, store=chooser.store)


def _signals(settings: ServerSettings, pipeline: Pipeline, embeddings: Embedder) -> Reranker:
    """Our own signals for the reranking API, over the embedding API's cached model (Open
    WebUI using us as its embedder sent the candidates through it already) and, for text
    that model cannot read, the multilingual one, loaded on the first such request."""
    from rag_pipeline.embedding.registry import make_embedder
    from rag_pipeline.languages import MULTILINGUAL_EMBEDDER
    from rag_pipeline.retrieval.signals import SignalReranker

    def multilingual() -> Embedder:
        model = make_embedder(settings.model_copy(update={"embedder": MULTILINGUAL_EMBEDDER}))
        return CachedEmbedder(model, settings.embedding_cache_entries)

    return SignalReranker(embeddings, pipeline.sparse_encoder, multilingual=multilingual)


def create_app(settings: ServerSettings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """Build the server; a given ``pipeline`` is used (and left open), else one is made."""
    settings = settings or ServerSettings()
    owns_pipeline = pipeline is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
        state = app.state
        state.settings = settings
        state.pipeline = pipeline or _server_pipeline(settings)
        # The embedding API's own view of the model: texts it answered before come from
        # memory (see CachedEmbedder).
        state.embeddings = CachedEmbedder(state.pipeline.embedder, settings.embedding_cache_entries)
        reranking = RerankService(
            None if settings.reranker == "signals" else state.pipeline.reranker,
            _signals(settings, state.pipeline, state.embeddings),
        )
        try:
            state.db = Database(settings.resolved_database_url())
        except ConfigError as exc:  # e.g. a database a newer rag-pipeline upgraded
            log.error("cannot start: %s", exc)
            if owns_pipeline:
                state.pipeline.close()
            raise
        state.tokens = TokenIssuer(settings.resolved_jwt_secret(), settings.jwt_expires_seconds)
        timeout = httpx.Timeout(
            settings.upstream_timeout, connect=settings.upstream_connect_timeout
        )
        state.http = httpx.AsyncClient(timeout=timeout, follow_redirects=True)
        state.upstreams = Upstreams(settings, state.http)
        leases = Leases(
            state.db,
            settings.replica_id,
            settings.processing_lease_seconds,
            settings.processing_max_attempts,
        )
        knowledge_service = KnowledgeService(
            state.db, state.pipeline.store, users_may_create=settings.user_knowledge_access
        )
        processor = FileProcessor(
            state.db, state.pipeline, leases, on_completed=knowledge_service.file_completed
        )
        state.queue = JobQueue(
            state.db,
            leases,
            processor.process_batch,
            settings.processing_workers,
            settings.processing_batch,
        )
        state.services = Services(
            accounts=AccountService(
                state.db, state.tokens, settings.enable_signup, settings.user_knowledge_access
            ),
            files=FileService(state.db, settings, processor, state.queue, knowledge_service),
            knowledge=knowledge_service,
            retrieval=RetrievalService(state.db, state.pipeline, settings.top_k),
            extraction=ExtractionService(settings.load_limits(), settings.max_file_bytes),
            embeddings=state.embeddings,
            reranking=reranking,
            upstreams=state.upstreams,
            settings=settings,
        )
        # Changes a crash cut off are finished before any request sees their state.
        repaired = knowledge_service.repair()
        if repaired:
            log.warning("finished changes an earlier stop cut off: %s", repaired)
        orphans = state.services.files.remove_orphans()
        if orphans:
            log.warning("removed %d upload folders no file row names", len(orphans))
        state.queue.start()
        failpoints.arm()
        # The model loads in the background (seconds): health answers at once, and the
        # first upload or query finds it ready instead of paying for it.
        threading.Thread(
            target=_warm_up, args=(state.pipeline,), name="rag-warm-up", daemon=True
        ).start()
        try:
            yield
        finally:
            state.queue.stop()
            await state.http.aclose()
            state.db.close()
            if owns_pipeline:
                state.pipeline.close()

    docs = settings.docs_enabled
    app = FastAPI(
        title="rag-pipeline",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )

    app.add_middleware(RequestGuard)

    @app.exception_handler(RagError)
    async def rag_error(_request: Request, exc: RagError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        """Liveness, without auth."""
        return {"status": True}

    for module in (
        auths,
        files,
        knowledge,
        retrieval,
        chat,
        ollama,
        openai_compat,
        rerank,
        process,
    ):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    return app
