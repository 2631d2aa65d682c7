"""Image files are documents: every format Pillow reads, every page of a TIFF, limits first."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_pipeline.errors import LoaderError
from rag_pipeline.loaders import LoadLimits, OcrConfig, extract, is_supported, load_file
from rag_pipeline.loaders.ocr import find_tessdata
from tests.scanned_pages import LINES, page

pytestmark = pytest.mark.skipif(
    find_tessdata(None) is None, reason="Tesseract's language data is not installed"
)


def _reason(path: Path, **ocr: object) -> str:
    with pytest.raises(LoaderError) as caught:
        load_file(path, limits=LoadLimits(ocr=OcrConfig(languages="eng", **ocr)))  # type: ignore[arg-type]
    assert caught.value.path == str(path)
    return caught.value.reason


@pytest.mark.parametrize(
    ("suffix", "save_as"),
    [
        (".png", "PNG"),
        (".jpg", "JPEG"),
        (".jpeg", "JPEG"),
        (".tif", "TIFF"),
        (".bmp", "BMP"),
        (".webp", "WEBP"),
        (".gif", "GIF"),
    ],
)
def test_every_image_format_is_read(tmp_path: Path, suffix: str, save_as: str) -> None:
    path = tmp_path / f"scan{suffix}"
    image = page("en")
    (image.convert("RGB") if save_as == "JPEG" else image).save(path, save_as)
    assert is_supported(path)
    (doc,) = load_file(path)
    assert "harbour crane" in doc.text
    assert doc.metadata["ocr"] is True
    assert doc.metadata["content_type"].startswith("image/")


def test_heic_is_read(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    path = tmp_path / "photo.heic"
    pillow_heif.from_pillow(page("en").convert("RGB")).save(path, quality=95)
    (doc,) = load_file(path)
    assert "harbour crane" in doc.text


def test_every_page_of_a_tiff_is_read_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "fax.tiff"
    first = page("en", ["Page one talks about cranes"])
    rest = [page("en", ["Page two talks about ships"]), page("en", ["Page three is on trains"])]
    first.save(path, save_all=True, append_images=rest)
    docs = load_file(path)
    assert [d.metadata["page"] for d in docs] == [1, 2, 3]
    texts = [doc.text.lower() for doc in docs]
    assert "cranes" in texts[0] and "ships" in texts[1] and "trains" in texts[2]


def test_transparent_png_reads_as_paper(tmp_path: Path) -> None:
    from PIL import Image

    grey = page("en")
    rgba = Image.new("RGBA", grey.size, (0, 0, 0, 0))
    ink = grey.point(lambda v: 255 if v < 128 else 0)
    rgba.putalpha(ink)
    path = tmp_path / "transparent.png"
    rgba.save(path)
    (doc,) = load_file(path)
    assert "harbour crane" in doc.text


def test_sixteen_bit_grey_scan_is_read(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    grey = np.asarray(page("en"), dtype=np.uint16) * 257  # 0-255 -> 0-65535
    path = tmp_path / "scanner.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I")
    (doc,) = load_file(path)
    assert "harbour crane" in doc.text


def test_page_count_is_checked_before_anything_is_read(tmp_path: Path) -> None:
    path = tmp_path / "fax.tiff"
    image = page("en")
    image.save(path, save_all=True, append_images=[image, image])
    extraction = extract(path, limits=LoadLimits(ocr=OcrConfig(max_pages=3)))
    assert len(extraction.pages) == 3
    assert _reason(path, max_pages=2) == "too many pages: 3 > limit 2"


def test_pixel_limit_is_checked_from_the_header(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("1", (12_000, 12_000), 1).save(path)  # 144 megapixels in a small file
    assert path.stat().st_size < 2_000_000
    reason = _reason(path, max_pixels=50_000_000)
    assert reason == "image too large: 12000x12000 pixels > limit 50000000 (RAG_MAX_IMAGE_PIXELS)"
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000), 1).save(bomb)  # past Pillow's own hard stop
    assert _reason(bomb).startswith("image too large: more than")


def test_ocr_off_names_the_image_and_why(tmp_path: Path) -> None:
    path = tmp_path / "scan.png"
    page("en").save(path)
    assert "OCR is off" in _reason(path, mode="off")


def test_mislabeled_and_corrupt_images(tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n" * 20)
    assert _reason(text) == "not an image file (content looks like text)"
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40)
    assert _reason(corrupt).startswith("corrupt or unreadable")
    truncated = tmp_path / "truncated.png"
    page("en").save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    assert _reason(truncated).startswith("page 1: cannot be read")


def test_blank_image_has_no_text(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "blank.png"
    Image.new("L", (800, 600), 255).save(path)
    reason = _reason(path)
    assert (
        reason == "no text found: OCR read nothing on its pages (a photo or drawing without text?)"
    )


def test_languages_of_a_page_come_from_the_page(tmp_path: Path) -> None:
    path = tmp_path / "ko.png"
    page("ko").save(path)
    (doc,) = load_file(path)
    assert LINES["ko"][0].split()[0] in doc.text
