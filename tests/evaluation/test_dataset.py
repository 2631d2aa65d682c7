from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_pipeline.errors import ConfigError
from rag_pipeline.evaluation.dataset import load_beir, load_knowledge_queries, read_qrels


def make_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    docs = [{"_id": str(i), "title": f"T{i}", "text": f"text {i}"} for i in range(10)]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    queries = [{"_id": str(i), "text": f"query {i}"} for i in range(5)]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (root / "qrels" / "test.tsv").write_bytes(
        b"query-id\tcorpus-id\tscore\r\n1\t3\t1\r\n2\t4\t1\r\n"
    )
    return root


def test_beir_folder_loads_only_judged_queries(tmp_path: Path) -> None:
    data = load_beir(make_beir(tmp_path / "toy"))
    assert data.name == "toy" and data.split == "test"
    assert data.queries == {"1": "query 1", "2": "query 2"}
    assert data.qrels == {"1": {"3": 1}, "2": {"4": 1}}
    assert data.corpus["3"] == ("T3", "text 3")
    assert len(data.fingerprint) == 16


def test_subset_keeps_relevant_docs_and_is_deterministic(tmp_path: Path) -> None:
    data = load_beir(make_beir(tmp_path / "toy"))
    small = data.subset(1, distractors=3, seed=0)
    assert small.queries == {"1": "query 1"}
    assert "3" in small.corpus and len(small.corpus) == 4
    assert small.corpus == data.subset(1, distractors=3, seed=0).corpus
    assert small.fingerprint != data.fingerprint


def test_missing_parts_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"corpus\.jsonl"):
        load_beir(tmp_path)
    root = make_beir(tmp_path / "toy")
    with pytest.raises(ConfigError, match=r"train\.tsv"):
        load_beir(root, split="train")


def test_knowledge_qrels_name_files(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text('{"_id": "a", "text": "refund policy"}\n')
    (tmp_path / "q.tsv").write_text("a\thandbook.md\t1\na\tfaq.txt#2\t1\n")
    data = load_knowledge_queries(tmp_path / "q.jsonl", tmp_path / "q.tsv", "kb")
    assert data.qrels == {"a": {"handbook.md": 1, "faq.txt#2": 1}}
    (tmp_path / "bad.tsv").write_text("a\tonly-two\n")
    with pytest.raises(ConfigError, match="expected"):
        read_qrels(tmp_path / "bad.tsv")
