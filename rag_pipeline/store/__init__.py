"""Vector stores: the embedded qdrant-edge engine or a Qdrant reached by qdrant-client."""

from __future__ import annotations

from rag_pipeline.store.base import (
    CollectionInfo,
    SearchMode,
    SparseVector,
    StoredPoint,
    VectorStore,
    validate_collection_name,
)
from rag_pipeline.store.edge import EdgeStore
from rag_pipeline.store.qdrant import QdrantStore

__all__ = [
    "CollectionInfo",
    "EdgeStore",
    "QdrantStore",
    "SearchMode",
    "SparseVector",
    "StoredPoint",
    "VectorStore",
    "validate_collection_name",
]
