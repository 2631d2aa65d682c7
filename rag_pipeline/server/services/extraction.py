"""Content extraction for Open WebUI's external document loader: bytes in, documents out.

Open WebUI (``CONTENT_EXTRACTION_ENGINE=external``) sends ``PUT {url}/process`` with the
file's bytes as the body, its MIME type as ``Content-Type`` and ``quote(basename)`` of its
stored path as ``X-Filename`` (stored paths are ``{uuid}_{name}``), and reads back
``{"page_content", "metadata"}`` objects. This module decides what a request names and
turns our loaders' Documents into those objects; the route only moves the bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from rag_pipeline.chunking.splitter import markdown_sections
from rag_pipeline.errors import ConfigError, TooLargeError, UnsupportedTypeError
from rag_pipeline.loaders import MEDIA_TYPES, SUPPORTED_SUFFIXES, LoadLimits, load_file
from rag_pipeline.server.services.files import safe_filename
from rag_pipeline.types import Document

# A MIME type -> the suffix our loaders read it by: the loader table's own types, then the
# other spellings clients send for them.
_TYPE_SUFFIX: dict[str, str] = {}
for _suffix, _type in MEDIA_TYPES.items():
    _TYPE_SUFFIX.setdefault(_type, _suffix)
_TYPE_SUFFIX.update(
    {
        "text/plain": ".txt",
        "text/markdown": ".md",
        "text/x-markdown": ".md",
        "text/html": ".html",
        "application/xhtml+xml": ".html",
        "application/x-pdf": ".pdf",
        "text/csv": ".csv",
        "application/csv": ".csv",
        "text/json": ".json",
        "application/x-ndjson": ".jsonl",
        "application/x-jsonlines": ".jsonl",
        "application/jsonl": ".jsonl",
        "text/rtf": ".rtf",
        "application/x-rtf": ".rtf",
        "message/rfc822": ".eml",
        "application/x-outlook-msg": ".msg",
    }
)
# Types that say "some bytes" and nothing about the format.
_UNINFORMATIVE = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# Open WebUI stores an upload as "{uuid4}_{name}" and sends that path's basename.
_STORED_PREFIX = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}_(?=.)", re.IGNORECASE
)
_MAX_HEADER_CHARS = 4096
# The name a file without an X-Filename is reported under.
_UNNAMED = "document"
# Bytes gathered before a write to the temporary file (done off the event loop).
_FLUSH_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Target:
    """What a request names: ``name`` for the answer, ``disk_name`` for the temporary file.

    ``disk_name`` ends with a suffix we have a loader for; its stem is the file's name,
    so a document without a title of its own is titled by the file name, not "tmpab12".
    """

    name: str
    disk_name: str


def media_type(content_type: str | None) -> str:
    """The bare MIME type of a Content-Type header, lower-cased ("" when there is none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


# Content we never read as text, whatever its name: answered 415 at once.
_BINARY_FAMILIES = ("image/", "audio/", "video/", "font/", "model/")
_BINARY_TYPES = frozenset(
    {
        "application/zip",
        "application/gzip",
        "application/x-tar",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/vnd.rar",
        "application/x-bzip2",
        "application/x-xz",
        "application/java-archive",
        "application/x-msdownload",
        "application/vnd.ms-excel",
        "application/msword",
        "application/vnd.ms-powerpoint",
    }
)


def suffix_for_type(content_type: str | None) -> str | None:
    """The loader suffix for a Content-Type, or None where it names no format we read."""
    kind = media_type(content_type)
    if kind in _UNINFORMATIVE:
        return None
    if kind in _TYPE_SUFFIX:
        return _TYPE_SUFFIX[kind]
    guessed = mimetypes.guess_extension(kind, strict=False)
    if guessed and guessed.lower() in SUPPORTED_SUFFIXES:
        return guessed.lower()
    # Open WebUI reads any text/* but HTML as plain text (source code, logs, ini...): so do we.
    if kind.startswith("text/") and "html" not in kind:
        return ".txt"
    return None


def file_name(x_filename: str | None) -> str | None:
    """The file name an ``X-Filename`` header names: URL-unquoted, without Open WebUI's
    storage prefix, made safe; None when the header is absent or blank.

    Raises ConfigError (400) for a header that is not a URL-quoted UTF-8 name.
    """
    if x_filename is None or not x_filename.strip():
        return None
    raw = x_filename.strip()
    if len(raw) > _MAX_HEADER_CHARS:
        raise ConfigError(f"X-Filename is too long ({len(raw)} characters)")
    if not raw.isascii():
        # Starlette reads headers as latin-1; a client that sent the name as raw UTF-8
        # instead of quoting it gets it back as it meant it.
        with contextlib.suppress(UnicodeError):
            raw = raw.encode("latin-1").decode("utf-8")
    try:
        name = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ConfigError(
            f"X-Filename {x_filename[:200]!r} is not a URL-quoted UTF-8 file name"
        ) from None
    name = Path(name.replace("\\", "/")).name
    name = _STORED_PREFIX.sub("", name)
    return safe_filename(name)


def target(x_filename: str | None, content_type: str | None) -> Target:
    """Decide the file's name and the format to read it as.

    The name's suffix wins where we read it; otherwise the Content-Type decides (a
    ``notes.log`` sent as ``text/plain`` is read as text). Raises ConfigError for a bad
    X-Filename and UnsupportedTypeError when neither names a format we read.
    """
    name = file_name(x_filename)
    suffix = Path(name).suffix.lower() if name else ""
    if suffix in SUPPORTED_SUFFIXES:
        assert name is not None
        return Target(name=name, disk_name=name)
    by_type = suffix_for_type(content_type)
    if by_type is not None:
        # A name without a dot is kept as it is; "notes.log" becomes "notes.log.txt" on
        # disk (its stem, the fallback title, stays "notes.log").
        shown = name or _UNNAMED + by_type
        return Target(name=shown, disk_name=safe_filename((name or _UNNAMED) + by_type))
    kind = media_type(content_type) or "none"
    if not kind.startswith(_BINARY_FAMILIES) and kind not in _BINARY_TYPES:
        # What Open WebUI itself reads as text (.yaml, .sql, .ini, .log, no suffix…)
        # arrives as application/octet-stream or an application/* type: read it as text.
        # The text loader looks at the bytes and refuses binary content with a reason.
        shown = name or _UNNAMED
        return Target(name=shown, disk_name=safe_filename(shown + ".txt"))
    what = f"file type {suffix}" if suffix else "file type (no suffix)"
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    raise UnsupportedTypeError(
        f"{name or _UNNAMED}: unsupported {what} and Content-Type {kind}; "
        f"supported suffixes: {supported}"
    )


class ExtractionService:
    """``PUT /process``: a request's body streamed to a temporary file within the file limit,
    read by our loaders, answered as Open WebUI's document objects."""

    def __init__(self, limits: LoadLimits, max_bytes: int) -> None:
        self.limits = limits
        self.max_bytes = max_bytes

    async def process(
        self,
        x_filename: str | None,
        content_type: str | None,
        content_length: str | None,
        body: AsyncIterator[bytes],
    ) -> list[dict[str, Any]]:
        """Name and type checked before a byte is read (415), the size while it streams
        (413), then the file extracted off the event loop (400 when it cannot be read)."""
        named = target(x_filename, content_type)
        limit = self.max_bytes
        too_large = TooLargeError(f"{named.name}: file too large: the limit is {limit} bytes")
        declared = (content_length or "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        folder = Path(await run_in_threadpool(tempfile.mkdtemp, prefix="rag-process-"))
        try:
            path = folder / named.disk_name
            with path.open("wb") as out:
                size = 0
                pending = bytearray()
                try:
                    async for block in body:
                        size += len(block)
                        if size > limit:
                            raise too_large
                        pending += block
                        if len(pending) >= _FLUSH_BYTES:
                            await run_in_threadpool(out.write, bytes(pending))
                            pending.clear()
                except ClientDisconnect:
                    raise ConfigError("the client went away before the body ended") from None
                if pending:
                    await run_in_threadpool(out.write, bytes(pending))
            return await run_in_threadpool(extract, path, named.name, self.limits)
        finally:
            await run_in_threadpool(shutil.rmtree, folder, True)


def extract(path: Path, name: str, limits: LoadLimits) -> list[dict[str, Any]]:
    """Load a file with our loaders and answer Open WebUI's document objects.

    Blocking (parsing a PDF takes a while): run it in a worker thread. Raises LoaderError
    for a file we cannot read.
    """
    # A scan's pages are read by as many threads as there are cores (Open WebUI waits for
    # the answer: its loader sets no timeout).
    documents = load_file(path, source=name, limits=limits, threads=os.cpu_count() or 1)
    answer = []
    for doc in documents:
        item = document_object(doc, name)
        if item["metadata"].get("content_type") != "text/markdown":
            answer.append(item)
            continue
        # One object per section, with the heading path Open WebUI shows in citations
        # (its own markdown loader loses it; its splitter then cuts within a section).
        for text, headings in markdown_sections(item["page_content"]):
            if text.strip():
                metadata = dict(item["metadata"])
                if headings:
                    metadata["heading_path"] = " > ".join(headings)
                answer.append({"page_content": text.strip(), "metadata": metadata})
    return answer


def document_object(doc: Document, name: str) -> dict[str, Any]:
    """One ``{"page_content", "metadata"}`` object of Open WebUI's external loader protocol.

    The metadata is the Document's own (``source``, ``title``, ``content_type``, and what
    the loader adds: ``slide``, ``sheet``, ``subject``...) made JSON-safe, plus ``name``.
    PDF pages (and OCR'd pages of images) follow Open WebUI's own PDF loader (PyPDFLoader):
    ``page`` counts from 0
    (its citation view shows ``page + 1`` and links ``#page=page+1``) and ``page_label``
    is the printed, 1-based number.
    """
    metadata: dict[str, Any] = {str(key): json_safe(value) for key, value in doc.metadata.items()}
    metadata["source"] = name
    metadata["name"] = name
    page = doc.metadata.get("page")
    paged = metadata.get("content_type") == "application/pdf" or "ocr" in metadata
    if paged and _is_int(page) and page >= 1:
        metadata["page"] = page - 1
        metadata["page_label"] = str(page)
    return {"page_content": _clean_text(doc.text), "metadata": metadata}


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON: strings, finite numbers, booleans, null, lists and objects."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return _clean_text(value.decode("utf-8", errors="replace"))
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return _clean_text(str(value))


def _clean_text(text: str) -> str:
    """``text`` that encodes as UTF-8 (a lone surrogate from a broken file would not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")
    return text


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
