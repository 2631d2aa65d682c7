"""Who may see what: users see their own files and knowledge, admins see everything.

A file or knowledge base whose deletion has begun (state DELETING) is gone for everyone:
the deletion finishes in the background of that request, or at the next start.
"""

from __future__ import annotations

from sqlalchemy import Select
from sqlalchemy.orm import Session

from rag_pipeline.errors import NotFoundError
from rag_pipeline.server.db import DELETING, FileRecord, Knowledge, User


def owned_file(session: Session, user: User, file_id: str) -> FileRecord:
    """Return the file if this user may see it; anything else is 404, never 403."""
    record = session.get(FileRecord, file_id)
    if record is None or record.status == DELETING:
        raise NotFoundError("File not found")
    if record.user_id != user.id and user.role != "admin":
        raise NotFoundError("File not found")
    return record


def owned_knowledge(session: Session, user: User, knowledge_id: str) -> Knowledge:
    """Return the knowledge base if this user may see it; else 404."""
    knowledge = session.get(Knowledge, knowledge_id)
    if knowledge is None or knowledge.state == DELETING:
        raise NotFoundError("Knowledge not found")
    if knowledge.user_id != user.id and user.role != "admin":
        raise NotFoundError("Knowledge not found")
    return knowledge


def visible(query: Select, model: type[FileRecord] | type[Knowledge], user: User) -> Select:
    """Restrict a listing query to what this user may see."""
    live = model.status != DELETING if model is FileRecord else model.state != DELETING
    query = query.where(live)
    return query if user.role == "admin" else query.where(model.user_id == user.id)
