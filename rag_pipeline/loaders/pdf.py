"""PDF files through pypdfium2: one Document per page that has text."""

from __future__ import annotations

import re
from pathlib import Path

from rag_pipeline.errors import LoaderError
from rag_pipeline.loaders.text import normalize_newlines
from rag_pipeline.types import Document

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Japanese and Chinese put no space between words, so a line wrapped by the PDF layout
# splits a word; the break between two such characters is joined back without a space.
_CJK_CHAR = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff60"
_CJK_LINE_BREAK = re.compile(rf"(?<=[{_CJK_CHAR}])[ \t]*\n[ \t]*(?=[{_CJK_CHAR}])")


def load_pdf(path: Path, source: str) -> list[Document]:
    """Load a PDF as one Document per page with text, numbered from 1 in ``page``."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise LoaderError(source, "encrypted (password-protected)") from None
        raise LoaderError(source, f"corrupt or unreadable pdf: {_pdfium_reason(exc)}") from exc
    try:
        title = (pdf.get_metadata_value("Title") or "").strip()
        documents = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            try:
                text = _clean_page_text(textpage.get_text_bounded())
            finally:
                textpage.close()
                page.close()
            if text:
                metadata = {"title": title, "page": index + 1} if title else {"page": index + 1}
                documents.append(Document(text=text, metadata=metadata))
        return documents
    except pdfium.PdfiumError as exc:
        raise LoaderError(source, f"corrupt or unreadable pdf: {_pdfium_reason(exc)}") from exc
    finally:
        pdf.close()


def _clean_page_text(text: str) -> str:
    """Return page text without pdfium's control markers."""
    # pdfium marks a word hyphenated across a line break with \x02 and joins the halves.
    text = text.replace("\x02", "")
    text = normalize_newlines(_CONTROL_CHARS.sub("", text))
    return _CJK_LINE_BREAK.sub("", text)


def _pdfium_reason(exc: Exception) -> str:
    """Return pdfium's message without its trailing period."""
    return str(exc).strip().rstrip(".")
