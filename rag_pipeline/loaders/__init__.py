"""Turn files of many formats into ``Document`` objects: one entry point, a loader per family."""

from __future__ import annotations

import importlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from rag_pipeline.errors import LoaderError
from rag_pipeline.loaders.ocr import OcrConfig
from rag_pipeline.loaders.pages import Extraction, PageRef, merge_pages, read_page, read_pages
from rag_pipeline.types import Document

__all__ = [
    "MEDIA_TYPES",
    "PAGED_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "Extraction",
    "LoadLimits",
    "OcrConfig",
    "PageRef",
    "extract",
    "finish",
    "is_supported",
    "load_file",
    "read_page",
    "read_pages",
]

# suffix -> (module in this package, function in it, MIME type)
_LOADERS: dict[str, tuple[str, str, str]] = {
    ".txt": ("text", "load_text", "text/plain"),
    ".text": ("text", "load_text", "text/plain"),
    ".csv": ("text", "load_text", "text/csv"),
    ".tsv": ("text", "load_text", "text/tab-separated-values"),
    ".json": ("text", "load_text", "application/json"),
    ".jsonl": ("text", "load_text", "application/jsonl"),
    ".md": ("markdown", "load_markdown", "text/markdown"),
    ".markdown": ("markdown", "load_markdown", "text/markdown"),
    ".html": ("html", "load_html", "text/html"),
    ".htm": ("html", "load_html", "text/html"),
    ".pdf": ("pdf", "load_pdf", "application/pdf"),
    ".docx": (
        "office",
        "load_docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ".pptx": (
        "office",
        "load_pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ".xlsx": (
        "office",
        "load_xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ".odt": ("office", "load_odt", "application/vnd.oasis.opendocument.text"),
    ".rtf": ("office", "load_rtf", "application/rtf"),
    ".eml": ("email", "load_eml", "message/rfc822"),
    ".msg": ("email", "load_msg", "application/vnd.ms-outlook"),
    ".epub": ("epub", "load_epub", "application/epub+zip"),
    ".png": ("image", "load_image", "image/png"),
    ".jpg": ("image", "load_image", "image/jpeg"),
    ".jpeg": ("image", "load_image", "image/jpeg"),
    ".tif": ("image", "load_image", "image/tiff"),
    ".tiff": ("image", "load_image", "image/tiff"),
    ".bmp": ("image", "load_image", "image/bmp"),
    ".webp": ("image", "load_image", "image/webp"),
    ".gif": ("image", "load_image", "image/gif"),
    ".heic": ("image", "load_image", "image/heic"),
    ".heif": ("image", "load_image", "image/heif"),
}
# Loaders that read page by page: they take the OCR settings and return an Extraction
# (text-layer pages, and pages left to OCR); the others return Documents.
_PAGED = {"pdf", "image"}
# Suffixes of files that may have pages to OCR.
PAGED_SUFFIXES: frozenset[str] = frozenset(k for k, v in _LOADERS.items() if v[0] in _PAGED)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_LOADERS)
# suffix -> the MIME type its loader reads (the Documents' ``content_type``).
MEDIA_TYPES: dict[str, str] = {suffix: entry[2] for suffix, entry in _LOADERS.items()}
# Formats that are zip archives: their parts are checked before anything is decompressed.
_ZIPPED = {".docx", ".pptx", ".xlsx", ".odt", ".epub"}
# Defaults for the limits below (settings: RAG_MAX_EXTRACTED_CHARS, RAG_MAX_UNZIPPED_BYTES).
MAX_EXTRACTED_CHARS = 5_000_000
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
_NOTHING_READ = "OCR read nothing on its pages (a photo or drawing without text?)"


@dataclass(frozen=True, slots=True)
class LoadLimits:
    """What one file may cost: bytes on disk, bytes once unzipped, characters of text,
    and how (and how far) its pages without text are OCR'd."""

    max_bytes: int | None = None
    max_chars: int | None = MAX_EXTRACTED_CHARS
    max_unzipped_bytes: int | None = MAX_UNZIPPED_BYTES
    ocr: OcrConfig = field(default_factory=OcrConfig)


def is_supported(path: str | os.PathLike[str]) -> bool:
    """Return whether ``load_file`` has a loader for this path's suffix."""
    # A Path's suffix needs no new Path (a re-run asks this of every file in a folder).
    suffix = path.suffix if isinstance(path, PurePath) else PurePath(path).suffix
    return suffix.lower() in SUPPORTED_SUFFIXES


def load_file(
    path: str | os.PathLike[str],
    *,
    source: str | None = None,
    max_bytes: int | None = None,
    limits: LoadLimits | None = None,
    threads: int = 1,
) -> list[Document]:
    """Extract the text of one file as one or more Documents (PDFs and images: one per page
    with text, OCR'd here, ``threads`` pages at once, where a page has no text layer).

    ``limits`` (default: ``LoadLimits(max_bytes=max_bytes)``) bound what a file may cost;
    past one it is a LoaderError, raised before the costly part where it can be.
    """
    limits = limits or LoadLimits(max_bytes=max_bytes)
    extraction = extract(path, source=source, limits=limits)
    return finish(extraction, read_pages(extraction.pages, limits.ocr, threads), limits)


