"""Prepare unstructured for offline use once, and render its elements as markdown."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from typing import Any

_SKIPPED_CATEGORIES = {"Header", "Footer", "PageBreak", "PageNumber", "Image"}
_LAYOUT_CELL_CHARS = 300
_BR_MARK = "\ue000"  # private-use character that survives whitespace collapsing


@functools.cache
def prepare_unstructured() -> None:
    """Configure unstructured (pinned to 0.27.32) to run offline, before its first import."""
    # unstructured pings its analytics server on import and prints a notice unless told not to.
    for name in ("DO_NOT_TRACK", "UNSTRUCTURED_DISABLE_NOTICE"):
        if not os.environ.get(name):
            os.environ[name] = "1"
    from unstructured.nlp import tokenize

    # unstructured 0.27.32 downloads spaCy's en_core_web_sm from GitHub on first use of its
    # text classifiers, which fails offline. A blank English pipeline with a sentencizer gives
    # the same element types on our samples. This replaces a private function; the version
    # pin and tests/loaders/test_unstructured_offline.py guard it.
    tokenize._get_nlp = _blank_english_pipeline


@functools.cache
def _blank_english_pipeline() -> Any:
    """Return a spaCy English tokenizer with a rule-based sentencizer and no downloaded model."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def elements_to_markdown(elements: Iterable[Any]) -> str:
    """Render unstructured elements as markdown: headings, lists, tables and paragraphs."""
    blocks: list[str] = []
    list_items: list[tuple[int, str]] = []
    for element in elements:
        category = element.category
        text = (element.text or "").strip()
        if category in _SKIPPED_CATEGORIES or (not text and category != "Table"):
            continue
        depth = element.metadata.category_depth or 0
        if category == "ListItem":
            list_items.append((depth, " ".join(text.split())))
            continue
        if list_items:
            blocks.append(_markdown_list(list_items))
            list_items = []
        if category == "Title":
            block = "#" * min(depth + 1, 6) + " " + " ".join(text.split())
        elif category == "Table":
            block = html_table_to_markdown(element.metadata.text_as_html or "") or text
        elif category == "CodeSnippet":
            block = f"```\n{element.text.strip(chr(10))}\n```"
        else:
            block = text
        if block:
            blocks.append(block)
    if list_items:
        blocks.append(_markdown_list(list_items))
    return "\n\n".join(blocks)


def _markdown_list(items: list[tuple[int, str]]) -> str:
    """Render consecutive list items as a bulleted list, nested by their depth."""
    # Partitioners disagree on the depth of a top-level item (pptx 0, html 1).
    top = min(depth for depth, _ in items)
    return "\n".join("  " * (depth - top) + "- " + text for depth, text in items)


def html_table_to_markdown(html: str) -> str:
    """Render an HTML table as a markdown pipe table, or as paragraphs if it is page layout."""
    if not html.strip():
        return ""
    import lxml.html

    table = lxml.html.fragment_fromstring(html, create_parent="div")
    rows: list[list[str]] = []
    for tr in table.iter("tr"):
        rows.append([_cell_text(cell) for cell in tr if cell.tag in ("td", "th")])
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    used = [i for i in range(width) if any(row[i] for row in rows)]
    rows = [[row[i] for i in used] for row in rows]
    # Pages laid out with tables (old HTML, emails) hold prose in cells, not data.
    if len(used) == 1 or any(len(cell) > _LAYOUT_CELL_CHARS for row in rows for cell in row):
        return "\n\n".join(cell for row in rows for cell in row if cell)
    lines = ["| " + " | ".join(_pipe_cell(cell) for cell in rows[0]) + " |"]
    lines.append("|" + "---|" * len(used))
    lines += ["| " + " | ".join(_pipe_cell(cell) for cell in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _cell_text(cell: Any) -> str:
    """Return a cell's text with whitespace collapsed, keeping ``<br>`` as line breaks."""
    for br in cell.iter("br"):
        br.tail = _BR_MARK + (br.tail or "")
    text = re.sub(r"\s+", " ", cell.text_content()).replace(_BR_MARK, "\n")
    text = re.sub(r" *\n *", "\n", text).strip()
    return re.sub(r"\n{3,}", "\n\n", text)


def _pipe_cell(text: str) -> str:
    """Return cell text fit for one markdown table cell."""
    return re.sub(r"\s+", " ", text).replace("|", "\\|")
