"""HTML pages, rendered as markdown through unstructured's HTML partitioner."""

from __future__ import annotations

import codecs
import html
import re
from pathlib import Path

from rag_pipeline.loaders.text import decode_text
from rag_pipeline.types import Document

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)


def load_html(path: Path, source: str) -> list[Document]:
    """Load an HTML file as one markdown Document titled by its ``<title>``."""
    text = decode_html(path.read_bytes())
    metadata = {}
    title = _TITLE.search(text)
    if title and title.group(1).strip():
        metadata["title"] = " ".join(html.unescape(title.group(1)).split())
    return [Document(text=html_to_markdown(text), metadata=metadata, markdown=True)]


def decode_html(data: bytes) -> str:
    """Decode HTML by its ``<meta charset>`` when it declares a known one, else by detection."""
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        try:
            encoding = codecs.lookup(declared.group(1).decode("ascii")).name
        except LookupError:
            encoding = None
        # A page saved as UTF-8 often keeps a stale legacy declaration; strict UTF-8 wins then.
        if encoding and encoding not in ("utf-16-le", "utf-16-be", "utf-16"):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return data.decode(encoding, errors="replace")
    return decode_text(data)


def html_to_markdown(text: str) -> str:
    """Render an HTML document as markdown text."""
    from rag_pipeline.loaders._unstructured import elements_to_markdown, prepare_unstructured

    prepare_unstructured()
    from unstructured.partition.html import partition_html

    return elements_to_markdown(partition_html(text=text))
