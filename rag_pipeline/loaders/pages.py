"""Files read page by page: what a loader found in text layers, and the pages left to OCR.

A page to OCR is a small description (file, page number), so the pages of one scan can be
read by different worker processes at once, each rendering only its own page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rag_pipeline.errors import LoaderError, RagError
from rag_pipeline.types import Document

if TYPE_CHECKING:
    from rag_pipeline.loaders.ocr import OcrConfig


@dataclass(frozen=True, slots=True)
class PageRef:
    """One page to OCR: a PDF page or an image frame, numbered from 1."""

    path: Path
    source: str
    kind: str  # "pdf" or "image"
    number: int


@dataclass(frozen=True, slots=True)
class Extraction:
    """A file's text so far: Documents from text layers, and the pages still to OCR."""

    documents: tuple[Document, ...]
    pages: tuple[PageRef, ...] = ()
    title: str = ""
    # Filled in by ``extract``: the file's ``source``, ``stem`` and ``content_type``.
    base: dict[str, str] = field(default_factory=dict)


def read_page(page: PageRef, ocr: OcrConfig) -> Document | None:
    """OCR one page; None when it holds no text. LoaderError names the file and page."""
    from rag_pipeline.loaders.ocr import engine_for

    try:
        if page.kind == "pdf":
            from rag_pipeline.loaders.pdf import render_pdf_page

            image = render_pdf_page(page, ocr)
        else:
            from rag_pipeline.loaders.image import render_image_page

            image = render_image_page(page, ocr)
        result = engine_for(ocr).read(image, page.source, page.number)
    except RagError:
        raise
    except MemoryError:
        raise LoaderError(page.source, f"page {page.number}: out of memory reading it") from None
    except Exception as exc:  # an image library's error fails this page's file, with why
        raise LoaderError(
            page.source, f"page {page.number}: cannot be read: {type(exc).__name__}: {exc}"
        ) from exc
    if not result.text:
        return None
    metadata = {
        "page": page.number,
        "ocr": True,
        "ocr_confidence": round(result.confidence, 1),
        "ocr_languages": result.languages,
    }
    return Document(text=result.text, metadata=metadata)


def read_pages(
    pages: tuple[PageRef, ...], ocr: OcrConfig, threads: int = 1
) -> list[Document | None]:
    """OCR ``pages``, ``threads`` at a time (Tesseract releases the GIL while it reads), in
    order; the first page that cannot be read raises its LoaderError."""
    if threads <= 1 or len(pages) <= 1:
        return [read_page(page, ocr) for page in pages]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(threads, len(pages)), thread_name_prefix="rag-ocr") as pool:
        return list(pool.map(lambda page: read_page(page, ocr), pages))


def merge_pages(extraction: Extraction, read: list[Document | None]) -> list[Document]:
    """The text-layer pages and the OCR'd pages of one file, in page order."""
    documents = [*extraction.documents, *(doc for doc in read if doc is not None)]
    documents.sort(key=lambda doc: doc.metadata.get("page", 0))
    if extraction.title:
        documents = [
            doc
            if "title" in doc.metadata
            else Document(doc.text, {"title": extraction.title, **doc.metadata}, doc.markdown)
            for doc in documents
        ]
    return documents
