"""OCR with the real Tesseract on small generated pages: languages, vertical text, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag_pipeline.errors import ConfigError, LoaderError
from rag_pipeline.loaders import LoadLimits, OcrConfig, load_file
from rag_pipeline.loaders.ocr import clean_ocr_text, find_tessdata, install_hint
from tests.scanned_pages import LINES, page, reads

TESSDATA = find_tessdata(None)
pytestmark = pytest.mark.skipif(
    TESSDATA is None, reason="Tesseract's language data is not installed (make setup installs it)"
)


def _read(path: Path, **ocr: object) -> list:
    return load_file(path, limits=LoadLimits(ocr=OcrConfig(**ocr)))  # type: ignore[arg-type]


def _words(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(
    ("language", "engine_language"), [("en", "eng"), ("ko", "kor+eng"), ("ja", "jpn")]
)
def test_each_language_is_chosen_per_page_and_read(
    tmp_path: Path, language: str, engine_language: str
) -> None:
    path = tmp_path / f"{language}.png"
    page(language).save(path)
    (doc,) = _read(path)
    assert doc.metadata["ocr"] is True
    assert doc.metadata["ocr_languages"] == engine_language
    assert doc.metadata["ocr_confidence"] >= 80
    assert doc.metadata["page"] == 1
    for line in LINES[language]:
        assert reads(line, doc.text)


def test_vertical_japanese_is_read(tmp_path: Path) -> None:
    path = tmp_path / "tategaki.png"
    page("ja", vertical=True).save(path)
    (doc,) = _read(path)
    assert "jpn_vert" in doc.metadata["ocr_languages"]
    for line in LINES["ja"]:
        assert reads(line, doc.text)


def test_a_page_turned_upside_down_is_turned_back(tmp_path: Path) -> None:
    lines = [*LINES["en"], "Shipping takes five working days", "Call the office on Monday"]
    path = tmp_path / "upside-down.png"
    page("en", lines).rotate(180, expand=True).save(path)
    (doc,) = _read(path)
    assert "refund policy allows thirty days" in doc.text


def test_languages_setting_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "ko.png"
    page("ko").save(path)
    (doc,) = _read(path, languages="kor+eng")
    assert doc.metadata["ocr_languages"] == "kor+eng"
    assert reads(LINES["ko"][0], doc.text)


def test_no_language_data_names_the_install_command(tmp_path: Path) -> None:
    empty = tmp_path / "tessdata"
    empty.mkdir()
    path = tmp_path / "scan.png"
    page("en").save(path)
    with pytest.raises(LoaderError) as caught:
        _read(path, tessdata=str(empty))
    assert caught.value.path == str(path)
    assert "apt-get install tesseract-ocr-eng" in caught.value.reason
    assert "page 1" in caught.value.reason


def test_missing_language_pack_names_its_package(tmp_path: Path) -> None:
    assert TESSDATA is not None
    partial = tmp_path / "tessdata"
    partial.mkdir()
    for name in ("eng", "osd"):
        shutil.copy(TESSDATA / f"{name}.traineddata", partial)
    korean = tmp_path / "korean.png"
    page("ko").save(korean)
    with pytest.raises(LoaderError) as caught:
        _read(korean, tessdata=str(partial))
    assert "apt-get install tesseract-ocr-kor" in caught.value.reason
    # Asked for by name, the missing language is named before anything is read.
    with pytest.raises(LoaderError) as caught:
        _read(korean, tessdata=str(partial), languages="kor")
    assert "'kor'" in caught.value.reason and "tesseract-ocr-kor" in caught.value.reason
    # What the installed languages read is still read.
    english = tmp_path / "english.png"
    page("en").save(english)
    (doc,) = _read(english, tessdata=str(partial))
    assert "harbour crane" in doc.text


def test_page_time_limit(tmp_path: Path) -> None:
    lines = LINES["en"] * 6
    path = tmp_path / "long.png"
    page("en", lines).save(path)
    with pytest.raises(LoaderError) as caught:
        _read(path, page_timeout=0.001, languages="eng")
    assert "OCR stopped after" in caught.value.reason
    assert "RAG_OCR_PAGE_TIMEOUT" in caught.value.reason


def test_config_is_checked_when_built() -> None:
    with pytest.raises(ConfigError, match="OCR mode"):
        OcrConfig(mode="sometimes")
    with pytest.raises(ConfigError, match="dpi"):
        OcrConfig(dpi=10)


def test_cjk_gaps_are_closed_but_words_of_other_scripts_keep_theirs() -> None:
    assert clean_ocr_text("どこ で 生れ た か\nと ん と") == "どこで生れたかとんと"
    assert clean_ocr_text("환불 정책은\n삼십 일") == "환불 정책은\n삼십 일"
    assert clean_ocr_text("The refund\n\n\n\npolicy\x0c") == "The refund\n\npolicy"


def test_install_hint_follows_debian_package_names() -> None:
    assert install_hint("jpn_vert").endswith("tesseract-ocr-jpn-vert")
    assert install_hint("chi_sim").endswith("tesseract-ocr-chi-sim")
