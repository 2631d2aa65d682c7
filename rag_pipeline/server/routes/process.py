"""``PUT /process``: Open WebUI's external document loader protocol, served by our loaders.

Set Open WebUI's ``CONTENT_EXTRACTION_ENGINE=external``, ``EXTERNAL_DOCUMENT_LOADER_URL``
to this server and ``EXTERNAL_DOCUMENT_LOADER_API_KEY`` to a user's ``sk-`` key (or a
session token). The request guard has checked the token and caps the body at the file
limit before this route reads a byte of it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from rag_pipeline.errors import TooLargeError
from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.services import extraction

router = APIRouter(tags=["extraction"])

# Bytes gathered before a write to the temporary file (done off the event loop).
_FLUSH_BYTES = 1 << 20

# Any media type is accepted (the file's own); text/plain is listed too, so that
# schema-driven clients also send bodies we read, not only bytes of no known type.
_BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file's raw bytes; Content-Type is its MIME type.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


class ExtractedDocument(BaseModel):
    """One document of the answer, as LangChain's ``Document(page_content, metadata)``."""

    page_content: str
    metadata: dict[str, Any]


@router.put(
    "/process",
    response_model=list[ExtractedDocument],
    openapi_extra=_BINARY_BODY,
    responses={
        415: {
            "description": "Neither X-Filename nor Content-Type names a format we read",
            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
        }
    },
)
async def process_document(
    request: Request,
    user: CurrentUser,  # any signed-in user: its key is EXTERNAL_DOCUMENT_LOADER_API_KEY
    x_filename: Annotated[
        str | None,
        Header(
            alias="X-Filename",
            description="The URL-quoted file name (Open WebUI sends its stored file's).",
        ),
    ] = None,
) -> list[dict[str, Any]]:
    """Extract a file's text: one object per document our loaders make of it (a PDF: one
    per page with text, ``page`` counted from 0 as Open WebUI's own PDF loader does).

    A file we cannot read answers 400 with the reason, an unknown type 415 (before the
    body is read), a body past the file limit 413.
    """
    target = extraction.target(x_filename, request.headers.get("content-type"))
    settings = request.app.state.settings
    limit = settings.max_file_bytes
    too_large = TooLargeError(f"{target.name}: file too large: the limit is {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large

    folder = Path(await run_in_threadpool(tempfile.mkdtemp, prefix="rag-process-"))
    try:
        path = folder / target.disk_name
        with path.open("wb") as out:
            size = 0
            pending = bytearray()
            try:
                async for block in request.stream():
                    size += len(block)
                    if size > limit:
                        raise too_large
                    pending += block
                    if len(pending) >= _FLUSH_BYTES:
                        await run_in_threadpool(out.write, bytes(pending))
                        pending.clear()
            except ClientDisconnect:
                raise HTTPException(400, "the client went away before the body ended") from None
            if pending:
                await run_in_threadpool(out.write, bytes(pending))
        return await run_in_threadpool(
            extraction.extract, path, target.name, settings.load_limits()
        )
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)
