"""Retrieval, reranking and prompt building."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag_pipeline.retrieval.prompt import RAG_TEMPLATE, PromptBuilder
from rag_pipeline.retrieval.rerank import Reranker, rerank
from rag_pipeline.retrieval.retriever import Retriever

if TYPE_CHECKING:
    from rag_pipeline.retrieval.http_rerank import HTTPReranker
    from rag_pipeline.retrieval.local_rerank import LocalReranker
    from rag_pipeline.retrieval.signals import SignalReranker

# Imported on first use: httpx, the ONNX export and the sparse encoder are not every
# query's cost.
_LAZY = {
    "HTTPReranker": "rag_pipeline.retrieval.http_rerank",
    "LocalReranker": "rag_pipeline.retrieval.local_rerank",
    "SignalReranker": "rag_pipeline.retrieval.signals",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rag_pipeline.retrieval' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "RAG_TEMPLATE",
    "HTTPReranker",
    "LocalReranker",
    "PromptBuilder",
    "Reranker",
    "Retriever",
    "SignalReranker",
    "rerank",
]
