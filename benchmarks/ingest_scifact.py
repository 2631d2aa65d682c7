"""Whole-process ingest speed and memory: SciFact docs written as .txt files, then `rag index`.

The same setup as the LlamaIndex anchor in shared/ANCHORS.md (600 docs as .txt files,
SentenceSplitter 256/32 → MiniLM → Qdrant local), so the numbers compare directly.

Run: .venv/bin/python benchmarks/ingest_scifact.py [--docs 600]
Writes benchmarks/results/ingest_scifact.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    docs = work / "docs"
    docs.mkdir()
    with SCIFACT.open(encoding="utf-8") as handle:
        for _, line in zip(range(args.docs), handle, strict=False):
            row = json.loads(line)
            (docs / f"{row['_id']}.txt").write_text(f"{row['title']}\n\n{row['text']}\n")
    rag = Path(sys.executable).parent / "rag"
    env = {"RAG_DATA_DIR": str(work / "data"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    results = {}
    for run in ("first", "second"):
        start = time.perf_counter()
        out = subprocess.run(
            [str(rag), "index", str(docs), "--knowledge", "bench", "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - start
        report = json.loads(out.stdout)
        results[run] = {
            "wall_s": round(wall, 1),
            "index_s": report["seconds"],
            "files": report["files"],
            "chunks": report["chunks"]["added"],
            "docs_per_s": round(args.docs / wall, 2),
        }
    # ru_maxrss of children is the peak of the largest child, in KiB on Linux.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    results["peak_rss_mb"] = round(peak)
    results["docs"] = args.docs
    out_path = ROOT / "benchmarks" / "results" / "ingest_scifact.json"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
