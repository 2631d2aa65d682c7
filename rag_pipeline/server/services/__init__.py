"""The server's services: one home for each decision; routes parse, call one, shape the answer.

``AccountService`` (sign-up, sign-in, keys), ``FileService`` (upload, read, delete),
``FileProcessor`` (a claimed file through the pipeline), ``KnowledgeService`` (knowledge
bases, their files, and every vector copy), ``RetrievalService`` (queries and chats
with files) and ``RerankService`` (the reranking API); beside them the embedding model as
the embedding APIs use it, the upstream model servers and the settings. Routes receive
each as a typed FastAPI dependency (the ``Annotated`` names below): this module is the only
one that reads ``app.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.server.services.accounts import AccountService
from rag_pipeline.server.services.extraction import ExtractionService
from rag_pipeline.server.services.files import FileService
from rag_pipeline.server.services.knowledge import KnowledgeService
from rag_pipeline.server.services.processing import FileProcessor
from rag_pipeline.server.services.reranking import RerankService
from rag_pipeline.server.services.retrieval import RetrievalService
from rag_pipeline.server.settings import ServerSettings
from rag_pipeline.server.upstream import Upstreams


@dataclass(frozen=True, slots=True)
class Services:
    """The services of one running app."""

    accounts: AccountService
    files: FileService
    knowledge: KnowledgeService
    retrieval: RetrievalService
    extraction: ExtractionService
    # The server's model for the embedding APIs (answers it gave before come from memory).
    embeddings: Embedder
    # The reranking API's model: the configured reranker, else our own signals.
    reranking: RerankService
    upstreams: Upstreams
    settings: ServerSettings


def services(request: Request) -> Services:
    """The running app's services (built in its lifespan)."""
    return request.app.state.services


def _one(name: str) -> Any:
    """A FastAPI dependency answering the running app's service ``name``."""

    def get(request: Request) -> Any:
        return getattr(services(request), name)

    return Depends(get)


Accounts = Annotated[AccountService, _one("accounts")]
Embeddings = Annotated[Embedder, _one("embeddings")]
Reranking = Annotated[RerankService, _one("reranking")]
Upstream = Annotated[Upstreams, _one("upstreams")]
Config = Annotated[ServerSettings, _one("settings")]
Extractor = Annotated[ExtractionService, _one("extraction")]
Files = Annotated[FileService, _one("files")]
KnowledgeBases = Annotated[KnowledgeService, _one("knowledge")]
Retrieval = Annotated[RetrievalService, _one("retrieval")]

__all__ = [
    "AccountService",
    "Accounts",
    "Config",
    "Embeddings",
    "ExtractionService",
    "Extractor",
    "FileProcessor",
    "FileService",
    "Files",
    "KnowledgeBases",
    "KnowledgeService",
    "RerankService",
    "Reranking",
    "Retrieval",
    "RetrievalService",
    "Services",
    "Upstream",
]
