"""`rag serve` driven through its API the way the Open WebUI anchor was: upload, process, add.

The same measure as the Open WebUI row of shared/ANCHORS.md (SciFact docs uploaded through
`POST /api/v1/files/`, processed in the background, added to a knowledge base, then queried
through `POST /api/v1/retrieval/query/collection` with k=10), on the embedded defaults.
The client is `rag push`; the server is a separate `rag serve` process whose peak RSS
(VmHWM) is read from /proc when it is done.

Run: [RAG_...=...] .venv/bin/python benchmarks/server_ingest.py [--docs 1000] [--out NAME.json]
Writes benchmarks/results/server_ingest.json (or NAME.json), with the RAG_* settings used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _scifact import write_docs
from _serve import start_server

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument(
        "--out", default="server_ingest.json", help="file under benchmarks/results/"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    docs = work / "docs"
    write_docs(docs, args.docs)
    bin_dir = Path(sys.executable).parent
    rag_bin = str(bin_dir / "rag")
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(work / "data"),
        "HF_HUB_OFFLINE": "1",
    }

    def rag(*argv: str) -> str:
        out = subprocess.run(
            [str(bin_dir / "rag"), *argv], env=env, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    # The one-time ONNX export (torch, ~1 GB while it runs) is not part of serving.
    subprocess.run(
        [sys.executable, "-c", "from rag_pipeline import Pipeline; Pipeline().warm_up()"],
        env=env,
        check=True,
    )
    rag("users", "create", "--email", "bench@example.com", "--password", "bench-password")
    key = rag("keys", "create", "--email", "bench@example.com").split()[-1]
    server, url = start_server(env)
    try:
        idle_rss = _peak_rss_mb(server.pid)
        results: dict[str, object] = {
            "docs": args.docs,
            "settings": {k: v for k, v in sorted(os.environ.items()) if k.startswith("RAG_")},
            "server_rss_after_start_mb": idle_rss,
        }
        for run in ("first", "second"):
            start = time.perf_counter()
            out = subprocess.run(
                [
                    rag_bin,
                    "push",
                    str(docs),
                    "--server",
                    url,
                    "--api-key",
                    key,
                    "-k",
                    "bench",
                    "--json",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - start
            report = json.loads(out.stdout)
            results[run] = {
                "wall_s": round(wall, 1),
                "files": report["files"],
                "docs_per_s": round(args.docs / wall, 2),
            }
        results["server_peak_rss_mb"] = round(_peak_rss_mb(server.pid))
        knowledge_id = report["knowledge_id"]
        queries = [
            json.loads(line)["text"]
            for line in (SCIFACT / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:100]
        ]
        headers = {"Authorization": f"Bearer {key}"}
        latencies = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for query in queries:
                started = time.perf_counter()
                client.post(
                    "/api/v1/retrieval/query/collection",
                    json={"collection_names": [knowledge_id], "query": query, "k": 10},
                ).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        results["query_ms"] = {
            "p50": round(statistics.median(latencies), 1),
            "p95": round(latencies[int(len(latencies) * 0.95) - 1], 1),
            "queries": len(latencies),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    out_path = ROOT / "benchmarks" / "results" / args.out
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
