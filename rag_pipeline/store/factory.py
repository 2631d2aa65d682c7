"""``open_store(settings)``: the store the settings name — a Qdrant server (qdrant-client), its
local mode, or the embedded qdrant-edge engine — in the collection layout they name."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rag_pipeline.store.base import VectorStore

if TYPE_CHECKING:
    from rag_pipeline.settings import Settings


def open_store(
    settings: Settings,
    url: str | None = None,
    *,
    api_key: str | None = None,
    layout: str | None = None,
) -> VectorStore:
    """Open the store the settings name (a Qdrant URL, or the embedded engine) in their
    layout; ``url`` (a Qdrant server URL or a local-mode folder, with ``api_key``) and
    ``layout`` open another one instead, with the same collection settings."""
    from rag_pipeline.store.tenants import TenantStore

    store = _open_engine(settings, url, api_key)
    return TenantStore(store) if (layout or settings.qdrant_layout) == "tenants" else store


def _open_engine(settings: Settings, url: str | None, api_key: str | None) -> VectorStore:
    config = settings.collection_config()
    if url is not None and not url.startswith(("http://", "https://")):
        from rag_pipeline.store.qdrant import QdrantStore

        os.makedirs(url, exist_ok=True)
        return QdrantStore(path=url, config=config)
    if url:
        from rag_pipeline.store.qdrant import QdrantStore

        return QdrantStore(url, api_key=api_key, config=config)
    if settings.qdrant_url:
        from rag_pipeline.store.qdrant import QdrantStore

        return QdrantStore(settings.qdrant_url, api_key=settings.qdrant_api_key, config=config)
    if settings.embedded_store == "local":
        from rag_pipeline.store.qdrant import QdrantStore

        path = settings.data_dir / "qdrant-local"
        path.mkdir(parents=True, exist_ok=True)
        return QdrantStore(path=os.fspath(path), config=config)
    from rag_pipeline.store.edge import EdgeStore

    return EdgeStore(settings.data_dir / "qdrant-edge", config=config)
