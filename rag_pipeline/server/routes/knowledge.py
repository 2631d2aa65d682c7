"""``/api/v1/knowledge``: knowledge bases and the files in them."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, defer

from rag_pipeline.server.auth import CurrentUser, user_summary
from rag_pipeline.server.db import FileRecord, Knowledge, KnowledgeFile, User, now
from rag_pipeline.server.ownership import owned_file, owned_knowledge, visible
from rag_pipeline.server.shapes import knowledge_file_entry, knowledge_file_item, knowledge_object

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])


class KnowledgeForm(BaseModel):
    """Body of ``POST /create``."""

    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    meta: dict[str, Any] | None = None


class FileIdForm(BaseModel):
    """Body of ``POST /{id}/file/add`` and ``/file/remove``."""

    file_id: str


def _files_of(session: Session, knowledge_id: str) -> list[FileRecord]:
    return list(
        session.scalars(
            select(FileRecord)
            # Listings never show the text: loading it made every add read every file's.
            .options(defer(FileRecord.content))
            .join(KnowledgeFile, KnowledgeFile.file_id == FileRecord.id)
            .where(KnowledgeFile.knowledge_id == knowledge_id)
            .order_by(KnowledgeFile.created_at.desc(), FileRecord.id)
        )
    )


def _with_files(session: Session, knowledge: Knowledge) -> dict[str, Any]:
    files = [knowledge_file_entry(f, knowledge.id) for f in _files_of(session, knowledge.id)]
    body = knowledge_object(knowledge, files=files)
    body["write_access"] = False
    return body


@router.post("/create")
def create_knowledge(request: Request, user: CurrentUser, form: KnowledgeForm) -> dict[str, Any]:
    """Create an empty knowledge base."""
    with request.app.state.db.session() as session:
        knowledge = Knowledge(
            id=str(uuid.uuid4()),
            user_id=user.id,
            name=form.name,
            description=form.description,
            meta=form.meta,
        )
        session.add(knowledge)
        session.flush()
        return knowledge_object(knowledge)


@router.get("/")
def list_knowledge(request: Request, user: CurrentUser) -> dict[str, Any]:
    """The knowledge bases this user may see, with file counts."""
    with request.app.state.db.session() as session:
        counts = dict(
            session.execute(
                select(KnowledgeFile.knowledge_id, func.count()).group_by(
                    KnowledgeFile.knowledge_id
                )
            ).all()
        )
        query = visible(select(Knowledge), Knowledge, user).order_by(
            Knowledge.updated_at.desc(), Knowledge.id
        )
        items = []
        for knowledge in session.scalars(query):
            owner = session.get(User, knowledge.user_id)
            body = knowledge_object(knowledge)
            body.pop("files")
            body["user"] = user_summary(owner) if owner else None
            body["file_count"] = counts.get(knowledge.id, 0)
            body["write_access"] = True
            items.append(body)
    return {"items": items, "total": len(items)}


@router.get("/{knowledge_id}")
def get_knowledge(request: Request, user: CurrentUser, knowledge_id: str) -> dict[str, Any]:
    """One knowledge base."""
    with request.app.state.db.session() as session:
        body = knowledge_object(owned_knowledge(session, user, knowledge_id))
    body["write_access"] = True
    return body


@router.get("/{knowledge_id}/files")
def knowledge_files(request: Request, user: CurrentUser, knowledge_id: str) -> dict[str, Any]:
    """The files of a knowledge base, with their processing status."""
    with request.app.state.db.session() as session:
        owned_knowledge(session, user, knowledge_id)
        items = []
        for record in _files_of(session, knowledge_id):
            owner = session.get(User, record.user_id)
            assert owner is not None
            items.append(knowledge_file_item(record, knowledge_id, owner))
    return {"items": items, "directories": [], "breadcrumbs": [], "total": len(items)}


@router.post("/{knowledge_id}/file/add")
def add_file(
    request: Request, user: CurrentUser, knowledge_id: str, form: FileIdForm
) -> dict[str, Any]:
    """Add a file: its stored vectors are copied now, or when its processing completes."""
    state = request.app.state
    with state.db.session() as session:
        owned_knowledge(session, user, knowledge_id)
        record = owned_file(session, user, form.file_id)
        if record.status == "failed":
            raise HTTPException(400, f"File {record.filename} failed to process: {record.error}")
    state.processor.link(knowledge_id, form.file_id)
    with state.db.session() as session:
        knowledge = owned_knowledge(session, user, knowledge_id)
        knowledge.updated_at = now()
        return _with_files(session, knowledge)


@router.post("/{knowledge_id}/files/batch/add")
def add_files(
    request: Request, user: CurrentUser, knowledge_id: str, forms: list[FileIdForm]
) -> dict[str, Any]:
    """Add several files at once; all are checked before any is added."""
    state = request.app.state
    with state.db.session() as session:
        owned_knowledge(session, user, knowledge_id)
        for form in forms:
            record = owned_file(session, user, form.file_id)
            if record.status == "failed":
                raise HTTPException(
                    400, f"File {record.filename} failed to process: {record.error}"
                )
    for form in forms:
        state.processor.link(knowledge_id, form.file_id)
    with state.db.session() as session:
        knowledge = owned_knowledge(session, user, knowledge_id)
        knowledge.updated_at = now()
        return _with_files(session, knowledge)


@router.post("/{knowledge_id}/update")
def update_knowledge(
    request: Request, user: CurrentUser, knowledge_id: str, form: KnowledgeForm
) -> dict[str, Any]:
    """Rename a knowledge base or change its description and meta."""
    with request.app.state.db.session() as session:
        knowledge = owned_knowledge(session, user, knowledge_id)
        knowledge.name = form.name
        knowledge.description = form.description
        if form.meta is not None:
            knowledge.meta = form.meta
        knowledge.updated_at = now()
        session.flush()
        return _with_files(session, knowledge)


@router.post("/{knowledge_id}/reset")
def reset_knowledge(request: Request, user: CurrentUser, knowledge_id: str) -> dict[str, Any]:
    """Take every file out of a knowledge base and empty its collection."""
    state = request.app.state
    # One lock for rows and collection, so a concurrent file/add cannot land in between.
    with state.processor.link_lock, state.db.session() as session:
        owned_knowledge(session, user, knowledge_id)
        session.execute(delete(KnowledgeFile).where(KnowledgeFile.knowledge_id == knowledge_id))
        state.pipeline.store.delete_collection(knowledge_id)
    with state.db.session() as session:
        knowledge = owned_knowledge(session, user, knowledge_id)
        knowledge.updated_at = now()
        return _with_files(session, knowledge)


@router.post("/{knowledge_id}/file/remove")
def remove_file(
    request: Request, user: CurrentUser, knowledge_id: str, form: FileIdForm
) -> dict[str, Any]:
    """Take a file out of a knowledge base (the file itself stays)."""
    state = request.app.state
    with state.db.session() as session:
        owned_knowledge(session, user, knowledge_id)
        owned_file(session, user, form.file_id)
    state.processor.unlink(knowledge_id, form.file_id)
    with state.db.session() as session:
        return _with_files(session, owned_knowledge(session, user, knowledge_id))


@router.delete("/{knowledge_id}/delete")
def delete_knowledge(request: Request, user: CurrentUser, knowledge_id: str) -> bool:
    """Delete a knowledge base and its collection; its files stay."""
    state = request.app.state
    with state.processor.link_lock, state.db.session() as session:
        session.delete(owned_knowledge(session, user, knowledge_id))
    state.pipeline.store.delete_collection(knowledge_id)
    return True
