"""SciFact documents as .txt files ("title\\n\\ntext"), as every ingest benchmark feeds them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"


def write_docs(folder: Path, count: int = 0, corpus: Path = SCIFACT) -> int:
    """Write the first ``count`` documents (0: all) of a corpus (.jsonl or .jsonl.gz) into
    ``folder`` as ``<id>.txt``; return how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if corpus.suffix == ".gz" else open
    written = 0
    with opener(corpus, "rt", encoding="utf-8") as handle:
        for line in handle:
            if count and written >= count:
                break
            row = json.loads(line)
            (folder / f"{row['_id']}.txt").write_text(f"{row['title']}\n\n{row['text']}\n")
            written += 1
    return written
