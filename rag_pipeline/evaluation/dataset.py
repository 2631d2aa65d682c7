"""Retrieval test sets: BEIR folders, or a user's own queries and qrels over a knowledge base."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from rag_pipeline.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """Queries with relevance judgments, and (for BEIR) the corpus they are judged on."""

    name: str
    split: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text); empty for a knowledge base
    fingerprint: str = ""

    def subset(self, queries: int, distractors: int = 0, seed: int = 0) -> Dataset:
        """Return the first ``queries`` queries, their relevant docs and some random others."""
        chosen = sorted(self.queries, key=_natural)[:queries]
        qrels = {q: self.qrels[q] for q in chosen}
        relevant = {d for judged in qrels.values() for d in judged if d in self.corpus}
        others = sorted(set(self.corpus) - relevant, key=_natural)
        rng = random.Random(seed)
        keep = relevant | set(rng.sample(others, min(distractors, len(others))))
        return Dataset(
            name=f"{self.name}-q{queries}-d{distractors}-s{seed}",
            split=self.split,
            queries={q: self.queries[q] for q in chosen},
            qrels=qrels,
            corpus={d: self.corpus[d] for d in sorted(keep, key=_natural)},
            fingerprint=f"{self.fingerprint}:{queries}:{distractors}:{seed}",
        )


def _natural(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 62, key)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a TREC/BEIR qrels TSV (``query-id corpus-id score``, header optional)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if not row or row[0].strip() in ("query-id", "query_id", "qid"):
                continue
            if len(row) == 4:  # TREC: qid 0 docid rel
                row = [row[0], row[2], row[3]]
            if len(row) != 3:
                raise ConfigError(f"{path}: expected 'query-id, corpus-id, score' per line: {row}")
            query, doc, score = (c.strip() for c in row)
            qrels.setdefault(query, {})[doc] = int(score)
    return qrels


def read_queries(path: Path) -> dict[str, str]:
    """Read BEIR-style queries JSONL (``{"_id", "text"}`` per line)."""
    queries = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
            except (ValueError, KeyError) as exc:
                raise ConfigError(f"{path}:{number}: not a {{'_id', 'text'}} JSON line") from exc
    return queries


def load_beir(folder: str | Path, split: str = "test") -> Dataset:
    """Load a BEIR folder: corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""
    root = Path(folder)
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for needed in (corpus_path, queries_path, qrels_path):
        if not needed.is_file():
            raise ConfigError(f"not a BEIR dataset folder: {needed} is missing")
    qrels = read_qrels(qrels_path)
    all_queries = read_queries(queries_path)
    missing = sorted(set(qrels) - set(all_queries))
    if missing:
        raise ConfigError(f"{qrels_path}: queries {missing[:5]} are not in {queries_path}")
    corpus: dict[str, tuple[str, str]] = {}
    digest = hashlib.sha256()
    with corpus_path.open("rb") as handle:
        for line in handle:
            digest.update(line)
            if line.strip():
                row = json.loads(line)
                corpus[str(row["_id"])] = (row.get("title") or "", row.get("text") or "")
    return Dataset(
        name=root.name,
        split=split,
        queries={q: all_queries[q] for q in sorted(qrels, key=_natural)},
        qrels=qrels,
        corpus=corpus,
        fingerprint=digest.hexdigest()[:16],
    )


def load_knowledge_queries(queries: str | Path, qrels: str | Path, name: str) -> Dataset:
    """Load a user's queries and qrels, judged on source files (or ``file#chunk``)."""
    qrels_map = read_qrels(Path(qrels))
    all_queries = read_queries(Path(queries))
    missing = sorted(set(qrels_map) - set(all_queries))
    if missing:
        raise ConfigError(f"{qrels}: queries {missing[:5]} are not in {queries}")
    return Dataset(
        name=name,
        split="knowledge",
        queries={q: all_queries[q] for q in qrels_map},
        qrels=qrels_map,
        corpus={},
    )
