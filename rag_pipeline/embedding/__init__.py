"""Embedders: a local sentence-transformers model, Ollama or an OpenAI-compatible endpoint."""

from __future__ import annotations

from rag_pipeline.embedding.base import Embedder, default_prefixes
from rag_pipeline.embedding.http import OllamaEmbedder, OpenAIEmbedder
from rag_pipeline.embedding.local import DEFAULT_LOCAL_MODEL, LocalEmbedder

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "Embedder",
    "LocalEmbedder",
    "OllamaEmbedder",
    "OpenAIEmbedder",
    "default_prefixes",
]
