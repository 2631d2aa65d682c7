"""`rag index` locally and on a local Ray cluster: the same SciFact docs, wall time and overhead.

The setup of benchmarks/ingest_scifact.py (SciFact docs as .txt files, default settings:
chunks 256/32, the packaged MiniLM on ONNX Runtime fp32, the embedded store), indexed by
the whole `rag index` process, alternately:

- ``local``: `rag index DOCS --json` (extraction worker processes + the embedding thread);
- ``ray``: `rag index DOCS --json --ray`, which starts a local Ray cluster on this
  machine, runs extraction as Ray tasks and embedding on one model-holding actor, writes
  through the driver (the embedded store) and shuts the cluster down;
- ``ray_rerun``: the same command again: nothing changed, so no cluster is started.

Then, in one process, the Ray run split in two: starting the local cluster, and indexing
on it once it is up (what a run on an already running cluster costs). Throughput per
worker divides chunks per second by the CPUs each run had for its stages.

Run: .venv/bin/python benchmarks/ray_ingest.py [--docs 600] [--rounds 1]
(needs `pip install -e .[ray]`). Writes benchmarks/results/ray_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _scifact import write_docs

ROOT = Path(__file__).resolve().parents[1]

# Starting the cluster and indexing on it, timed apart in one driver process.
SPLIT = """
import json, logging, sys, time
import ray
from rag_pipeline import Pipeline, Settings
from rag_pipeline.ingest.distributed import RayIndexer

if __name__ == "__main__":
    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    started = time.perf_counter() - start
    cpus = int(ray.cluster_resources().get("CPU", 0))
    with Pipeline(Settings()) as pipeline:
        report = pipeline.index(sys.argv[1], "bench", indexer=RayIndexer)
    ray.shutdown()
    print(json.dumps({"cluster_start_s": round(started, 1), "index_s": round(report.seconds, 1),
                      "chunks": report.chunks_added, "cpus": cpus}))
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Run a command; return its wall seconds and stdout."""
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return wall, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ray-ingest-bench-"))
    docs = work / "docs"
    write_docs(docs, args.docs)
    rag = str(Path(sys.executable).parent / "rag")
    cache = work / "models"
    base = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "HOME": os.environ.get("HOME", "/"),
        "RAG_MODEL_CACHE_DIR": str(cache),
    }
    # The ONNX export happens once per machine and is not part of an indexing run.
    subprocess.run(
        [sys.executable, "-c", "from rag_pipeline import Pipeline; Pipeline().warm_up()"],
        env={**base, "RAG_DATA_DIR": str(work / "warm")},
        check=True,
    )
    cpus = os.cpu_count() or 1
    runs: dict[str, list[dict]] = {"local": [], "ray": [], "ray_rerun": []}
    for round_ in range(args.rounds):
        for name, flags in (("local", []), ("ray", ["--ray"])):
            env = {**base, "RAG_DATA_DIR": str(work / f"{name}-{round_}")}
            cmd = [rag, "index", str(docs), "--knowledge", "bench", "--json", *flags]
            wall, out = timed(cmd, env)
            report = json.loads(out)
            chunks = report["chunks"]["added"]
            runs[name].append(
                {
                    "wall_s": round(wall, 1),
                    "chunks": chunks,
                    "files": report["files"],
                    "chunks_per_s": round(chunks / wall, 1),
                    "chunks_per_s_per_cpu": round(chunks / wall / cpus, 1),
                }
            )
            print(name, runs[name][-1], flush=True)
            if name == "ray":
                again, out = timed(cmd, env)
                runs["ray_rerun"].append(
                    {"wall_s": round(again, 1), "embedded": json.loads(out)["chunks"]["added"]}
                )
                print("ray_rerun", runs["ray_rerun"][-1], flush=True)
    env = {**base, "RAG_DATA_DIR": str(work / "split")}
    _, out = timed([sys.executable, "-c", SPLIT, str(docs)], env)
    split = json.loads(out)
    split["chunks_per_s_on_running_cluster"] = round(split["chunks"] / split["index_s"], 1)
    split["chunks_per_s_per_cpu_on_running_cluster"] = round(
        split["chunks"] / split["index_s"] / split["cpus"], 1
    )
    print("split", split, flush=True)
    best = {name: min(r["wall_s"] for r in runs[name]) for name in ("local", "ray")}
    summary = {
        "docs": args.docs,
        "machine": {"cpus": cpus, "python": platform.python_version()},
        "runs": runs,
        "ray_split": split,
        "ray_overhead_s": round(best["ray"] - best["local"], 1),
        "ray_over_local": round(best["ray"] / best["local"], 2),
        "ray_on_running_cluster_over_local": round(split["index_s"] / best["local"], 2),
        "workers": {
            "local": f"{cpus} extraction processes + the embedding thread (ONNX Runtime, "
            f"{cpus} threads)",
            "ray": f"Ray tasks on {cpus} CPUs, one of them held by the embedding actor "
            "(ONNX Runtime, one thread per core)",
        },
        "note": "one machine, its 2 cores shared with other people's work while this ran: "
        "compare the runs of one file with each other, not with other files",
    }
    out_path = ROOT / "benchmarks" / "results" / "ray_ingest.json"
    out_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