def extract(
    path: str | os.PathLike[str], *, source: str | None = None, limits: LoadLimits | None = None
) -> Extraction:
    """The first, cheap part of ``load_file``: checks, text layers, and the pages to OCR.

    ``read_page`` each of ``pages`` (anywhere: they are independent), then ``finish``.
    """
    from rag_pipeline.loaders._signature import check_signature

    limits = limits or LoadLimits()
    max_bytes = limits.max_bytes
    path = Path(path)
    source = str(path) if source is None else source
    suffix = path.suffix.lower()
    if suffix not in _LOADERS:
        raise LoaderError(source, f"unsupported file type {suffix or '(no suffix)'}")
    module_name, function_name, content_type = _LOADERS[suffix]
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise LoaderError(source, "file not found") from None
    except OSError as exc:
        raise LoaderError(source, f"cannot read file: {exc.strerror or exc}") from None
    if not path.is_file():
        raise LoaderError(source, "not a regular file")
    if size == 0:
        raise LoaderError(source, "empty file")
    if max_bytes is not None and size > max_bytes:
        raise LoaderError(source, f"file too large: {size} bytes > limit {max_bytes}")

    try:
        check_signature(path, suffix, source)
        if suffix in _ZIPPED and limits.max_unzipped_bytes is not None:
            _check_unzipped_size(path, source, limits.max_unzipped_bytes)
        module = importlib.import_module(f"rag_pipeline.loaders.{module_name}")
        if module_name in _PAGED:
            extraction: Extraction = getattr(module, function_name)(path, source, limits.ocr)
        else:
            extraction = Extraction(tuple(getattr(module, function_name)(path, source)))
    except LoaderError:
        raise
    except OSError as exc:
        raise LoaderError(source, f"cannot read file: {exc.strerror or exc}") from exc
    except Exception as exc:  # the one place library errors become ours
        detail = _exception_detail(exc, path)
        raise LoaderError(source, f"corrupt or unreadable {suffix[1:]}: {detail}") from exc
    base = {"source": source, "stem": path.stem, "content_type": content_type}
    return Extraction(extraction.documents, extraction.pages, extraction.title, base)


def finish(
    extraction: Extraction, read: list[Document | None], limits: LoadLimits | None = None
) -> list[Document]:
    """The file's Documents from an ``extract`` and its OCR'd pages (``read``, any order).

    Raises LoaderError when the file yields no text or more than the limit.
    """
    limits = limits or LoadLimits()
    base = extraction.base
    source = base["source"]
    documents = [doc for doc in merge_pages(extraction, read) if doc.text.strip()]
    if not documents:
        if extraction.pages:
            raise LoaderError(source, f"no text found: {_NOTHING_READ}")
        if base["content_type"] == "application/pdf":
            if limits.ocr.mode == "off":
                raise LoaderError(source, "no extractable text, and OCR is off (RAG_OCR=off)")
            raise LoaderError(source, "no extractable text (no text layer and no images)")
        raise LoaderError(source, "no extractable text")
    chars = sum(len(doc.text) for doc in documents)
    if limits.max_chars is not None and chars > limits.max_chars:
        # A small file can hold a great deal of text (a 49 KB docx held 2 MB): it would
        # take the embedder minutes while everyone else's files wait.
        raise LoaderError(source, f"too much text: {chars} characters > limit {limits.max_chars}")
    return [
        _with_base_metadata(doc, source, base["stem"], base["content_type"]) for doc in documents
    ]


def _check_unzipped_size(path: Path, source: str, limit: int) -> None:
    """Refuse an archive whose parts add up to more than ``limit`` bytes once unzipped.

    The sizes come from the archive's directory, read without decompressing anything;
    Python's zipfile (which every loader of these formats uses) never inflates a part
    past its recorded size, so a part that lies about its size cannot get past this.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise LoaderError(source, f"corrupt or unreadable archive: {exc}") from exc
    if total > limit:
        raise LoaderError(
            source, f"expands to {total} bytes once unzipped > limit {limit} (a zip bomb?)"
        )


def _exception_detail(exc: Exception, path: Path) -> str:
    """Return the first line of a library error, without the path the caller already has."""
    message = str(exc).replace(f"'{path}'", "").replace(str(path), "").strip(" :")
    return message.splitlines()[0].strip(" :") if message else type(exc).__name__


def _with_base_metadata(doc: Document, source: str, stem: str, content_type: str) -> Document:
    """Return ``doc`` with ``source``, ``title`` and ``content_type`` filled in."""
    title = doc.metadata.get("title") or stem
    metadata = {"source": source, "title": title, "content_type": content_type}
    metadata.update((key, value) for key, value in doc.metadata.items() if key not in metadata)
    return Document(text=doc.text, metadata=metadata, markdown=doc.markdown)
