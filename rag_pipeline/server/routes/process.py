"""``PUT /process``: Open WebUI's external document loader protocol, served by our loaders.

Set Open WebUI's ``CONTENT_EXTRACTION_ENGINE=external``, ``EXTERNAL_DOCUMENT_LOADER_URL``
to this server and ``EXTERNAL_DOCUMENT_LOADER_API_KEY`` to a user's ``sk-`` key (or a
session token). The request guard has checked the token and caps the body at the file
limit before this route reads a byte of it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from rag_pipeline.server.auth import CurrentUser
from rag_pipeline.server.services import Extractor

router = APIRouter(tags=["extraction"])


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
    extractor: Extractor,
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
    headers = request.headers
    return await extractor.process(
        x_filename, headers.get("content-type"), headers.get("content-length"), request.stream()
    )
