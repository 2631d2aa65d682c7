"""load_file turns every failure into a LoaderError whose reason a user can read."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from rag_pipeline.errors import LoaderError
from rag_pipeline.loaders import SUPPORTED_SUFFIXES, is_supported, load_file


def _reason(path: Path, **kwargs: object) -> str:
    with pytest.raises(LoaderError) as caught:
        load_file(path, **kwargs)  # type: ignore[arg-type]
    assert caught.value.path == kwargs.get("source", str(path))
    assert str(caught.value) == f"{caught.value.path}: {caught.value.reason}"
    return caught.value.reason


def _text_pdf(path: Path, text: str = "Hello from a real PDF", password: str | None = None) -> Path:
    """Write a one-page PDF holding ``text``, optionally encrypted with ``password``."""
    from pypdf import PdfWriter
    from pypdf.generic import (
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
    )

    writer = PdfWriter()
    page = writer.add_blank_page(300, 200)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    content = DecodedStreamObject()
    content.set_data(f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode("latin-1"))
    page[NameObject("/Contents")] = writer._add_object(content)
    if password:
        writer.encrypt(user_password=password, owner_password=password)
    with path.open("wb") as file:
        writer.write(file)
    return path


def test_generated_pdf_helper_makes_a_readable_pdf(tmp_path: Path) -> None:
    (doc,) = load_file(_text_pdf(tmp_path / "ok.pdf"))
    assert doc.text == "Hello from a real PDF"
    assert doc.metadata["page"] == 1


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert _reason(path) == "empty file"


def test_file_over_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 2000)
    assert _reason(path, max_bytes=1000) == "file too large: 2000 bytes > limit 1000"
    assert load_file(path, max_bytes=2000)[0].text == "x" * 2000


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("some text")
    assert _reason(path) == "unsupported file type .xyz"
    assert not is_supported(path)


def test_missing_file_names_source(tmp_path: Path) -> None:
    assert _reason(tmp_path / "gone.txt", source="kb://gone") == "file not found"


def test_corrupt_pdf(tmp_path: Path) -> None:
    path = tmp_path / "random.pdf"
    path.write_bytes(b"\x00\x9f" + os.urandom(4000))
    reason = _reason(path)
    assert reason.startswith("corrupt or unreadable pdf: ")
    assert "PDFium" in reason
    assert "Traceback" not in reason


def test_truncated_pdf_is_corrupt(tmp_path: Path) -> None:
    whole = _text_pdf(tmp_path / "whole.pdf").read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(whole[:60])
    assert _reason(path).startswith("corrupt or unreadable pdf: ")


def test_text_saved_as_pdf(tmp_path: Path) -> None:
    path = tmp_path / "notes.pdf"
    path.write_text("These are plain notes, not a PDF.\n" * 5)
    assert _reason(path) == "not a PDF file (content looks like text)"


def test_text_saved_as_docx(tmp_path: Path) -> None:
    path = tmp_path / "notes.docx"
    path.write_text("These are plain notes, not a Word document.\n")
    assert _reason(path) == "not a DOCX file (content looks like text)"


def test_random_bytes_saved_as_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"\x00\x01" + os.urandom(500))
    assert _reason(path) == "not a XLSX file (content looks like binary data)"


def test_zip_that_is_not_a_docx(tmp_path: Path) -> None:
    path = tmp_path / "archive.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "just a zip")
    assert _reason(path).startswith("corrupt or unreadable docx: ")


def test_text_saved_as_msg(tmp_path: Path) -> None:
    path = tmp_path / "mail.msg"
    path.write_text("From: someone\n\nHello")
    assert _reason(path) == "not an Outlook MSG file (content looks like text)"


def test_binary_saved_as_txt(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\x00\x01\x02\x03" * 100)
    assert _reason(path) == "not a text file (content looks like binary data)"


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = _text_pdf(tmp_path / "locked.pdf", password="secret")
    assert _reason(path) == "encrypted (password-protected)"


def test_encrypted_docx(tmp_path: Path) -> None:
    import docx
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = tmp_path / "plain.docx"
    document = docx.Document()
    document.add_paragraph("confidential")
    document.save(str(plain))
    locked = tmp_path / "locked.docx"
    with plain.open("rb") as source, locked.open("wb") as target:
        OOXMLFile(source).encrypt("secret", target)
    assert _reason(locked) == "encrypted (password-protected)"


def test_pdf_without_text(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    path = tmp_path / "blank.pdf"
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    with path.open("wb") as file:
        writer.write(file)
    assert _reason(path) == "no extractable text (no text layer and no images)"


def test_whitespace_only_text_file(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text("  \n\t\n")
    assert _reason(path) == "no extractable text"


def test_supported_suffixes_and_case_insensitive_dispatch(tmp_path: Path) -> None:
    required = ".txt .text .md .markdown .html .htm .pdf .docx .pptx .xlsx .csv .tsv .eml .msg"
    required += " .epub .odt .rtf .json .jsonl"
    assert set(required.split()) <= SUPPORTED_SUFFIXES
    assert isinstance(SUPPORTED_SUFFIXES, frozenset)
    path = tmp_path / "NOTES.TXT"
    path.write_text("upper-case suffix")
    assert is_supported(path)
    assert is_supported("report.PDF")
    assert not is_supported("archive.zip")
    (doc,) = load_file(path)
    assert doc.text == "upper-case suffix"
    assert doc.metadata == {"source": str(path), "title": "NOTES", "content_type": "text/plain"}


def _docx(path: Path, paragraphs: list[str]) -> Path:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))
    return path


def test_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    from rag_pipeline.loaders import LoadLimits

    real = _docx(tmp_path / "real.docx", ["Ziggy eats apples."])
    bomb = tmp_path / "bomb.docx"
    # A real document whose document.xml is padded to 40 MB of zeros: ~40 KB on disk.
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "word/document.xml":
                data += b" " * (40 * 1024 * 1024)
            out.writestr(info, data, zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 200_000
    limits = LoadLimits(max_unzipped_bytes=10 * 1024 * 1024)
    reason = _reason(bomb, limits=limits)
    assert reason.startswith("expands to ") and "limit 10485760" in reason
    assert load_file(real, limits=limits)[0].text == "Ziggy eats apples."


def test_text_past_the_character_limit_is_refused(tmp_path: Path) -> None:
    from rag_pipeline.loaders import LoadLimits

    small = _docx(tmp_path / "dense.docx", ["word " * 2000] * 10)  # 100,000 characters
    reason = _reason(small, limits=LoadLimits(max_chars=50_000))
    count = int(reason.removeprefix("too much text: ").split()[0])
    assert 99_000 < count < 101_000 and reason.endswith("characters > limit 50000")
    assert len(load_file(small, limits=LoadLimits(max_chars=200_000))[0].text) > 50_000
