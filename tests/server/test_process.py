"""``PUT /process``: Open WebUI's external document loader, over real HTTP.

Requests are made as Open WebUI's ``ExternalDocumentLoader`` makes them: the file's bytes
as the body, its MIME type as Content-Type, ``quote(basename)`` as X-Filename and the
API key as a Bearer token.
"""

from __future__ import annotations

import io
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from rag_pipeline.loaders import load_file

from .conftest import FALCON, ZEBRA, World

MIXED_DOCS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mixed_docs"
PDF_TYPE = "application/pdf"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def put(
    world: World,
    data: bytes,
    name: str | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send a file as Open WebUI's external loader does (X-Filename quoted like it)."""
    sent = dict(world.admin.headers if headers is None else headers)
    if name is not None:
        sent["X-Filename"] = quote(name)
    if content_type is not None:
        sent["Content-Type"] = content_type
    return httpx.put(f"{world.url}/process", content=data, headers=sent, timeout=60)


def ok(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list) and body, body
    for item in body:
        assert set(item) == {"page_content", "metadata"}
        assert isinstance(item["page_content"], str) and item["page_content"].strip()
        assert isinstance(item["metadata"], dict)
    return body


def pdf_bytes(pages: list[str], title: str | None = None) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    if title:
        pdf.setTitle(title)
    for text in pages:
        pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def test_a_text_file_is_one_document(world: World) -> None:
    (item,) = ok(put(world, ZEBRA.encode(), "zebra.txt", "text/plain"))
    assert item["page_content"] == ZEBRA.strip()
    assert item["metadata"] == {
        "source": "zebra.txt",
        "name": "zebra.txt",
        "title": "zebra",
        "content_type": "text/plain",
    }


def test_markdown_is_one_item_per_section_with_its_heading_path(world: World) -> None:
    top, budget = ok(put(world, FALCON.encode(), "notes.md", "text/markdown"))
    assert top["page_content"].startswith("# Project Falcon")
    assert "Falcon launches on 2031-05-04." in top["page_content"]
    assert "42 million euros" in budget["page_content"]
    assert top["metadata"]["heading_path"] == "Project Falcon"
    assert budget["metadata"]["heading_path"] == "Project Falcon > Budget"
    for item in (top, budget):
        assert item["metadata"]["title"] == "Project Falcon"
        assert item["metadata"]["content_type"] == "text/markdown"
        assert item["metadata"]["name"] == "notes.md"


def test_a_pdf_is_one_document_per_page_numbered_as_open_webui_does(world: World) -> None:
    data = pdf_bytes(["Zebras graze on page one", "Falcons fly on page two"], title="Wildlife")
    first, second = ok(put(world, data, "wildlife.pdf", PDF_TYPE))
    assert first["page_content"] == "Zebras graze on page one"
    assert second["page_content"] == "Falcons fly on page two"
    # Open WebUI's PDF loader counts pages from 0 (its citations show page + 1).
    assert (first["metadata"]["page"], first["metadata"]["page_label"]) == (0, "1")
    assert (second["metadata"]["page"], second["metadata"]["page_label"]) == (1, "2")
    for item in (first, second):
        meta = item["metadata"]
        assert meta["title"] == "Wildlife"
        assert meta["content_type"] == PDF_TYPE
        assert meta["source"] == meta["name"] == "wildlife.pdf"


def test_a_docx_comes_back_as_markdown(world: World) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Quarterly Plan"
    document.add_heading("Goals", level=1)
    document.add_paragraph("Ship the zebra tracker by March.")
    document.add_heading("Risks", level=2)
    document.add_paragraph("Falcons may eat the sensors.")
    out = io.BytesIO()
    document.save(out)

    (item,) = ok(put(world, out.getvalue(), "plan.docx", DOCX_TYPE))
    text = item["page_content"]
    assert "# Goals" in text and "## Risks" in text
    assert text.index("Ship the zebra tracker") < text.index("Falcons may eat the sensors")
    assert item["metadata"]["title"] == "Quarterly Plan"
    assert item["metadata"]["content_type"] == DOCX_TYPE


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1252", "Le café crème coûte 3 € — la façade est naïve, très élégante."),
        ("shift_jis", "東京の会議は来週の火曜日に開かれます。資料を準備してください。"),
    ],
)
def test_legacy_encoded_text_is_decoded(world: World, encoding: str, text: str) -> None:
    data = text.encode(encoding)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    (item,) = ok(put(world, data, "legacy.txt", "text/plain"))
    assert item["page_content"] == text


