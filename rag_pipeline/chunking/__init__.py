"""Chunking: documents into token-sized, heading-aware chunks."""

from __future__ import annotations

from rag_pipeline.chunking.splitter import Chunker, chunk_id, content_hash, embedding_text
from rag_pipeline.chunking.tokens import count_tokens, get_encoding

__all__ = ["Chunker", "chunk_id", "content_hash", "count_tokens", "embedding_text", "get_encoding"]
