"""Compare the embedded store engines: qdrant-edge vs qdrant-client's local mode (on disk).

Run: .venv/bin/python benchmarks/store_backends.py [--points 15000] [--queries 200]
Writes benchmarks/results/store_backends.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from rag_pipeline.store import EdgeStore, QdrantStore, SparseVector, StoredPoint

DIM = 384


def make_points(n: int, rng: np.random.Generator) -> list[StoredPoint]:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    points = []
    for i in range(n):
        terms = sorted({int(t) for t in rng.integers(0, 30000, size=40)})
        points.append(
            StoredPoint(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, str(i))),
                vector=vectors[i],
                payload={"text": "x" * 800, "source": f"doc{i // 3}.txt", "chunk_index": i % 3},
                sparse=SparseVector(terms, [1.0] * len(terms)),
            )
        )
    return points


def run(name: str, store, points, queries, batch: int = 256) -> dict:
    store.ensure_collection("bench", model="bench", dimension=DIM)
    start = time.perf_counter()
    for i in range(0, len(points), batch):
        store.upsert("bench", points[i : i + batch])
    upsert_s = time.perf_counter() - start
    results = {"backend": name, "points": len(points), "upsert_s": round(upsert_s, 2)}
    for mode in ("dense", "hybrid"):
        latencies = []
        for q in queries:
            t = time.perf_counter()
            store.search("bench", dense=q[0], sparse=q[1], limit=10, mode=mode)
            latencies.append((time.perf_counter() - t) * 1000)
        latencies.sort()
        results[f"{mode}_p50_ms"] = round(statistics.median(latencies), 2)
        results[f"{mode}_p95_ms"] = round(latencies[int(len(latencies) * 0.95) - 1], 2)
    start = time.perf_counter()
    n = sum(1 for _ in store.scroll_payloads("bench", ["source"]))
    results["scroll_all_s"] = round(time.perf_counter() - start, 2)
    assert n == len(points)
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=15000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    points = make_points(args.points, rng)
    queries = [
        (rng.normal(size=DIM).astype(np.float32), SparseVector(list(range(0, 300, 30)), [1.0] * 10))
        for _ in range(args.queries)
    ]
    rows = []
    for name in ("qdrant-edge", "qdrant-client-local"):
        folder = Path(tempfile.mkdtemp())
        store = EdgeStore(folder) if name == "qdrant-edge" else QdrantStore(path=str(folder))
        rows.append(run(name, store, points, queries))
        shutil.rmtree(folder)
    out = Path(__file__).parent / "results" / "store_backends.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
