"""One collection of three languages: Korean, Japanese and English passages with each
language's own questions, as a BEIR folder (split ``dev``).

The per-language sets measure a collection of one language; a user's folder often holds
several. In one mixed collection a question may be about text in its own language (these
questions) or in another (``benchmarks/crosslingual``), so a fusion rule for mixed
collections is measured on both. Query and document ids get a ``ko:``/``ja:``/``en:``
prefix so results can be split by language.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag_pipeline.evaluation.dataset import Dataset, load_beir

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LANGUAGES = ("ko", "ja", "en")


def _parts(queries: int, english_docs: int) -> dict[str, Dataset]:
    # Whole Korean and Japanese dev corpora (1,488 and 536 passages); SciFact's test
    # questions' documents plus random others up to ``english_docs``.
    scifact = load_beir(DATA / "scifact", "test")
    return {
        "ko": load_beir(DATA / "ko_tydiqa", "dev").subset(queries, distractors=10**6),
        "ja": load_beir(DATA / "ja_jsquad", "dev").subset(queries, distractors=10**6),
        "en": scifact.subset(queries, distractors=max(0, english_docs - queries), seed=0),
    }


def build_mixed(folder: Path, queries: int = 300, english_docs: int = 1500) -> Path:
    """Write the mixed set into ``folder`` (once) and return it."""
    if (folder / "qrels" / "dev.tsv").is_file():
        return folder
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    parts = _parts(queries, english_docs)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for lang, part in parts.items():
            for doc_id, (title, text) in part.corpus.items():
                row = {"_id": f"{lang}:{doc_id}", "title": title, "text": text}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
        for lang, part in parts.items():
            for query_id, text in part.queries.items():
                out.write(json.dumps({"_id": f"{lang}:{query_id}", "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    for lang, part in parts.items():
        for query_id, judged in part.qrels.items():
            lines += [f"{lang}:{query_id}\t{lang}:{doc}\t{grade}" for doc, grade in judged.items()]
    (folder / "qrels" / "dev.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
