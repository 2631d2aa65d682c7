"""Text files decode correctly whatever legacy encoding they were saved in."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from rag_pipeline.loaders import load_file
from rag_pipeline.loaders.text import decode_text

JAPANESE = "日本語のテキストです。東京は晴れ、気温は二十度。"
KOREAN = "한국어 텍스트입니다. 서울은 맑고 기온은 이십 도입니다."
WESTERN = "Café crème — naïve façade, “quoted” prices: 25 € or £5."


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("utf-8", JAPANESE + WESTERN),
        ("shift_jis", JAPANESE),
        ("euc_jp", JAPANESE),
        ("euc_kr", KOREAN),
        ("cp1252", WESTERN),
    ],
)
@pytest.mark.parametrize("repeat", [1, 40], ids=["short", "long"])
def test_txt_file_in_encoding(tmp_path: Path, encoding: str, text: str, repeat: int) -> None:
    path = tmp_path / f"sample-{encoding}.txt"
    body = "\n".join([text] * repeat)
    path.write_bytes(body.encode(encoding))
    (doc,) = load_file(path)
    assert doc.text == body


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("こんにちは", "shift_jis"),
        ("テスト", "shift_jis"),
        ("価格: 100円", "shift_jis"),
        ("こんにちは", "euc_jp"),
        ("안녕하세요", "euc_kr"),
        ("서울", "euc_kr"),
        ("가격: 100원", "euc_kr"),
        ("Résumé", "cp1252"),
        ("naïve", "cp1252"),
        ("£5", "cp1252"),
        ("Привет, как дела?", "cp1251"),
    ],
)
def test_very_short_legacy_samples(text: str, encoding: str) -> None:
    assert decode_text(text.encode(encoding)) == text


def test_csv_in_shift_jis(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes("名前,年齢\n山田,30\n".encode("shift_jis"))
    (doc,) = load_file(path)
    assert doc.text == "名前,年齢\n山田,30"
    assert doc.metadata["content_type"] == "text/csv"


def test_tsv_in_euc_kr(tmp_path: Path) -> None:
    path = tmp_path / "people.tsv"
    path.write_bytes("이름\t나이\n김철수\t30\n".encode("euc_kr"))
    (doc,) = load_file(path)
    assert doc.text == "이름\t나이\n김철수\t30"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_text_with_byte_order_mark(tmp_path: Path, encoding: str) -> None:
    text = "BOM text: " + JAPANESE + WESTERN
    data = text.encode(encoding)
    if encoding == "utf-16-le":
        data = codecs.BOM_UTF16_LE + data
    elif encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    path = tmp_path / "bom.txt"
    path.write_bytes(data)
    (doc,) = load_file(path)
    assert doc.text == text


def test_crlf_line_ends_become_lf(tmp_path: Path) -> None:
    path = tmp_path / "windows.txt"
    path.write_bytes(b"line one\r\nline two\r\n")
    assert load_file(path)[0].text == "line one\nline two"


def test_json_and_jsonl_keep_their_text(tmp_path: Path) -> None:
    json_path = tmp_path / "data.json"
    json_path.write_text('{"name": "Zürich", "n": 1}', encoding="utf-8")
    jsonl_path = tmp_path / "data.jsonl"
    jsonl_path.write_text('{"a": 1}\n{"a": 2}\n', encoding="utf-8")
    (json_doc,) = load_file(json_path)
    (jsonl_doc,) = load_file(jsonl_path)
    assert json_doc.text == '{"name": "Zürich", "n": 1}'
    assert json_doc.metadata["content_type"] == "application/json"
    assert json_doc.markdown is False
    assert jsonl_doc.text == '{"a": 1}\n{"a": 2}'


def test_markdown_in_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes("# Résumé\n\nCafé crème.\n".encode("cp1252"))
    (doc,) = load_file(path)
    assert doc.text == "# Résumé\n\nCafé crème."
    assert doc.metadata["title"] == "Résumé"
    assert doc.markdown is True
