"""Retrieval for the server: which collections a user may search, and hits in Open WebUI's shape."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException
from sqlalchemy.orm import Session

from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server.db import FileRecord, Knowledge, User
from rag_pipeline.server.ownership import owned_file, owned_knowledge
from rag_pipeline.server.processing import file_scope, knowledge_scope
from rag_pipeline.store.base import SearchMode
from rag_pipeline.types import Hit, SearchScope

# Payload fields that are bookkeeping of the indexer, or server paths, not metadata to show.
_HIDDEN = {"root", "file_chunks", "knowledge_id", "key"}


def collection_for_name(session: Session, user: User, name: str) -> SearchScope:
    """Where the collection a client names (``file-{id}`` or a knowledge id) is, if readable."""
    if name.startswith("file-") and session.get(FileRecord, name[5:]) is not None:
        owned_file(session, user, name[5:])
        return file_scope(name[5:])
    if session.get(Knowledge, name) is not None:
        owned_knowledge(session, user, name)
        return knowledge_scope(name)
    raise HTTPException(404, f"Collection {name} not found")


def collection_for_ref(session: Session, user: User, ref: dict[str, Any]) -> SearchScope:
    """Where a chat ``files`` entry (``{"type": "file"|"collection", "id"}``) points."""
    kind, ref_id = ref.get("type"), str(ref.get("id") or "")
    if kind == "file":
        owned_file(session, user, ref_id)
        return file_scope(ref_id)
    if kind == "collection":
        owned_knowledge(session, user, ref_id)
        return knowledge_scope(ref_id)
    raise HTTPException(400, f"Unsupported file type {kind!r}: use 'file' or 'collection'")


def search(
    pipeline: Pipeline,
    scopes: Sequence[SearchScope],
    query: str,
    k: int,
    mode: SearchMode | None = None,
) -> list[Hit]:
    """The best ``k`` hits over the scopes whose collection exists (none before a first file)."""
    store = pipeline.store
    existing = [s for s in scopes if store.collection_model(s.collection) is not None]
    if not existing or not query.strip():
        return []
    return pipeline.query(query, existing, top_k=k, mode=mode)


def hit_metadata(hit: Hit, model: str) -> dict[str, Any]:
    """A hit's metadata as Open WebUI shows it: ``source`` is the file name."""
    metadata = {k: v for k, v in hit.metadata.items() if k not in _HIDDEN}
    metadata["source"] = metadata.get("name") or hit.source
    metadata.setdefault("name", hit.source)
    metadata["start_index"] = metadata.get("start_index", 0)
    metadata["embedding_config"] = json.dumps({"engine": "", "model": model})
    return metadata


def query_result(hits: Sequence[Hit], model: str, *, ids: bool) -> dict[str, list[list[Any]]]:
    """The ``/retrieval/query/*`` answer (Open WebUI leaves ``ids`` out of ``query/collection``)."""
    result: dict[str, list[list[Any]]] = {"ids": [[h.id for h in hits]]} if ids else {}
    result["documents"] = [[h.text for h in hits]]
    result["metadatas"] = [[hit_metadata(h, model) for h in hits]]
    result["distances"] = [[h.score for h in hits]]
    return result
