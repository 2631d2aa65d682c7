"""``/api/v1/files``: upload, list, read, follow processing and delete files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import defer

from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.db import COMPLETED, FAILED, PROCESSING, FileRecord, KnowledgeFile
from rag_pipeline.server.ownership import owned_file, visible
from rag_pipeline.server.shapes import file_object, uploaded_file_object

router = APIRouter(prefix="/api/v1/files", tags=["files"])

_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+")
_BLOCK = 1 << 20
_STATUS_POLL_SECONDS = 0.25


def safe_filename(name: str | None) -> str:
    """Return a file name that cannot escape its folder, keeping the suffix."""
    base = Path((name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).strip(" .") or "file"
    if len(base) > 200:
        stem, dot, suffix = base.rpartition(".")
        base = (stem[: 200 - len(suffix) - 1] + dot + suffix) if dot else base[:200]
    return base


@router.post("/")
def upload_file(
    request: Request,
    user: CurrentUser,
    file: UploadFile = File(...),
    process: bool = True,
    process_in_background: bool = True,
) -> dict[str, Any]:
    """Store the upload and queue it; with ``process_in_background=false``, process it now."""
    state = request.app.state
    limit = state.settings.max_file_bytes
    file_id = str(uuid.uuid4())
    filename = safe_filename(file.filename)
    folder = state.settings.upload_dir / file_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while block := file.file.read(_BLOCK):
            size += len(block)
            if size > limit:
                out.close()
                shutil.rmtree(folder, ignore_errors=True)
                raise HTTPException(413, f"File too large: the limit is {limit} bytes")
            digest.update(block)
            out.write(block)
    content_type = (
        file.content_type
        if file.content_type and file.content_type != "application/octet-stream"
        else mimetypes.guess_type(filename)[0] or "application/octet-stream"
    )
    inline = process and not process_in_background
    record = FileRecord(
        id=file_id,
        user_id=user.id,
        filename=filename,
        path=str(target.resolve()),
        content_type=content_type,
        size=size,
        file_hash=digest.hexdigest(),
        status=PROCESSING if inline else "pending",
    )
    if not process:
        record.status, record.error = FAILED, "not processed (process=false)"
    with state.db.session() as session:
        session.add(record)
    if inline:
        state.processor.process(file_id)
        with state.db.session() as session:
            record = session.get(FileRecord, file_id) or record
    elif process:
        state.worker.wake()
    return uploaded_file_object(record)


@router.get("/")
def list_files(request: Request, user: CurrentUser, content: bool = True) -> dict[str, Any]:
    """Every file this user may see, newest first (``content=false`` leaves the text out)."""
    with request.app.state.db.session() as session:
        query = visible(select(FileRecord), FileRecord, user).order_by(
            FileRecord.created_at.desc(), FileRecord.id
        )
        if not content:
            query = query.options(defer(FileRecord.content))
        items = [file_object(r, content=content, path=False) for r in session.scalars(query)]
    return {"items": items, "total": len(items)}


@router.get("/{file_id}")
def get_file(request: Request, user: CurrentUser, file_id: str) -> dict[str, Any]:
    """One file, with ``data.content`` once processed."""
    with request.app.state.db.session() as session:
        return file_object(owned_file(session, user, file_id))


@router.get("/{file_id}/data/content")
def get_file_text(request: Request, user: CurrentUser, file_id: str) -> dict[str, Any]:
    """The extracted text of a file."""
    with request.app.state.db.session() as session:
        return {"content": owned_file(session, user, file_id).content or ""}


@router.get("/{file_id}/content")
def get_file_original(request: Request, user: CurrentUser, file_id: str) -> FileResponse:
    """The uploaded original."""
    with request.app.state.db.session() as session:
        record = owned_file(session, user, file_id)
    if not Path(record.path).is_file():
        raise HTTPException(404, "File not found")
    return FileResponse(record.path, media_type=record.content_type, filename=record.filename)


def _status_body(record: FileRecord) -> dict[str, Any]:
    body: dict[str, Any] = {"status": record.status}
    if record.status == FAILED:
        body["error"] = record.error
    return body


@router.get("/{file_id}/process/status", response_model=None)
def file_status(
    request: Request, user: CurrentUser, file_id: str, stream: bool = False
) -> dict[str, Any] | StreamingResponse:
    """The processing state; ``stream=true`` sends it as server-sent events until it ends."""
    database = request.app.state.db
    with database.session() as session:
        first = _status_body(owned_file(session, user, file_id))
    if not stream:
        return first

    def read() -> dict[str, Any] | None:
        with database.session() as session:
            record = session.get(FileRecord, file_id)
            return _status_body(record) if record is not None else None

    async def events() -> AsyncIterator[str]:
        body: dict[str, Any] | None = first
        last: dict[str, Any] | None = None
        while body is not None:
            if body != last:
                yield f"data: {json.dumps(body)}\n\n"
                last = body
            if body["status"] in (COMPLETED, FAILED):
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(_STATUS_POLL_SECONDS)
            body = await run_in_threadpool(read)
        yield f"data: {json.dumps({'status': FAILED, 'error': 'file deleted'})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@router.delete("/{file_id}")
def delete_file(request: Request, user: CurrentUser, file_id: str) -> dict[str, str]:
    """Delete a file, its original and its vectors everywhere."""
    state = request.app.state
    with state.db.session() as session:
        record = owned_file(session, user, file_id)
        knowledge_ids = session.scalars(
            select(KnowledgeFile.knowledge_id).where(KnowledgeFile.file_id == file_id)
        ).all()
        path = Path(record.path)
    for knowledge_id in knowledge_ids:
        state.processor.unlink(knowledge_id, file_id)
    with state.processor.link_lock, state.db.session() as session:
        record = session.get(FileRecord, file_id)
        if record is not None:
            session.delete(record)
    state.processor.delete_file_vectors(file_id)
    shutil.rmtree(path.parent, ignore_errors=True)
    return {"message": "File deleted successfully"}
