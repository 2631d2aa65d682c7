"""Hybrid and dense query latency in process on an existing index (e.g. `rag eval`'s SciFact).

Run: .venv/bin/python benchmarks/query_latency.py --data-dir DIR [--knowledge ID] [--queries N]
Times `Retriever.search` (query embedding, sparse encoding, the Qdrant query and hit
building) over the first N SciFact test queries, at k=10 and k=100; prints p50/p95 in ms.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rag_pipeline import Pipeline, Settings

QUERIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "queries.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--knowledge")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    lines = QUERIES.read_text(encoding="utf-8").splitlines()[: args.queries]
    queries = [json.loads(line)["text"] for line in lines]
    results = {}
    with Pipeline(Settings(data_dir=args.data_dir)) as pipeline:
        knowledge = args.knowledge or pipeline.store.list_collections()[0]
        for mode in ("dense", "hybrid"):
            retriever = pipeline.retriever(mode)
            for k in (10, 100):
                retriever.search(queries[0], [knowledge], top_k=k)  # warm
                times = []
                for query in queries:
                    start = time.perf_counter()
                    retriever.search(query, [knowledge], top_k=k)
                    times.append((time.perf_counter() - start) * 1000)
                times.sort()
                results[f"{mode}@{k}"] = {
                    "p50_ms": round(times[len(times) // 2], 1),
                    "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                }
    print(json.dumps({"knowledge": knowledge, **results}, indent=2))


if __name__ == "__main__":
    main()
