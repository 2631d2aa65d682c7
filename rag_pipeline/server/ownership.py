"""Who may see what: users see their own files and knowledge, admins see everything."""

from __future__ import annotations

from sqlalchemy import Select
from sqlalchemy.orm import Session

from rag_pipeline.errors import NotFoundError
from rag_pipeline.server.db import FileRecord, Knowledge, User


def owned_file(session: Session, user: User, file_id: str) -> FileRecord:
    """Return the file if this user may see it; anything else is 404, never 403."""
    record = session.get(FileRecord, file_id)
    if record is None or (record.user_id != user.id and user.role != "admin"):
        raise NotFoundError("File not found")
    return record


def owned_knowledge(session: Session, user: User, knowledge_id: str) -> Knowledge:
    """Return the knowledge base if this user may see it; else 404."""
    knowledge = session.get(Knowledge, knowledge_id)
    if knowledge is None or (knowledge.user_id != user.id and user.role != "admin"):
        raise NotFoundError("Knowledge not found")
    return knowledge


def visible(query: Select, model: type[FileRecord] | type[Knowledge], user: User) -> Select:
    """Restrict a listing query to what this user may see."""
    return query if user.role == "admin" else query.where(model.user_id == user.id)
