"""The JSON shapes Open WebUI 0.12.4 answers with, built from our rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rag_pipeline.server.auth import user_summary
from rag_pipeline.server.db import COMPLETED, FileRecord, Knowledge, User
from rag_pipeline.server.scopes import file_collection_name
from rag_pipeline.types import Hit

# Payload fields that are bookkeeping of the indexer, or server paths, not metadata to show.
_HIDDEN = {"root", "file_chunks", "file_stat", "knowledge_id", "key"}


def file_meta(record: FileRecord, collection_name: str | None = None) -> dict[str, Any]:
    """The ``meta`` object of a file; ``file_hash`` is the SHA-256 of the uploaded bytes."""
    meta: dict[str, Any] = {
        "name": record.filename,
        "content_type": record.content_type,
        "size": record.size,
        "file_hash": record.file_hash,
        "data": {},
    }
    if collection_name is not None:
        meta["collection_name"] = collection_name
    elif record.status == COMPLETED:
        meta["collection_name"] = file_collection_name(record.id)
    return meta


def file_data(record: FileRecord, *, content: bool = True) -> dict[str, Any]:
    """The ``data`` object of a file: its processing status, text once done, and error."""
    if record.status not in (COMPLETED, "failed"):
        return {"status": record.status}
    data: dict[str, Any] = {"status": record.status}
    if content:
        data["content"] = record.content or ""
    data["error"] = record.error
    return data


def file_object(record: FileRecord, *, content: bool = True, path: bool = True) -> dict[str, Any]:
    """A file as ``GET /api/v1/files/{id}`` answers it."""
    body: dict[str, Any] = {
        "id": record.id,
        "user_id": record.user_id,
        "hash": record.content_hash,
        "filename": record.filename,
    }
    if path:
        body["path"] = record.path
    body.update(
        data=file_data(record, content=content),
        meta=file_meta(record),
        created_at=record.created_at,
        updated_at=record.updated_at,
    )
    return body


def uploaded_file_object(record: FileRecord) -> dict[str, Any]:
    """A file as the upload answers it (``status: true`` and the path last)."""
    body = file_object(record, path=False)
    body.update(status=True, path=record.path)
    return body


def knowledge_object(
    knowledge: Knowledge, *, files: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A knowledge base as create/get answer it."""
    return {
        "id": knowledge.id,
        "user_id": knowledge.user_id,
        "name": knowledge.name,
        "description": knowledge.description,
        "meta": knowledge.meta,
        "access_grants": [],
        "created_at": knowledge.created_at,
        "updated_at": knowledge.updated_at,
        "files": files,
    }


def knowledge_file_entry(record: FileRecord, knowledge_id: str) -> dict[str, Any]:
    """A file as listed inside a knowledge answer (no content)."""
    return {
        "id": record.id,
        "hash": record.content_hash,
        "meta": file_meta(record, collection_name=knowledge_id),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def knowledge_file_item(record: FileRecord, knowledge_id: str, owner: User) -> dict[str, Any]:
    """A file as ``GET /api/v1/knowledge/{id}/files`` lists it."""
    return {
        "id": record.id,
        "user_id": record.user_id,
        "hash": record.content_hash,
        "filename": record.filename,
        "data": file_data(record, content=False),
        "meta": file_meta(record, collection_name=knowledge_id),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "directory_id": None,
        "directory_path": "",
        "has_original": True,
        "user": user_summary(owner),
    }


def knowledge_with_files(knowledge: Knowledge, files: Sequence[FileRecord]) -> dict[str, Any]:
    """A knowledge base with its files, as add/remove/update/reset answer it."""
    body = knowledge_object(knowledge, files=[knowledge_file_entry(f, knowledge.id) for f in files])
    body["write_access"] = False
    return body


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


def chat_sources(
    groups: Sequence[tuple[dict[str, Any], Sequence[Hit]]], model: str
) -> list[dict[str, Any]]:
    """The ``sources`` of a chat answer: per file reference, the chunks given to the model."""
    return [
        {
            "source": {"type": ref.get("type"), "id": ref.get("id")},
            "document": [hit.text for hit in hits],
            "metadata": [hit_metadata(hit, model) for hit in hits],
            "distances": [hit.score for hit in hits],
        }
        for ref, hits in groups
    ]