def test_a_quoted_japanese_file_name(world: World) -> None:
    name = "会議メモ 2024.txt"
    response = put(world, "議事録です。".encode(), name, "text/plain")
    assert response.request.headers["X-Filename"].isascii()
    (item,) = ok(response)
    assert item["metadata"]["name"] == item["metadata"]["source"] == name
    assert item["metadata"]["title"] == "会議メモ 2024"


def test_an_unquoted_utf8_file_name_is_read_as_meant(world: World) -> None:
    # Not what Open WebUI sends, but what a hand-written client might: raw UTF-8 bytes.
    headers = {**world.admin.headers, "X-Filename": "メモ.txt".encode()}  # type: ignore[dict-item]
    (item,) = ok(put(world, b"hello", None, "text/plain", headers=headers))
    assert item["metadata"]["name"] == "メモ.txt"


def test_open_webuis_storage_prefix_is_dropped_from_the_name(world: World) -> None:
    # Open WebUI stores uploads as "{uuid}_{name}" and sends that file's basename.
    items = ok(put(world, FALCON.encode(), f"{uuid.uuid4()}_報告書.md", "text/markdown"))
    assert {item["metadata"]["name"] for item in items} == {"報告書.md"}


def test_a_name_we_do_not_know_is_read_by_its_content_type(world: World) -> None:
    (item,) = ok(put(world, b"2024-01-01 boot ok\n", "server.log", "text/plain; charset=utf-8"))
    assert item["page_content"] == "2024-01-01 boot ok"
    assert item["metadata"]["name"] == "server.log"
    assert item["metadata"]["title"] == "server.log"
    assert item["metadata"]["content_type"] == "text/plain"


def test_without_a_file_name_the_content_type_decides(world: World) -> None:
    (item,) = ok(put(world, pdf_bytes(["Only page"]), None, PDF_TYPE))
    assert item["page_content"] == "Only page"
    assert item["metadata"]["content_type"] == PDF_TYPE
    assert item["metadata"]["page"] == 0


def test_a_corrupt_pdf_is_a_400_with_the_reason(world: World) -> None:
    response = put(world, b"%PDF-1.7\n1 0 obj <<>> garbage " * 20, "broken.pdf", PDF_TYPE)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("broken.pdf: corrupt or unreadable pdf")


def test_a_file_that_is_not_what_its_name_says_is_a_400(world: World) -> None:
    response = put(world, b"just some words", "fake.pdf", PDF_TYPE)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == "fake.pdf: not a PDF file (content looks like text)"


def test_an_empty_body_is_a_400(world: World) -> None:
    response = put(world, b"", "empty.txt", "text/plain")
    assert response.status_code == 400, response.text
    assert response.json() == {"detail": "empty.txt: empty file"}


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("config.yaml", "application/octet-stream"),
        ("query.sql", "application/sql"),
        ("settings.ini", None),
        ("layout.xml", "application/xml"),
        ("NOTES", None),
    ],
)
def test_text_open_webui_reads_as_text_is_read_as_text(
    world: World, name: str, content_type: str | None
) -> None:
    body = b"key: value\nother = 2 -- a line Open WebUI would read as text\n"
    (item,) = ok(put(world, body, name, content_type))
    assert item["page_content"].startswith("key: value")
    assert item["metadata"]["name"] == name


@pytest.mark.parametrize(
    ("name", "content_type"), [(None, "application/octet-stream"), (None, None)]
)
def test_binary_content_without_a_format_is_a_400_saying_so(
    world: World, name: str | None, content_type: str | None
) -> None:
    response = put(world, bytes(range(256)) * 8, name, content_type)
    assert response.status_code == 400, response.text
    assert "not a text file" in response.json()["detail"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("archive.zip", "application/zip"), ("clip.mp4", "video/mp4")],
)
def test_a_type_we_cannot_read_is_a_415(
    world: World, name: str | None, content_type: str | None
) -> None:
    response = put(world, b"PK\x03\x04 not for us", name, content_type)
    assert response.status_code == 415, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"{name or 'document'}: unsupported file type")
    assert ".pdf" in detail  # the reason lists what we do read


def test_an_x_filename_that_is_not_utf8_is_a_400(world: World) -> None:
    headers = {**world.admin.headers, "X-Filename": "%FF%FE.txt"}
    response = put(world, b"hello", None, "text/plain", headers=headers)
    assert response.status_code == 400, response.text
    assert "X-Filename" in response.json()["detail"]


