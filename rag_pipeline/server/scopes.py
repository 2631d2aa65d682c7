"""Where a file's or a knowledge base's chunks are: the one mapping from references to scopes."""

from __future__ import annotations

from rag_pipeline.types import SearchScope

# Every upload's chunks live in this one collection, told apart by their ``file_id``
# (indexed). A collection per upload cost a shard's creation, flush and close each
# (qdrant-edge: ~8 engine threads and several files per shard), more than the embedding of
# a small file.
UPLOADS_COLLECTION = "uploads"
# Open WebUI names a file's collection ``file-{id}``; clients send that name back to us.
FILE_COLLECTION_PREFIX = "file-"


def file_scope(file_id: str) -> SearchScope:
    """Where one uploaded file's chunks are: its points of the uploads collection."""
    return SearchScope(UPLOADS_COLLECTION, {"file_id": file_id})


def knowledge_scope(knowledge_id: str) -> SearchScope:
    """Where a knowledge base's chunks are: the collection named by its id (copies)."""
    return SearchScope(knowledge_id)


def file_collection_name(file_id: str) -> str:
    """The name Open WebUI gives a file's collection (shown in ``meta.collection_name``)."""
    return FILE_COLLECTION_PREFIX + file_id
