"""A four-document BEIR folder whose two queries each have one obvious answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DOCS = {
    "d1": ("Otters", "Sea otters hold hands while they sleep so that they do not drift apart."),
    "d2": ("Volcanoes", "Basaltic lava is hotter and runnier than rhyolitic lava."),
    "d3": ("Bread", "Sourdough rises because wild yeast ferments the dough overnight."),
    "d4": ("Bees", "Honey bees dance to tell their hive where the flowers are."),
}
QUERIES = {"q1": "why do otters hold hands", "q2": "how do bees share where flowers are"}
QRELS = {"q1": "d1", "q2": "d4"}


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    root = tmp_path / "toy"
    (root / "qrels").mkdir(parents=True)
    rows = [{"_id": k, "title": t, "text": x} for k, (t, x) in DOCS.items()]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rows = [{"_id": k, "text": t} for k, t in QUERIES.items()]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q, d in QRELS.items()]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def toy_knowledge(toy: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """The toy corpus as one text file per document, with qrels naming those files.

    Returns (folder, queries JSONL, qrels TSV).
    """
    folder = tmp_path / "toy-docs"
    folder.mkdir()
    for doc_id, (title, text) in DOCS.items():
        (folder / f"{doc_id}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")
    qrels = tmp_path / "toy-qrels.tsv"
    qrels.write_text("".join(f"{q}\t{d}.txt\t1\n" for q, d in QRELS.items()), encoding="utf-8")
    return folder, toy / "queries.jsonl", qrels
