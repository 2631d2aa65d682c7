"""Vector stores: the embedded qdrant-edge engine or a Qdrant reached by qdrant-client."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rag_pipeline.store.base import (
    CollectionConfig,
    CollectionInfo,
    IndexBuild,
    SearchMode,
    SparseVector,
    StoredPoint,
    VectorStore,
    validate_collection_name,
)
from rag_pipeline.store.factory import open_store
from rag_pipeline.store.tenants import TenantStore

if TYPE_CHECKING:
    from rag_pipeline.store.edge import EdgeStore
    from rag_pipeline.store.qdrant import QdrantStore

# qdrant-client costs ~1 s to import; only a Qdrant URL (or local mode) needs it.
_LAZY = {"EdgeStore": "rag_pipeline.store.edge", "QdrantStore": "rag_pipeline.store.qdrant"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "CollectionConfig",
    "CollectionInfo",
    "EdgeStore",
    "IndexBuild",
    "QdrantStore",
    "SearchMode",
    "SparseVector",
    "StoredPoint",
    "TenantStore",
    "VectorStore",
    "open_store",
    "validate_collection_name",
]
