from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rag_pipeline.chunking import Chunker, chunk_id, count_tokens, embedding_text
from rag_pipeline.errors import ConfigError
from rag_pipeline.types import Document

JA = (
    "経費の申請は、支出した月の翌月10日までに経費精算システムから行う。"
    "交通費は実費を支給する。宿泊費の上限は一泊一万二千円とする。"
    "領収書は必ず添付すること！海外出張の場合は事前に部長の承認が必要ですか？"
)
KO = (
    "재택근무는 주 2회까지 가능합니다. 신청은 전날까지 팀장에게 해야 합니다. "
    "근무 시간은 오전 10시부터 오후 4시까지입니다. 회사 노트북만 사용해야 합니다."
)
SENTENCE_ENDS = ("。", "！", "？", ".", "!", "?")


def test_rejects_overlap_not_smaller_than_size() -> None:
    with pytest.raises(ConfigError, match="chunk_overlap"):
        Chunker(chunk_size=64, chunk_overlap=64)
    with pytest.raises(ConfigError, match="chunk_size"):
        Chunker(chunk_size=4, chunk_overlap=0)


def test_chunks_respect_the_token_size() -> None:
    text = " ".join(f"Sentence number {i} talks about tents and boots." for i in range(300))
    chunker = Chunker(chunk_size=64, chunk_overlap=8)
    chunks = chunker.split([Document(text=text, metadata={"title": "t"})], "a.txt")
    assert len(chunks) > 10
    assert all(count_tokens(c.text) <= 64 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))


@pytest.mark.parametrize("text", [JA * 4, KO * 4], ids=["japanese", "korean"])
def test_cjk_text_splits_at_sentence_ends(text: str) -> None:
    chunker = Chunker(chunk_size=48, chunk_overlap=0)
    chunks = chunker.split([Document(text=text)], "cjk.txt")
    assert len(chunks) >= 3
    for chunk in chunks:
        assert count_tokens(chunk.text) <= 48
        assert chunk.text.endswith(SENTENCE_ENDS), chunk.text
    # Nothing is lost: every sentence of the input is in some chunk.
    joined = "".join(c.text.replace(" ", "") for c in chunks)
    for sentence in ("宿泊費の上限は一泊一万二千円とする。", "회사노트북만사용해야합니다."):
        if sentence.replace(" ", "")[:4] in text.replace(" ", ""):
            assert sentence.replace(" ", "") in joined


def test_markdown_heading_path_is_kept() -> None:
    md = (
        "# Handbook\n\nWelcome.\n\n## Returns\n\nReturn within 45 days.\n\n"
        "### Final sale\n\nClearance items cannot be returned.\n\n## Shipping\n\nFree over $50."
    )
    chunks = Chunker().split([Document(text=md, markdown=True, metadata={"title": "H"})], "h.md")
    paths = {c.text.splitlines()[-1]: c.metadata.get("heading_path") for c in chunks}
    assert paths["Clearance items cannot be returned."] == ["Handbook", "Returns", "Final sale"]
    assert paths["Free over $50."] == ["Handbook", "Shipping"]


def test_plain_text_ignores_hash_lines() -> None:
    doc = Document(text="# not a heading\n\nplain words", markdown=False)
    chunks = Chunker().split([doc], "p.txt")
    assert "heading_path" not in chunks[0].metadata


def test_ids_are_deterministic_and_content_addressed() -> None:
    doc = Document(text="Alpha beta gamma. " * 50)
    first = Chunker(chunk_size=32, chunk_overlap=4).split([doc], "x.txt")
    second = Chunker(chunk_size=32, chunk_overlap=4).split([doc], "x.txt")
    assert [c.id for c in first] == [c.id for c in second]
    assert chunk_id("x.txt", 0, "a") != chunk_id("x.txt", 0, "b")
    assert chunk_id("x.txt", 0, "a") != chunk_id("y.txt", 0, "a")
    assert len({c.id for c in first}) == len(first)


def test_pages_keep_their_page_number() -> None:
    docs = [Document(text=f"Page {n} text about safety.", metadata={"page": n}) for n in (1, 2)]
    chunks = Chunker().split(docs, "r.pdf")
    assert [c.metadata["page"] for c in chunks] == [1, 2]


def test_embedding_text_puts_missing_context_in_front() -> None:
    doc = Document(text="# Guide\n\nIntro.\n\n## Boots\n\nWax them yearly.", markdown=True)
    chunk = Chunker().split([doc], "g.md")[-1]
    # "Boots" is already in the chunk's own first line; only the parent heading is added.
    assert embedding_text(chunk) == "Guide\n## Boots\n\nWax them yearly."
    long_section = "# Guide\n\n## Boots\n\n" + "Wax the leather of them every year. " * 60
    tail = Chunker(chunk_size=40, chunk_overlap=0).split(
        [Document(long_section, {"title": "Care"}, True)], "g.md"
    )[-1]
    assert embedding_text(tail).startswith("Care > Guide > Boots\n")


def test_heading_without_body_joins_the_next_section() -> None:
    doc = Document(text="# Guide\n\n## Boots\n\nWax them yearly.", markdown=True)
    chunks = Chunker().split([doc], "g.md")
    assert [c.text for c in chunks] == ["# Guide\n\n## Boots\n\nWax them yearly."]
    assert chunks[0].metadata["heading_path"] == ["Guide", "Boots"]


def test_first_use_from_many_threads_at_once() -> None:
    # A server's processing threads chunk their first files at the same moment; a fresh
    # interpreter makes this the first use of the tokenizer.
    code = """
import os
from concurrent.futures import ThreadPoolExecutor

from rag_pipeline.chunking import Chunker
from rag_pipeline.types import Document

chunker = Chunker(chunk_size=32, chunk_overlap=4)
docs = [Document(text=f"Thread {i} writes about tents. " * 20) for i in range(8)]
with ThreadPoolExecutor(8) as pool:
    results = list(pool.map(lambda d: chunker.split([d], "t.txt"), docs))
print(sorted(len(chunks) for chunks in results))
print("TIKTOKEN_CACHE_DIR" in os.environ)
"""
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    counts, env_left = done.stdout.splitlines()
    chunker = Chunker(chunk_size=32, chunk_overlap=4)  # the same work in this process
    docs = [Document(text=f"Thread {i} writes about tents. " * 20) for i in range(8)]
    expected = sorted(len(chunker.split([d], "t.txt")) for d in docs)
    assert min(expected) > 1
    assert counts == str(expected)
    assert env_left == "False"
