"""Office documents: docx, pptx, odt and rtf through unstructured, xlsx through openpyxl."""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag_pipeline.loaders._unstructured import elements_to_markdown, prepare_unstructured
from rag_pipeline.types import Document

_DC_TITLE = re.compile(r"<dc:title[^>]*>([^<]*)</dc:title>")


def load_docx(path: Path, source: str) -> list[Document]:
    """Load a Word document as one markdown Document."""
    prepare_unstructured()
    from unstructured.partition.docx import partition_docx

    return _load_whole(path, partition_docx, _package_title(path, "docProps/core.xml"))


def load_odt(path: Path, source: str) -> list[Document]:
    """Load an OpenDocument text file as one markdown Document."""
    prepare_unstructured()
    from unstructured.partition.odt import partition_odt

    return _load_whole(path, partition_odt, _package_title(path, "meta.xml"))


def load_rtf(path: Path, source: str) -> list[Document]:
    """Load an RTF file as one markdown Document."""
    prepare_unstructured()
    from unstructured.partition.rtf import partition_rtf

    return _load_whole(path, partition_rtf, "")


def load_pptx(path: Path, source: str) -> list[Document]:
    """Load a presentation as one markdown Document per slide, numbered in ``slide``."""
    prepare_unstructured()
    from unstructured.partition.pptx import partition_pptx

    slides: dict[int, list[Any]] = {}
    for element in partition_pptx(filename=str(path)):
        slides.setdefault(element.metadata.page_number or 1, []).append(element)
    title = _package_title(path, "docProps/core.xml")
    documents = []
    for number, elements in sorted(slides.items()):
        metadata: dict[str, Any] = {"title": title, "slide": number} if title else {"slide": number}
        documents.append(Document(elements_to_markdown(elements), metadata, markdown=True))
    return documents


def load_xlsx(path: Path, source: str) -> list[Document]:
    """Load a workbook as one Document per sheet: the sheet name as heading, rows tab-separated."""
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        title = (workbook.properties.title or "").strip()
        documents = []
        for sheet in workbook.worksheets:
            rows = [_row_cells(row) for row in sheet.iter_rows(values_only=True)]
            rows = [row for row in rows if any(row)]
            if not rows:
                continue
            width = max(len(row) for row in rows)
            used = [i for i in range(width) if any(i < len(row) and row[i] for row in rows)]
            lines = [
                "\t".join(row[i] if i < len(row) else "" for i in used).rstrip("\t") for row in rows
            ]
            metadata: dict[str, Any] = {"sheet": sheet.title}
            if title:
                metadata["title"] = title
            text = f"# {sheet.title}\n\n" + "\n".join(lines)
            documents.append(Document(text, metadata, markdown=True))
        return documents
    finally:
        workbook.close()


def _row_cells(row: tuple[Any, ...]) -> list[str]:
    """Return a sheet row's values as single-line strings, "" for empty cells."""
    return ["" if value is None else " ".join(str(value).split()) for value in row]


def _load_whole(path: Path, partition: Callable[..., list[Any]], title: str) -> list[Document]:
    """Partition a file with unstructured and return it as one markdown Document."""
    text = elements_to_markdown(partition(filename=str(path)))
    return [Document(text, {"title": title} if title else {}, markdown=True)]


def _package_title(path: Path, member: str) -> str:
    """Return the ``dc:title`` in a zip package's metadata part, or "" if there is none."""
    try:
        with zipfile.ZipFile(path) as package:
            xml = package.read(member).decode("utf-8", errors="replace")
    except (KeyError, zipfile.BadZipFile):
        return ""
    match = _DC_TITLE.search(xml)
    if not match:
        return ""
    return " ".join(html.unescape(match.group(1)).split())
