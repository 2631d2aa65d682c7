"""The server's services: one home for each decision; routes parse, call one, shape the answer.

``FileService`` (upload, read, delete), ``FileProcessor`` (a claimed file through the
pipeline), ``KnowledgeService`` (knowledge bases, their files, and every vector copy) and
``RetrievalService`` (queries and chats with files). Routes receive them as typed FastAPI
dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from rag_pipeline.server.services.files import FileService
from rag_pipeline.server.services.knowledge import KnowledgeService
from rag_pipeline.server.services.processing import FileProcessor
from rag_pipeline.server.services.retrieval import RetrievalService


@dataclass(frozen=True, slots=True)
class Services:
    """The services of one running app."""

    files: FileService
    knowledge: KnowledgeService
    retrieval: RetrievalService


def services(request: Request) -> Services:
    """The running app's services (built in its lifespan)."""
    return request.app.state.services


def _files(request: Request) -> FileService:
    return services(request).files


def _knowledge(request: Request) -> KnowledgeService:
    return services(request).knowledge


def _retrieval(request: Request) -> RetrievalService:
    return services(request).retrieval


Files = Annotated[FileService, Depends(_files)]
KnowledgeBases = Annotated[KnowledgeService, Depends(_knowledge)]
Retrieval = Annotated[RetrievalService, Depends(_retrieval)]

__all__ = [
    "FileProcessor",
    "FileService",
    "Files",
    "KnowledgeBases",
    "KnowledgeService",
    "Retrieval",
    "RetrievalService",
    "Services",
]
