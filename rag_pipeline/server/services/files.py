"""What happens to an uploaded file: stored, queued, processed, read, and deleted everywhere."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import defer

from rag_pipeline.errors import NotFoundError, TooLargeError
from rag_pipeline.server.db import FAILED, PENDING, PROCESSING, Database, FileRecord
from rag_pipeline.server.db import User as UserRow
from rag_pipeline.server.jobs import JobQueue
from rag_pipeline.server.ownership import owned_file, visible
from rag_pipeline.server.services.knowledge import KnowledgeService
from rag_pipeline.server.services.processing import FileProcessor
from rag_pipeline.server.settings import ServerSettings

_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+")
_BLOCK = 1 << 20


# File systems cap a name at 255 bytes, not characters: 90 CJK characters are 270.
_MAX_NAME_BYTES = 200


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` within ``max_bytes`` of UTF-8, whole characters only."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


def safe_filename(name: str | None) -> str:
    """Return a file name that cannot escape its folder, at most 200 bytes, keeping the suffix."""
    base = Path((name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).strip(" .") or "file"
    if len(base.encode("utf-8")) > _MAX_NAME_BYTES:
        stem, dot, suffix = base.rpartition(".")
        if dot and len(suffix.encode("utf-8")) < 32:
            base = _cut(stem, _MAX_NAME_BYTES - len(suffix.encode("utf-8")) - 1) + dot + suffix
        else:
            base = _cut(base, _MAX_NAME_BYTES)
    return base


class FileService:
    """Uploads: kept on disk and in the database, queued for the processor (or processed at
    once), deleted with their vectors everywhere (by the knowledge service)."""

    def __init__(
        self,
        database: Database,
        settings: ServerSettings,
        processor: FileProcessor,
        queue: JobQueue,
        knowledge: KnowledgeService,
    ) -> None:
        self.db = database
        self.settings = settings
        self.processor = processor
        self.queue = queue
        self.knowledge = knowledge

    def upload(
        self,
        user: UserRow,
        name: str | None,
        stream: BinaryIO,
        content_type: str | None,
        *,
        process: bool = True,
        in_background: bool = True,
    ) -> FileRecord:
        """Store an upload (hashed while written) and queue it, or process it now."""
        limit = self.settings.max_file_bytes
        file_id = str(uuid.uuid4())
        filename = safe_filename(name)
        folder = self.settings.upload_dir / file_id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / filename
        digest = hashlib.sha256()
        size = 0
        with target.open("wb") as out:
            while block := stream.read(_BLOCK):
                size += len(block)
                if size > limit:
                    out.close()
                    shutil.rmtree(folder, ignore_errors=True)
                    raise TooLargeError(f"File too large: the limit is {limit} bytes")
                digest.update(block)
                out.write(block)
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        inline = process and not in_background
        record = FileRecord(
            id=file_id,
            user_id=user.id,
            filename=filename,
            path=str(target.resolve()),
            content_type=content_type,
            size=size,
            file_hash=digest.hexdigest(),
            status=PROCESSING if inline else PENDING,
        )
        if not process:
            record.status, record.error = FAILED, "not processed (process=false)"
        with self.db.session() as session:
            session.add(record)
        if inline:
            self.processor.process(file_id)
            with self.db.session() as session:
                record = session.get(FileRecord, file_id) or record
        elif process:
            self.queue.wake()
        return record

    def list(
        self, user: UserRow, *, content: bool = True, skip: int = 0, limit: int | None = None
    ) -> tuple[list[FileRecord], int]:
        """The files this user may see, newest first (``limit`` of them from ``skip``; all
        by default; ``content=False``: text not loaded), and how many there are in all."""
        query = visible(select(FileRecord), FileRecord, user)
        counted = select(func.count()).select_from(query.subquery())
        query = query.order_by(FileRecord.created_at.desc(), FileRecord.id)
        if not content:
            query = query.options(defer(FileRecord.content, raiseload=True))
        with self.db.session() as session:
            records = list(session.scalars(query.offset(skip).limit(limit)))
            return records, int(session.scalar(counted) or 0)

    def get(self, user: UserRow, file_id: str) -> FileRecord:
        """One file this user may see; NotFoundError otherwise."""
        with self.db.session() as session:
            return owned_file(session, user, file_id)

    def original(self, user: UserRow, file_id: str) -> FileRecord:
        """A file whose uploaded original is still on disk."""
        record = self.get(user, file_id)
        if not Path(record.path).is_file():
            raise NotFoundError("File not found")
        return record

    def status(self, file_id: str) -> dict[str, Any] | None:
        """The processing state of a file (no permission check: for a stream already checked)."""
        with self.db.session() as session:
            record = session.get(FileRecord, file_id)
            return status_body(record) if record is not None else None

    def delete(self, user: UserRow, file_id: str) -> None:
        """Delete a file, its original, and its vectors in the uploads and every knowledge base."""
        with self.db.session() as session:
            owned_file(session, user, file_id)
        self.knowledge.delete_file(file_id)

    def remove_orphans(self, min_age_seconds: float = 600.0) -> list[str]:
        """Delete upload folders that no file row names (an upload cut off by a crash).

        Only folders older than ``min_age_seconds``: a younger one may be an upload that
        another server process on the same data dir is still receiving.
        """
        root = self.settings.upload_dir
        if not root.is_dir():
            return []
        with self.db.session() as session:
            known = set(session.scalars(select(FileRecord.id)))
        now = time.time()
        removed = []
        for folder in root.iterdir():
            if folder.name in known or not folder.is_dir():
                continue
            if now - folder.stat().st_mtime < min_age_seconds:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        return removed


def status_body(record: FileRecord) -> dict[str, Any]:
    """A file's processing state as ``/process/status`` answers it."""
    body: dict[str, Any] = {"status": record.status}
    if record.status == FAILED:
        body["error"] = record.error
    return body
