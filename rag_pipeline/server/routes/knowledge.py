"""``/api/v1/knowledge``: knowledge bases and the files in them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from rag_pipeline.server.auth import CurrentUser, user_summary
from rag_pipeline.server.paging import KNOWLEDGE_FILES_PAGE, LimitParam, PageParam, window
from rag_pipeline.server.services import KnowledgeBases
from rag_pipeline.server.services.knowledge import ManifestEntry
from rag_pipeline.server.shapes import (
    knowledge_file_item,
    knowledge_object,
    knowledge_with_files,
)

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])


class KnowledgeForm(BaseModel):
    """Body of ``POST /create``."""

    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    meta: dict[str, Any] | None = None


class FileIdForm(BaseModel):
    """Body of ``POST /{id}/file/add`` and ``/file/remove``."""

    file_id: str
    # Ours: the folder inside the knowledge base (what sync manifests call ``path``).
    path: str = Field("", max_length=1024)


class ManifestForm(BaseModel):
    """One local file in a sync manifest."""

    filename: str = Field(min_length=1, max_length=512)
    path: str = Field("", max_length=1024)
    checksum: str = Field(min_length=1, max_length=128)
    size: int = Field(ge=0)


class SyncDiffForm(BaseModel):
    """Body of ``POST /{id}/sync/diff``."""

    manifest: list[ManifestForm]


class SyncCleanupForm(BaseModel):
    """Body of ``POST /{id}/sync/cleanup`` (directories are paths here: ``dir_ids`` unused)."""

    file_ids: list[str]
    dir_ids: list[str] = []


@router.post("/create")
def create_knowledge(
    user: CurrentUser, knowledge: KnowledgeBases, form: KnowledgeForm
) -> dict[str, Any]:
    """Create an empty knowledge base."""
    return knowledge_object(knowledge.create(user, form.name, form.description, form.meta))


@router.get("/")
def list_knowledge(user: CurrentUser, knowledge: KnowledgeBases) -> dict[str, Any]:
    """The knowledge bases this user may see, with file counts."""
    items = []
    for row, owner, count in knowledge.list(user):
        body = knowledge_object(row)
        body.pop("files")
        body["user"] = user_summary(owner) if owner else None
        body["file_count"] = count
        body["write_access"] = True
        items.append(body)
    return {"items": items, "total": len(items)}


@router.get("/{knowledge_id}")
def get_knowledge(
    user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str
) -> dict[str, Any]:
    """One knowledge base."""
    body = knowledge_object(knowledge.get(user, knowledge_id))
    body["write_access"] = True
    return body


@router.get("/{knowledge_id}/files")
def knowledge_files(
    user: CurrentUser,
    knowledge: KnowledgeBases,
    knowledge_id: str,
    page: PageParam = None,
    limit: LimitParam = None,
) -> dict[str, Any]:
    """The files of a knowledge base, newest first, with their processing status (paged
    as Open WebUI pages it, 30 a page, when ``page`` or ``limit`` is given)."""
    skip, size = window(page, limit, KNOWLEDGE_FILES_PAGE)
    _, files, total = knowledge.files(user, knowledge_id, skip=skip, limit=size)
    items = [knowledge_file_item(record, knowledge_id, owner) for record, owner in files]
    return {"items": items, "directories": [], "breadcrumbs": [], "total": total}


@router.post("/{knowledge_id}/file/add")
def add_file(
    user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str, form: FileIdForm
) -> dict[str, Any]:
    """Add a file: its stored vectors are copied now, or when its processing completes."""
    knowledge.add(user, knowledge_id, [(form.file_id, form.path)])
    return knowledge_with_files(*knowledge.with_files(user, knowledge_id))


@router.post("/{knowledge_id}/files/batch/add")
def add_files(
    user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str, forms: list[FileIdForm]
) -> dict[str, Any]:
    """Add several files at once: all are checked, then all are added (or none is)."""
    knowledge.add(user, knowledge_id, [(form.file_id, form.path) for form in forms])
    return knowledge_with_files(*knowledge.with_files(user, knowledge_id))


@router.post("/{knowledge_id}/update")
def update_knowledge(
    user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str, form: KnowledgeForm
) -> dict[str, Any]:
    """Rename a knowledge base or change its description and meta."""
    knowledge.update(user, knowledge_id, form.name, form.description, form.meta)
    return knowledge_with_files(*knowledge.with_files(user, knowledge_id))


@router.post("/{knowledge_id}/reset")
def reset_knowledge(
    user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str
) -> dict[str, Any]:
    """Take every file out of a knowledge base and empty its collection."""
    knowledge.reset(user, knowledge_id)
    return knowledge_with_files(*knowledge.with_files(user, knowledge_id))


@router.post("/{knowledge_id}/file/remove")
def remove_file(
    user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str, form: FileIdForm
) -> dict[str, Any]:
    """Take a file out of a knowledge base (the file itself stays)."""
    knowledge.remove(user, knowledge_id, form.file_id)
    return knowledge_with_files(*knowledge.with_files(user, knowledge_id))


@router.delete("/{knowledge_id}/delete")
def delete_knowledge(user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str) -> bool:
    """Delete a knowledge base and its collection; its files stay."""
    knowledge.delete(user, knowledge_id)
    return True


@router.post("/{knowledge_id}/sync/diff")
def sync_diff(
    user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str, form: SyncDiffForm
) -> dict[str, Any]:
    """Which files of a local manifest to upload (added, modified) and to remove (deleted)."""
    manifest = [
        ManifestEntry(e.filename, e.path.strip("/"), e.checksum.lower(), e.size)
        for e in form.manifest
    ]
    return knowledge.sync_diff(user, knowledge_id, manifest)


@router.post("/{knowledge_id}/sync/cleanup")
def sync_cleanup(
    user: CurrentUser, knowledge: KnowledgeBases, knowledge_id: str, form: SyncCleanupForm
) -> dict[str, bool]:
    """Remove stale files (after a sync uploaded their replacements)."""
    knowledge.sync_cleanup(user, knowledge_id, form.file_ids)
    return {"status": True}
