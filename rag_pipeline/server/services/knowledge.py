"""What happens to a knowledge base: created, filled with files (vector copies), reset, deleted."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from rag_pipeline.errors import ConfigError
from rag_pipeline.server.db import FAILED, Database, FileRecord, Knowledge, KnowledgeFile, now
from rag_pipeline.server.db import User as UserRow
from rag_pipeline.server.ownership import owned_file, owned_knowledge, visible
from rag_pipeline.server.processing import FileProcessor
from rag_pipeline.server.services.files import FileService


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One local file as a knowledge sync manifest lists it."""

    filename: str  # base name, "readme.md"
    path: str  # folder, "docs/api"; "" for the top
    checksum: str  # SHA-256 of the bytes
    size: int


class KnowledgeService:
    """Knowledge bases and their files; the processor copies and removes the vectors."""

    def __init__(self, database: Database, processor: FileProcessor, files: FileService) -> None:
        self.db = database
        self.processor = processor
        self.file_service = files

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

    def add(
        self, user: UserRow, knowledge_id: str, file_ids: Sequence[str], path: str = ""
    ) -> None:
        """Add files (all checked first) in folder ``path``: vectors are copied now, or when
        processing completes."""
        with self.db.session() as session:
            owned_knowledge(session, user, knowledge_id)
            for file_id in file_ids:
                record = owned_file(session, user, file_id)
                if record.status == FAILED:
                    raise ConfigError(f"File {record.filename} failed to process: {record.error}")
        for file_id in file_ids:
            self.processor.link(knowledge_id, file_id, path)
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

    def sync_diff(
        self, user: UserRow, knowledge_id: str, manifest: Sequence[ManifestEntry]
    ) -> dict[str, Any]:
        """What a client must upload and remove so the knowledge base matches its manifest.

        Keyed by (folder, file name), compared by the SHA-256 of the bytes, as Open WebUI's
        ``sync/diff``. Folders are kept as a path on each file, not as directory objects,
        so ``mkdir``/``rmdir`` are always empty and ``directory_map`` maps nothing.
        """
        with self.db.session() as session:
            owned_knowledge(session, user, knowledge_id)
            rows = session.execute(
                select(FileRecord.id, FileRecord.filename, FileRecord.file_hash, KnowledgeFile.path)
                .join(KnowledgeFile, KnowledgeFile.file_id == FileRecord.id)
                .where(KnowledgeFile.knowledge_id == knowledge_id)
                .order_by(KnowledgeFile.created_at, FileRecord.id)
            ).all()
        stored = {(path, name): (file_id, digest) for file_id, name, digest, path in rows}
        added, modified = [], []
        unmodified = 0
        wanted: set[tuple[str, str]] = set()
        for entry in manifest:
            key = (entry.path, entry.filename)
            wanted.add(key)
            if key not in stored:
                added.append({"filename": entry.filename, "path": entry.path})
            elif stored[key][1] != entry.checksum:
                modified.append(
                    {
                        "filename": entry.filename,
                        "path": entry.path,
                        "stale_file_id": stored[key][0],
                    }
                )
            else:
                unmodified += 1
        deleted = [
            {"file_id": file_id, "filename": key[1]}
            for key, (file_id, _) in stored.items()
            if key not in wanted
        ]
        return {
            "added": added,
            "modified": modified,
            "deleted": deleted,
            "mkdir": [],
            "rmdir": [],
            "unmodified_count": unmodified,
            "directory_map": {},
        }

    def sync_cleanup(self, user: UserRow, knowledge_id: str, file_ids: Sequence[str]) -> None:
        """Take stale files out of a knowledge base; delete those no knowledge base holds.

        Vectors go by file id (twins with the same text keep theirs, see ``unlink``), not
        by content hash as in Open WebUI, where two files with equal text lose each other's.
        """
        self.get(user, knowledge_id)
        for file_id in file_ids:
            with self.db.session() as session:
                link = session.get(KnowledgeFile, (knowledge_id, file_id))
                record = session.get(FileRecord, file_id)
                if link is None or record is None:
                    continue  # only this knowledge base's files are cleaned up
            self.processor.unlink(knowledge_id, file_id)
            with self.db.session() as session:
                elsewhere = session.scalar(
                    select(func.count()).where(KnowledgeFile.file_id == file_id)
                )
            if not elsewhere and (record.user_id == user.id or user.role == "admin"):
                self.file_service.delete(user, file_id)

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
