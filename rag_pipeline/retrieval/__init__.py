"""Retrieval and prompt building."""

from __future__ import annotations

from rag_pipeline.retrieval.prompt import RAG_TEMPLATE, PromptBuilder
from rag_pipeline.retrieval.retriever import Retriever

__all__ = ["RAG_TEMPLATE", "PromptBuilder", "Retriever"]
