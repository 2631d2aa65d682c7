"""Vectors per GB for 384-dimension vectors (all-MiniLM-L6-v2), with and without int8
scalar quantization, on disk and in RAM, measured on the embedded engine (qdrant-edge).

Each layout is built as a real shard of N and of 2N random unit vectors (no payload),
optimized (HNSW graph and quantized copy built), then opened in a fresh process that runs
queries; disk is the shard folder's size, RAM the process's resident memory growth
(anonymous memory, and mapped file pages it touched). Per-vector figures are the growth
from N to 2N divided by N, so fixed costs (the 32 MB write-ahead log, preallocated files,
the engine's threads) drop out. Qdrant's documented estimate
(N * dim * 4 bytes * 1.5) is written beside the measurements for comparison.

    .venv/bin/python benchmarks/qdrant_sizing.py [--n 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
GIB = 1024**3
RESULT = Path(__file__).parent / "results" / "qdrant_sizing.json"
LAYOUTS = {
    "float32, in RAM": {"on_disk": False, "int8": False},
    "float32, on disk": {"on_disk": True, "int8": False},
    "int8 in RAM + float32 on disk": {"on_disk": True, "int8": True},
    "int8 + float32, in RAM": {"on_disk": False, "int8": True},
}


def _config(on_disk: bool, int8: bool) -> Any:
    import qdrant_edge as qe

    return qe.EdgeConfig(
        vectors={
            "dense": qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine, on_disk=on_disk)
        },
        on_disk_payload=on_disk,
        # Index (HNSW + quantized copy) every segment, as a server does for large ones.
        optimizers=qe.EdgeOptimizersConfig(indexing_threshold=100),
        quantization_config=qe.ScalarQuantizationConfig(qe.ScalarType.Int8, always_ram=True)
        if int8
        else None,
    )


def build(path: Path, n: int, on_disk: bool, int8: bool) -> float:
    """Write n random unit vectors into a new shard and optimize it; return seconds."""
    import qdrant_edge as qe

    started = time.perf_counter()
    rng = np.random.default_rng(0)
    shard = qe.EdgeShard.create(str(path), _config(on_disk, int8))
    for start in range(0, n, 2000):
        block = rng.normal(size=(min(2000, n - start), DIM)).astype(np.float32)
        points = [qe.Point(start + i, {"dense": v.tolist()}, {}) for i, v in enumerate(block)]
        shard.update(qe.UpdateOperation.upsert_points(points))
    shard.optimize()
    shard.flush()
    shard.close()
    return time.perf_counter() - started


def _rss() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def measure(path: str) -> None:
    """In a fresh process: open the shard, run queries, print the memory it grew by."""
    import qdrant_edge as qe

    rng = np.random.default_rng(1)
    before = _rss()
    shard = qe.EdgeShard.load(path)
    for _ in range(300):
        query = qe.Query.Nearest(rng.normal(size=DIM).astype(np.float32).tolist(), using="dense")
        shard.query(qe.QueryRequest(limit=10, query=query))
    after = _rss()
    shard.close()
    print(json.dumps({k: after[k] - before[k] for k in after}))


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="vectors per layout")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    rows = []
    work = Path(tempfile.mkdtemp(prefix="qdrant-sizing-"))
    try:
        for label, layout in LAYOUTS.items():
            sizes = {}
            for n in (args.n, 2 * args.n):
                path = work / f"{len(rows)}-{n}"
                seconds = build(path, n, **layout)
                out = subprocess.run(
                    [sys.executable, __file__, "--measure", str(path)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                sizes[n] = {"disk": folder_bytes(path), "seconds": seconds}
                sizes[n].update(json.loads(out.strip().splitlines()[-1]))
                shutil.rmtree(path)
            small, large = sizes[args.n], sizes[2 * args.n]

            def per_vector(key: str, small: dict = small, large: dict = large) -> float:
                return (large[key] - small[key]) / args.n

            disk, ram = per_vector("disk"), per_vector("VmRSS")
            rows.append(
                {
                    "layout": label,
                    "vectors": [args.n, 2 * args.n],
                    "build_seconds": [round(small["seconds"], 1), round(large["seconds"], 1)],
                    "disk_bytes_per_vector": round(disk, 1),
                    "ram_bytes_per_vector": round(ram, 1),
                    "ram_anon_bytes_per_vector": round(per_vector("RssAnon"), 1),
                    "ram_file_bytes_per_vector": round(per_vector("RssFile"), 1),
                    "vectors_per_gib_disk": int(GIB / disk),
                    "vectors_per_gib_ram": int(GIB / max(ram, 1.0)),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import qdrant_edge

    formula = {
        # Qdrant's capacity-planning rule: vectors * dimension * 4 bytes * 1.5 (graph, overhead).
        "float32_ram_bytes_per_vector": DIM * 4 * 1.5,
        "float32_vectors_per_gib_ram": int(GIB / (DIM * 4 * 1.5)),
        # int8: one byte per dimension in RAM (same 1.5 overhead), float32 originals on disk.
        "int8_ram_bytes_per_vector": DIM * 1 * 1.5,
        "int8_vectors_per_gib_ram": int(GIB / (DIM * 1 * 1.5)),
    }
    result = {
        "benchmark": "qdrant_sizing",
        "command": f"python benchmarks/qdrant_sizing.py --n {args.n}",
        "engine": f"qdrant-edge {getattr(qdrant_edge, '__version__', 'py 0.9')}",
        "dimension": DIM,
        "payload": "none (vectors only)",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "measured": rows,
        "computed_from_qdrant_formula": formula,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
