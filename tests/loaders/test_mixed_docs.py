"""Every sample document loads with its text, metadata and structure."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rag_pipeline.loaders import SUPPORTED_SUFFIXES, load_file

MIXED_DOCS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mixed_docs"

pytestmark = pytest.mark.skipif(
    not MIXED_DOCS.is_dir(), reason=f"sample documents not found at {MIXED_DOCS}"
)

# file -> (a phrase from it, MIME type, markdown flag)
EXPECTED: dict[str, tuple[str, str, bool]] = {
    "2023-half-year-analyses-by-segment.xlsx": (
        "Zone NA",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        True,
    ),
    "vodafone.xlsx": (
        "Quarterly revenue",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        True,
    ),
    "LICENSE.unstructured.md": ("Apache License", "text/markdown", True),
    "SOURCE.md": ("Mixed-format documents", "text/markdown", True),
    "codeblock.md": ("Hello, World!", "text/markdown", True),
    "simple-table.md": ("Juicy Apples", "text/markdown", True),
    "language-docs/eng_spa_mult.md": ("Todos los seres humanos", "text/markdown", True),
    "docx-tables.docx": (
        "Header Col 1",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        True,
    ),
    "handbook-1p.docx": (
        "United States Trustee",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        True,
    ),
    "language-docs/eng_spa_mult.docx": (
        "Todos los seres humanos",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        True,
    ),
    "eml/email-no-utf8-2014-03-17.111517.eml": (
        "The password for your Google Account",
        "message/rfc822",
        False,
    ),
    "eml/fake-email-attachment.eml": ("Lots of whitespace", "message/rfc822", False),
    "eml/family-day.eml": ("petting zoo", "message/rfc822", False),
    "eml/mime-different-plain-html.eml": ("This is the text/plain part.", "message/rfc822", False),
    "fake-email.msg": ("Roses are red", "application/vnd.ms-outlook", False),
    "example-10k-1p.html": ("Galaxy Gaming, Inc.", "text/html", True),
    "example-steelJIS-datasheet.html": ("Chemical composition", "text/html", True),
    "ideas-page.html": ("notice anomalies", "text/html", True),
    "fake-doc.rtf": ("My first paragraph.", "application/rtf", True),
    "fake.odt": ("Lorem ipsum dolor sit amet.", "application/vnd.oasis.opendocument.text", True),
    "fake-power-point-table.pptx": (
        "Tangerine",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        True,
    ),
    "sample-presentation.pptx": (
        "This is the first content slide",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        True,
    ),
    "norwich-city.txt": ("Iwan Wyn Roberts", "text/plain", False),
    "stanley-cups.csv": ("Maple Leafs", "text/csv", False),
    "winter-sports.epub": ("WINTER SPORTS IN SWITZERLAND", "application/epub+zip", True),
    "language-docs/fr_olap.pdf": ("logs de requêtes OLAP", "application/pdf", False),
    "pdf/embedded-images-tables.pdf": ("Langmuir adsorption isotherm", "application/pdf", False),
    "pdf/fake-memo.pdf": ("20,000 bottles of water", "application/pdf", False),
    "pdf/korean-text-with-tables.pdf": ("삼성카드", "application/pdf", False),
    "pdf/layout-parser-paper-fast.pdf": ("LayoutParser", "application/pdf", False),
    "pdf/multi-column-2p.pdf": ("Dense Passage Retrieval", "application/pdf", False),
    "pdf/reliance.pdf": ("Integrated Annual Report", "application/pdf", False),
}


def test_expected_covers_every_sample_file() -> None:
    found = {p.relative_to(MIXED_DOCS).as_posix() for p in MIXED_DOCS.rglob("*") if p.is_file()}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_file_loads_with_text_and_metadata(name: str) -> None:
    phrase, content_type, markdown = EXPECTED[name]
    path = MIXED_DOCS / name
    docs = load_file(path)
    assert docs
    assert all(doc.text.strip() for doc in docs)
    assert phrase in "\n".join(doc.text for doc in docs)
    for doc in docs:
        assert doc.metadata["source"] == str(path)
        assert doc.metadata["content_type"] == content_type
        assert isinstance(doc.metadata["title"], str) and doc.metadata["title"]
        assert doc.markdown is markdown


def test_pdf_pages_are_numbered_from_one() -> None:
    docs = load_file(MIXED_DOCS / "pdf" / "reliance.pdf")
    assert [doc.metadata["page"] for doc in docs] == [1, 2, 3]
    assert "Integrated Annual Report" in docs[0].text


def test_pdf_hyphenation_markers_are_removed() -> None:
    text = "\n".join(doc.text for doc in load_file(MIXED_DOCS / "language-docs" / "fr_olap.pdf"))
    assert "\x02" not in text
    assert "exploitation" in text


def test_korean_pdf_gives_korean_text() -> None:
    (doc,) = load_file(MIXED_DOCS / "pdf" / "korean-text-with-tables.pdf")
    hangul = sum(1 for ch in doc.text if "\uac00" <= ch <= "\ud7a3")
    assert hangul > 300
    assert doc.metadata["page"] == 1


def test_pdf_title_comes_from_document_info() -> None:
    (doc,) = load_file(MIXED_DOCS / "pdf" / "embedded-images-tables.pdf")
    assert doc.metadata["title"].startswith("Data on environmental sustainable")


def test_source_overrides_path_in_metadata() -> None:
    docs = load_file(MIXED_DOCS / "stanley-cups.csv", source="kb://cups")
    assert docs[0].metadata["source"] == "kb://cups"


def test_pptx_gives_one_document_per_slide_with_title_heading() -> None:
    docs = load_file(MIXED_DOCS / "sample-presentation.pptx")
    assert [doc.metadata["slide"] for doc in docs] == [1, 2, 3, 4]
    assert docs[1].text.startswith("# This is the first content slide")
    assert "  - With a sub-bullet" in docs[1].text


def test_pptx_table_becomes_markdown_table() -> None:
    (doc,) = load_file(MIXED_DOCS / "fake-power-point-table.pptx")
    assert "| Column 1 | Column 2 | Column 3 |" in doc.text
    assert "| Tangerine | Pink | Aqua |" in doc.text


def test_xlsx_gives_one_document_per_sheet_headed_by_its_name() -> None:
    docs = load_file(MIXED_DOCS / "2023-half-year-analyses-by-segment.xlsx")
    assert len(docs) == 5
    for doc in docs:
        assert doc.text.startswith(f"# {doc.metadata['sheet']}\n")
    assert "Zone NA\t12553\t2713" in docs[0].text


def test_rtf_heading_and_html_heading_become_markdown_headings() -> None:
    (rtf,) = load_file(MIXED_DOCS / "fake-doc.rtf")
    assert rtf.text.startswith("# My First Heading\n")
    (html,) = load_file(MIXED_DOCS / "example-steelJIS-datasheet.html")
    assert "\n## SNB22-3 Chemical composition, standards and properties\n" in html.text
    assert html.metadata["title"].startswith("SNB22-3 - SteelJIS")


def test_markdown_file_is_passed_through_with_first_heading_as_title() -> None:
    (doc,) = load_file(MIXED_DOCS / "codeblock.md")
    assert doc.metadata["title"] == "HTML Example"
    assert doc.text.startswith("## HTML Example\n\n```html")


def test_email_headers_go_into_metadata() -> None:
    (doc,) = load_file(MIXED_DOCS / "eml" / "family-day.eml")
    assert doc.metadata["subject"] == doc.metadata["title"] == "Family Day"
    assert "mallori@unstructured.io" in doc.metadata["from"]
    assert "2022" in doc.metadata["date"]
    (msg,) = load_file(MIXED_DOCS / "fake-email.msg")
    assert msg.metadata["subject"] == "Test Email"
    assert "mrobinson@unstructured.io" in msg.metadata["from"]


def test_email_text_attachment_is_included() -> None:
    (doc,) = load_file(MIXED_DOCS / "eml" / "fake-email-attachment.eml")
    assert "Hey this is a fake attachment!" in doc.text


def test_epub_title_comes_from_package_metadata() -> None:
    (doc,) = load_file(MIXED_DOCS / "winter-sports.epub")
    assert doc.metadata["title"] == "Winter Sports in Switzerland"
    assert "\n## CHAPTER I THE SUN-SEEKER\n" in doc.text


def test_all_sample_files_load_quickly() -> None:
    load_file(MIXED_DOCS / "fake-doc.rtf")  # first use imports unstructured; not timed
    paths = [p for p in sorted(MIXED_DOCS.rglob("*")) if p.suffix.lower() in SUPPORTED_SUFFIXES]
    started = time.perf_counter()
    for path in paths:
        load_file(path)
    assert time.perf_counter() - started < 20


def test_sample_suffixes_are_all_supported() -> None:
    suffixes = {p.suffix.lower() for p in MIXED_DOCS.rglob("*") if p.is_file()}
    assert suffixes <= SUPPORTED_SUFFIXES
