"""Every format, indexed for real, comes back for a sentence taken from it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_pipeline import Pipeline, Settings
from rag_pipeline.embedding import LocalEmbedder
from rag_pipeline.ingest import walk_files
from rag_pipeline.loaders import load_file

from .conftest import SAMPLE_DOCS, SHARED_DATA

MIXED = SHARED_DATA / "mixed_docs"
FILES = sorted(walk_files(MIXED)) if MIXED.is_dir() else []


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalEmbedder
) -> Iterator[Pipeline]:
    if not FILES:
        pytest.skip("shared test data (../shared/data/mixed_docs) is not present")
    root = tmp_path_factory.mktemp("corpus")
    shutil.copytree(MIXED, root / "mixed_docs")
    shutil.copytree(SAMPLE_DOCS, root / "sample_docs")
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        report = pipeline.index(root, "all")
        assert report.errors == [], report.errors
        yield pipeline


def probe_sentence(path: Path) -> str:
    """Pick a sentence from the middle of the file's own extracted text."""
    text = "\n\n".join(d.text for d in load_file(path))
    # Lines wrapped by a page layout are one sentence; paragraphs stay apart.
    text = re.sub(r"(?<!\n)\n(?!\n)", " ", text)
    candidates = [
        " ".join(s.split())
        for s in re.split(r"(?<=[.!?。])\s+|\n+", text)
        if 6 <= len(s.split()) <= 40 and not s.lstrip().startswith(("#", "|"))
    ]
    if not candidates:  # tables and short files: take the longest line
        candidates = [max((" ".join(p.split()) for p in text.split("\n\n")), key=len)[:300]]
    return candidates[len(candidates) // 2]


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(MIXED).as_posix() for p in FILES])
def test_a_sentence_finds_its_file_in_the_top_3(indexed: Pipeline, path: Path) -> None:
    sentence = probe_sentence(path)
    hits = indexed.query(sentence, "all", top_k=3)
    expected = "mixed_docs/" + path.relative_to(MIXED).as_posix()
    assert expected in [h.source for h in hits], (sentence, [h.source for h in hits])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("出張の宿泊費の上限はいくらですか？", "sample_docs/expense-policy-ja.md"),
        ("テントのレンタル料金はいくらですか？", "sample_docs/store-guide-ja.html"),
        ("재택근무는 어떻게 신청하나요?", "sample_docs/remote-work-ko.txt"),
        ("직원 할인율은 얼마인가요?", "sample_docs/benefits-ko.docx"),
        ("임시 휴업일은 언제인가요?", "sample_docs/ko-ja-notice.pdf"),
        ("how many business days until a card refund shows up?", "sample_docs/handbook.md"),
    ],
)
def test_cjk_and_english_questions_find_their_document(
    indexed: Pipeline, query: str, expected: str
) -> None:
    hits = indexed.query(query, "all", top_k=3)
    assert hits[0].source == expected, [h.source for h in hits]


def test_pdf_hits_carry_page_numbers(indexed: Pipeline) -> None:
    hits = indexed.query("Staff reported near misses compared with Q1", "all", top_k=3)
    top = hits[0]
    assert top.source == "sample_docs/safety-report.pdf"
    assert top.metadata["page"] in (1, 2)
