"""The JSON shapes Open WebUI 0.12.4 answers with, built from our rows."""

from __future__ import annotations

from typing import Any

from rag_pipeline.server.auth import user_summary
from rag_pipeline.server.db import COMPLETED, FileRecord, Knowledge, User


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
        # Open WebUI's name for a file's collection; the server maps it back (search.py).
        meta["collection_name"] = f"file-{record.id}"
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
