"""``/api/v1/files``: upload, list, read, follow processing and delete files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse

from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.db import COMPLETED, FAILED
from rag_pipeline.server.paging import FILES_PAGE, LimitParam, PageParam, window
from rag_pipeline.server.services import Files
from rag_pipeline.server.services.files import status_body
from rag_pipeline.server.shapes import file_object, uploaded_file_object

router = APIRouter(prefix="/api/v1/files", tags=["files"])

_STATUS_POLL_SECONDS = 0.25


@router.post("/")
def upload_file(
    user: CurrentUser,
    files: Files,
    file: UploadFile = File(...),
    process: bool = True,
    process_in_background: bool = True,
) -> dict[str, Any]:
    """Store the upload and queue it; with ``process_in_background=false``, process it now."""
    record = files.upload(
        user,
        file.filename,
        file.file,
        file.content_type,
        process=process,
        in_background=process_in_background,
    )
    return uploaded_file_object(record)


@router.get("/")
def list_files(
    user: CurrentUser,
    files: Files,
    content: bool = True,
    page: PageParam = None,
    limit: LimitParam = None,
) -> dict[str, Any]:
    """The files this user may see, newest first (``content=false`` leaves the text out;
    paged as Open WebUI pages it, 50 a page, when ``page`` or ``limit`` is given)."""
    skip, size = window(page, limit, FILES_PAGE)
    records, total = files.list(user, content=content, skip=skip, limit=size)
    items = [file_object(r, content=content, path=False) for r in records]
    return {"items": items, "total": total}


@router.get("/{file_id}")
def get_file(user: CurrentUser, files: Files, file_id: str) -> dict[str, Any]:
    """One file, with ``data.content`` once processed."""
    return file_object(files.get(user, file_id))


@router.get("/{file_id}/data/content")
def get_file_text(user: CurrentUser, files: Files, file_id: str) -> dict[str, Any]:
    """The extracted text of a file."""
    return {"content": files.get(user, file_id).content or ""}


@router.get("/{file_id}/content")
def get_file_original(user: CurrentUser, files: Files, file_id: str) -> FileResponse:
    """The uploaded original."""
    record = files.original(user, file_id)
    return FileResponse(record.path, media_type=record.content_type, filename=record.filename)


@router.get("/{file_id}/process/status", response_model=None)
def file_status(
    request: Request, user: CurrentUser, files: Files, file_id: str, stream: bool = False
) -> dict[str, Any] | StreamingResponse:
    """The processing state; ``stream=true`` sends it as server-sent events until it ends."""
    first = status_body(files.get(user, file_id))
    if not stream:
        return first

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
            body = await run_in_threadpool(files.status, file_id)
        yield f"data: {json.dumps({'status': FAILED, 'error': 'file deleted'})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@router.delete("/{file_id}")
def delete_file(user: CurrentUser, files: Files, file_id: str) -> dict[str, str]:
    """Delete a file, its original and its vectors everywhere."""
    files.delete(user, file_id)
    return {"message": "File deleted successfully"}
