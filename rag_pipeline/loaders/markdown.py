"""Markdown files: already in the shape the chunker wants, so only decoded and titled."""

from __future__ import annotations

import re
from pathlib import Path

from rag_pipeline.loaders.text import decode_text, normalize_newlines
from rag_pipeline.types import Document

_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.MULTILINE | re.DOTALL)


def load_markdown(path: Path, source: str) -> list[Document]:
    """Load a markdown file as one markdown Document titled by its first heading."""
    text = normalize_newlines(decode_text(path.read_bytes()))
    metadata = {}
    # A "#" line inside a fenced code block is code (a shell comment), not a heading.
    heading = _ATX_HEADING.search(_FENCE.sub("", text))
    if heading:
        metadata["title"] = heading.group(1).strip()
    return [Document(text=text, metadata=metadata, markdown=True)]