def test_a_file_past_the_upload_limit_is_a_413(world: World) -> None:
    limit = world.server.settings.max_file_bytes
    response = put(world, b"a" * (limit + 1), "big.txt", "text/plain")
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == f"big.txt: file too large: the limit is {limit} bytes"
    assert ok(put(world, b"a " * (limit // 2), "fits.txt", "text/plain"))


def test_no_token_is_a_401_before_the_body_counts(world: World) -> None:
    # Past the body limit too: the guard answers 401 before it reads or caps the body.
    big = b"a" * (world.server.settings.max_file_bytes + 100_000)
    for headers in ({}, {"Authorization": "Bearer sk-not-a-key"}):
        for data in (ZEBRA.encode(), big):
            response = put(world, data, "zebra.txt", "text/plain", headers=headers)
            assert response.status_code == 401, response.text
            assert response.headers["WWW-Authenticate"] == "Bearer"


def test_any_users_key_or_session_token_works(world: World) -> None:
    for headers in (world.bob.headers, {"Authorization": f"Bearer {world.bob.token}"}):
        (item,) = ok(put(world, ZEBRA.encode(), "zebra.txt", "text/plain", headers=headers))
        assert item["page_content"] == ZEBRA.strip()


def test_no_temporary_file_is_left_behind(world: World) -> None:
    def leftovers() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("rag-process-*"))

    before = leftovers()
    ok(put(world, ZEBRA.encode(), "zebra.txt", "text/plain"))
    put(world, b"%PDF-1.7 garbage", "broken.pdf", PDF_TYPE)
    put(world, b"", "empty.txt", "text/plain")
    put(world, b"a" * (world.server.settings.max_file_bytes + 1), "big.txt", "text/plain")
    assert leftovers() == before


@pytest.mark.parametrize(
    "relative",
    [
        "pdf/multi-column-2p.pdf",
        "fake-power-point-table.pptx",
        "vodafone.xlsx",
        "eml/family-day.eml",
        "language-docs/eng_spa_mult.docx",
        "example-steelJIS-datasheet.html",
    ],
)
def test_real_files_come_back_as_load_file_reads_them(world: World, relative: str) -> None:
    path = MIXED_DOCS / relative
    if not path.exists():
        pytest.skip("shared test data (../shared/data/mixed_docs) is not present")
    name = path.name
    expected = load_file(path, source=name)
    content_type = expected[0].metadata["content_type"]

    items = ok(put(world, path.read_bytes(), name, content_type))

    assert [item["page_content"] for item in items] == [doc.text for doc in expected]
    for item, doc in zip(items, expected, strict=True):
        want = {**doc.metadata, "source": name, "name": name}
        if content_type == PDF_TYPE:
            want["page"] = doc.metadata["page"] - 1
            want["page_label"] = str(doc.metadata["page"])
        assert item["metadata"] == want


def _png(image: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_an_image_is_read_by_ocr(world: World) -> None:
    from tests.scanned_pages import page

    (item,) = ok(put(world, _png(page("en")), "receipt.png", "image/png"))
    assert "harbour crane" in item["page_content"]
    metadata = item["metadata"]
    assert metadata["ocr"] is True and metadata["ocr_confidence"] > 80
    assert (metadata["page"], metadata["page_label"]) == (0, "1")
    # Open WebUI sends what it calls the type; a photo without a usable name is read too.
    (unnamed,) = ok(put(world, _png(page("en")), None, "image/png"))
    assert "harbour crane" in unnamed["page_content"]


def test_a_multi_page_fax_is_one_item_per_page(world: World) -> None:
    from tests.scanned_pages import page

    out = io.BytesIO()
    first, second = page("en", ["Page one talks about cranes"]), page("en", ["Ships on two"])
    first.save(out, "TIFF", save_all=True, append_images=[second])
    items = ok(put(world, out.getvalue(), "fax.tiff", "image/tiff"))
    assert [i["metadata"]["page_label"] for i in items] == ["1", "2"]
    assert "cranes" in items[0]["page_content"] and "Ships" in items[1]["page_content"]


def test_a_scanned_pdf_is_read_page_by_page(world: World, tmp_path: Path) -> None:
    from tests.scanned_pages import image_pdf, page

    path = image_pdf(
        tmp_path / "scan.pdf",
        [page("en"), page("en", ["The scanned page about ships"])],
        text_pages={1: "A typed page about trains"},
    )
    items = ok(put(world, path.read_bytes(), "scan.pdf", PDF_TYPE))
    assert [i["metadata"]["page"] for i in items] == [0, 1]
    assert "ocr" not in items[0]["metadata"] and "trains" in items[0]["page_content"]
    assert items[1]["metadata"]["ocr"] is True and "ships" in items[1]["page_content"]
