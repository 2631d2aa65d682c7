"""What happens to a knowledge base: created, filled with files (vector copies), reset, deleted."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from rag_pipeline.errors import ConfigError
from rag_pipeline.server.db import FAILED, Database, FileRecord, Knowledge, KnowledgeFile, now
from rag_pipeline.server.db import User as UserRow
from rag_pipeline.server.ownership import owned_file, owned_knowledge, visible
from rag_pipeline.server.processing import FileProcessor


class KnowledgeService:
    """Knowledge bases and their files; the processor copies and removes the vectors."""

    def __init__(self, database: Database, processor: FileProcessor) -> None:
        self.db = database
        self.processor = processor

    def create(
        self, user: UserRow, name: str, description: str, meta: dict[str, Any] | None
    ) -> Knowledge:
        """Create an empty knowledge base."""
        knowledge = Knowledge(
            id=str(uuid.uuid4()), user_id=user.id, name=name, description=description, meta=meta
        )
        with self.db.session() as session:
            session.add(knowledge)
            session.flush()
        return knowledge

    def list(self, user: UserRow) -> list[tuple[Knowledge, UserRow | None, int]]:
        """The knowledge bases this user may see, each with its owner and file count."""
        with self.db.session() as session:
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
            return [
                (k, session.get(UserRow, k.user_id), counts.get(k.id, 0))
                for k in session.scalars(query)
            ]

    def get(self, user: UserRow, knowledge_id: str) -> Knowledge:
        """One knowledge base this user may see; NotFoundError otherwise."""
        with self.db.session() as session:
            return owned_knowledge(session, user, knowledge_id)

    def with_files(self, user: UserRow, knowledge_id: str) -> tuple[Knowledge, list[FileRecord]]:
        """A knowledge base and its files, newest link first."""
        with self.db.session() as session:
            return owned_knowledge(session, user, knowledge_id), _files_of(session, knowledge_id)

    def files(
        self, user: UserRow, knowledge_id: str
    ) -> tuple[Knowledge, list[tuple[FileRecord, UserRow]]]:
        """A knowledge base's files, each with its owner."""
        with self.db.session() as session:
            knowledge = owned_knowledge(session, user, knowledge_id)
            owners: dict[str, UserRow] = {}
            files = []
            for record in _files_of(session, knowledge_id):
                if record.user_id not in owners:
                    owner = session.get(UserRow, record.user_id)
                    assert owner is not None  # files cascade with their user
                    owners[record.user_id] = owner
                files.append((record, owners[record.user_id]))
            return knowledge, files

    def add(self, user: UserRow, knowledge_id: str, file_ids: Sequence[str]) -> None:
        """Add files (all checked first): vectors are copied now, or when processing completes."""
        with self.db.session() as session:
            owned_knowledge(session, user, knowledge_id)
            for file_id in file_ids:
                record = owned_file(session, user, file_id)
                if record.status == FAILED:
                    raise ConfigError(f"File {record.filename} failed to process: {record.error}")
        for file_id in file_ids:
            self.processor.link(knowledge_id, file_id)
        self._touch(knowledge_id)

    def remove(self, user: UserRow, knowledge_id: str, file_id: str) -> None:
        """Take a file out of a knowledge base (the file itself stays)."""
        with self.db.session() as session:
            owned_knowledge(session, user, knowledge_id)
            owned_file(session, user, file_id)
        self.processor.unlink(knowledge_id, file_id)

    def update(
        self,
        user: UserRow,
        knowledge_id: str,
        name: str,
        description: str,
        meta: dict[str, Any] | None,
    ) -> None:
        """Rename a knowledge base or change its description and meta."""
        with self.db.session() as session:
            knowledge = owned_knowledge(session, user, knowledge_id)
            knowledge.name = name
            knowledge.description = description
            if meta is not None:
                knowledge.meta = meta
            knowledge.updated_at = now()

    def reset(self, user: UserRow, knowledge_id: str) -> None:
        """Take every file out of a knowledge base and empty its collection."""
        self.get(user, knowledge_id)
        self.processor.reset_knowledge(knowledge_id)
        self._touch(knowledge_id)

    def delete(self, user: UserRow, knowledge_id: str) -> None:
        """Delete a knowledge base and its collection; its files stay."""
        self.get(user, knowledge_id)
        self.processor.delete_knowledge(knowledge_id)

    def _touch(self, knowledge_id: str) -> None:
        with self.db.session() as session:
            knowledge = session.get(Knowledge, knowledge_id)
            if knowledge is not None:
                knowledge.updated_at = now()


def _files_of(session: Session, knowledge_id: str) -> list[FileRecord]:
    return list(
        session.scalars(
            select(FileRecord)
            # Listings never show the text: loading it made every add read every file's.
            .options(defer(FileRecord.content, raiseload=True))
            .join(KnowledgeFile, KnowledgeFile.file_id == FileRecord.id)
            .where(KnowledgeFile.knowledge_id == knowledge_id)
            .order_by(KnowledgeFile.created_at.desc(), FileRecord.id)
        )
    )
