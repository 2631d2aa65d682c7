"""PDF files through pypdfium2, page by page: the text layer where a page has real text,
OCR where it has none (an image-only page, or a text layer that cannot be the page's)."""

from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from rag_pipeline.errors import LoaderError
from rag_pipeline.loaders.pages import Extraction, PageRef
from rag_pipeline.loaders.text import normalize_newlines
from rag_pipeline.types import Document

if TYPE_CHECKING:
    from PIL import Image

    from rag_pipeline.loaders.ocr import OcrConfig

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Japanese and Chinese put no space between words, so a line wrapped by the PDF layout
# splits a word; the break between two such characters is joined back without a space.
_CJK_CHAR = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff60"
_CJK_LINE_BREAK = re.compile(rf"(?<=[{_CJK_CHAR}])[ \t]*\n[ \t]*(?=[{_CJK_CHAR}])")

# When a page is OCR'd (RAG_OCR=auto), measured on mixed_docs, the scans and a PDF that
# carries its own OCR layer (benchmarks/pdf_pages.py): text pages have 165-4,038 visible
# characters; image-only pages 0 with images over the whole page; the OCR'd PDF 930 over
# a full-page image; a cover with a logo 187 over 26% of the page.
# - fewer than this many characters, over any image: the image holds the page's text;
_FEW_CHARS = 20
# - or an image over at least half the page with fewer than this many characters (a
#   stamped header or page number over a scan);
_MOSTLY_IMAGE, _SOME_CHARS = 0.5, 200
# - or this share of the text is unmapped glyphs (a font without a Unicode map: the layer
#   is not the page's text).
_GARBAGE_SHARE = 0.3
# PDFium is not thread-safe: a server's threads (uploads, `PUT /process`, OCR of pages)
# take turns in it; reading text layers (50 pages in ~0.07 s) and rendering are short.
_PDFIUM_LOCK = threading.Lock()


def load_pdf(path: Path, source: str, ocr: OcrConfig) -> Extraction:
    """The pages with a real text layer as Documents (``page`` from 1), the rest to OCR."""
    with _PDFIUM_LOCK:
        return _load(path, source, ocr)


def _load(path: Path, source: str, ocr: OcrConfig) -> Extraction:
    import pypdfium2 as pdfium

    pdf = _open(path, source)
    try:
        pages = len(pdf)
        if pages > ocr.max_pages:
            raise LoaderError(source, f"too many pages: {pages} > limit {ocr.max_pages}")
        title = (pdf.get_metadata_value("Title") or "").strip()
        documents: list[Document] = []
        to_read: list[PageRef] = []
        for index in range(pages):
            page = pdf[index]
            textpage = page.get_textpage()
            try:
                text = _clean_page_text(textpage.get_text_bounded())
                needs_ocr = ocr.mode == "force" or (
                    ocr.mode == "auto" and page_needs_ocr(text, _image_share(page))
                )
            finally:
                textpage.close()
                page.close()
            if needs_ocr:
                to_read.append(PageRef(path, source, "pdf", index + 1))
            elif text:
                metadata = {"title": title, "page": index + 1} if title else {"page": index + 1}
                documents.append(Document(text=text, metadata=metadata))
        return Extraction(tuple(documents), tuple(to_read), title=title)
    except pdfium.PdfiumError as exc:
        raise LoaderError(source, f"corrupt or unreadable pdf: {_pdfium_reason(exc)}") from exc
    finally:
        pdf.close()


def page_needs_ocr(text: str, image_share: float) -> bool:
    """Whether a page's text layer is not its text (RAG_OCR=auto; thresholds above)."""
    visible = [c for c in text if not c.isspace()]
    if len(visible) < _FEW_CHARS:
        return image_share > 0
    if image_share >= _MOSTLY_IMAGE and len(visible) < _SOME_CHARS:
        return True
    unmapped = sum(1 for c in visible if c == "\ufffd" or unicodedata.category(c) in ("Co", "Cn"))
    return unmapped / len(visible) >= _GARBAGE_SHARE


def render_pdf_page(page_ref: PageRef, ocr: OcrConfig) -> Image.Image:
    """One page as a grey image at ``ocr.dpi`` (less where it would pass ``max_pixels``)."""
    # Rendering is ~2% of a page's OCR time: threads that read pages at once take turns
    # here and overlap in Tesseract.
    with _PDFIUM_LOCK:
        return _render(page_ref, ocr)


def _render(page_ref: PageRef, ocr: OcrConfig) -> Image.Image:
    pdf = _open(page_ref.path, page_ref.source)
    try:
        page = pdf[page_ref.number - 1]
        try:
            width, height = page.get_size()
            scale = ocr.dpi / 72
            pixels = width * height * scale * scale
            if pixels > ocr.max_pixels:
                # A poster-sized page is read at a lower resolution rather than decoded
                # into gigabytes.
                scale *= (ocr.max_pixels / pixels) ** 0.5 * 0.995  # rounding up stays under
            return page.render(scale=scale, grayscale=True).to_pil()
        finally:
            page.close()
    finally:
        pdf.close()


def _open(path: Path, source: str) -> object:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise LoaderError(source, "encrypted (password-protected)") from None
        raise LoaderError(source, f"corrupt or unreadable pdf: {_pdfium_reason(exc)}") from exc


def _image_share(page: object) -> float:
    """The share of the page's area that its image objects cover (overlaps counted twice,
    capped at 1: a cheap bound, enough to tell a scan from a logo)."""
    import pypdfium2.raw as pdfium_c

    width, height = page.get_size()  # type: ignore[attr-defined]
    if width <= 0 or height <= 0:
        return 0.0
    area = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3):  # type: ignore[attr-defined]
        left, bottom, right, top = obj.get_bounds()
        area += max(0.0, min(right, width) - max(left, 0.0)) * max(
            0.0, min(top, height) - max(bottom, 0.0)
        )
    return min(1.0, area / (width * height))


def _clean_page_text(text: str) -> str:
    """Return page text without pdfium's control markers."""
    # pdfium marks a word hyphenated across a line break with \x02 and joins the halves.
    text = text.replace("\x02", "")
    text = normalize_newlines(_CONTROL_CHARS.sub("", text))
    return _CJK_LINE_BREAK.sub("", text)


def _pdfium_reason(exc: Exception) -> str:
    """Return pdfium's message without its trailing period."""
    return str(exc).strip().rstrip(".")
