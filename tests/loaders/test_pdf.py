"""PDFs page by page: the text layer where it is the page's text, OCR where it is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_pipeline.errors import LoaderError
from rag_pipeline.loaders import LoadLimits, OcrConfig, extract, load_file
from rag_pipeline.loaders.ocr import find_tessdata
from rag_pipeline.loaders.pdf import page_needs_ocr
from tests.conftest import SHARED_DATA
from tests.scanned_pages import image_pdf, page

needs_tesseract = pytest.mark.skipif(
    find_tessdata(None) is None, reason="Tesseract's language data is not installed"
)


def test_rule_thresholds() -> None:
    body = "The refund policy allows thirty days from the date of purchase. " * 5
    assert page_needs_ocr("", 1.0)  # an image-only page
    assert not page_needs_ocr("", 0.0)  # a blank page
    assert page_needs_ocr("Page 3", 0.9)  # a page number over a scan
    assert page_needs_ocr("CONFIDENTIAL " * 10, 0.95)  # a stamp over a scan
    assert not page_needs_ocr("Annual report 2024 of the harbour company", 0.26)  # a cover
    assert not page_needs_ocr(body, 1.0)  # a scan that carries its own OCR layer
    assert not page_needs_ocr(body, 0.0)
    assert page_needs_ocr("\ufffd" * 40 + "ab", 0.0)  # glyphs without a Unicode map
    assert page_needs_ocr("\ue000\ue001" * 30, 0.0)  # private-use glyph codes


@needs_tesseract
def test_mixed_pdf_gets_text_layer_and_ocr(tmp_path: Path) -> None:
    path = image_pdf(
        tmp_path / "mixed.pdf",
        [page("en"), page("en", ["The second page was scanned by the clerk"])],
        text_pages={1: "The first page was typed in a word processor"},
    )
    extraction = extract(path)
    assert [p.number for p in extraction.pages] == [2]
    docs = load_file(path)
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert "ocr" not in docs[0].metadata and "typed in a word processor" in docs[0].text
    assert docs[1].metadata["ocr"] is True and "scanned by the clerk" in docs[1].text


@needs_tesseract
def test_modes_off_and_force(tmp_path: Path) -> None:
    scan = image_pdf(tmp_path / "scan.pdf", [page("en")])
    with pytest.raises(LoaderError) as caught:
        load_file(scan, limits=LoadLimits(ocr=OcrConfig(mode="off")))
    assert caught.value.reason == "no extractable text, and OCR is off (RAG_OCR=off)"
    typed = image_pdf(
        tmp_path / "typed.pdf", [page("en")], text_pages={1: "Typed words on a page of text"}
    )
    (forced,) = load_file(typed, limits=LoadLimits(ocr=OcrConfig(mode="force")))
    assert forced.metadata["ocr"] is True
    assert "Typed words" in forced.text


def test_pdf_with_its_own_ocr_layer_is_not_read_again() -> None:
    path = SHARED_DATA / "scans" / "real" / "pdf-with-ocr-text.pdf"
    if not path.exists():
        pytest.skip("shared scans are not present")
    extraction = extract(path)
    assert extraction.pages == ()
    assert extraction.documents and len(extraction.documents[0].text) > 500


@needs_tesseract
def test_page_limit_before_reading(tmp_path: Path) -> None:
    path = image_pdf(tmp_path / "long.pdf", [page("en")] * 3)
    with pytest.raises(LoaderError) as caught:
        extract(path, limits=LoadLimits(ocr=OcrConfig(max_pages=2)))
    assert caught.value.reason == "too many pages: 3 > limit 2"


@needs_tesseract
def test_huge_page_is_rendered_within_the_pixel_limit(tmp_path: Path) -> None:
    from rag_pipeline.loaders.pdf import render_pdf_page

    path = image_pdf(tmp_path / "scan.pdf", [page("en")])
    (ref,) = extract(path).pages
    image = render_pdf_page(ref, OcrConfig(dpi=600, max_pixels=1_000_000))
    assert image.width * image.height <= 1_000_000
    assert image.width * image.height > 900_000
