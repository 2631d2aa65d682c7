"""EPUB books, rendered as markdown through unstructured (which converts them with pandoc)."""

from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path

from rag_pipeline.loaders._unstructured import elements_to_markdown, prepare_unstructured
from rag_pipeline.types import Document

_ROOTFILE = re.compile(r"""<rootfile[^>]+full-path\s*=\s*["']([^"']+)["']""")
_DC_TITLE = re.compile(r"<dc:title[^>]*>([^<]*)</dc:title>")


def load_epub(path: Path, source: str) -> list[Document]:
    """Load an EPUB book as one markdown Document titled from its package metadata."""
    prepare_unstructured()
    from unstructured.partition.epub import partition_epub

    text = elements_to_markdown(partition_epub(filename=str(path)))
    title = _epub_title(path)
    return [Document(text=text, metadata={"title": title} if title else {}, markdown=True)]


def _epub_title(path: Path) -> str:
    """Return the book title from the OPF package document, or "" if there is none."""
    with zipfile.ZipFile(path) as book:
        try:
            container = book.read("META-INF/container.xml").decode("utf-8", errors="replace")
            rootfile = _ROOTFILE.search(container)
            if not rootfile:
                return ""
            package = book.read(rootfile.group(1)).decode("utf-8", errors="replace")
        except KeyError:
            return ""
    match = _DC_TITLE.search(package)
    return " ".join(html.unescape(match.group(1)).split()) if match else ""
