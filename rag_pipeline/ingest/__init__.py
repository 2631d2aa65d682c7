"""Batch indexing: source items → prepare (worker processes) → embed → write, incremental."""

from __future__ import annotations

from rag_pipeline.ingest.indexer import EMBED_GROUP, Indexer, default_workers
from rag_pipeline.ingest.report import IndexReport, ProgressCallback
from rag_pipeline.ingest.sources import SourceItem, documents_sha256, file_sha256, walk_files

__all__ = [
    "EMBED_GROUP",
    "IndexReport",
    "Indexer",
    "ProgressCallback",
    "SourceItem",
    "default_workers",
    "documents_sha256",
    "file_sha256",
    "walk_files",
]
