"""Full SciFact through the default pipeline on a GPU machine, against that machine's encode limit.

1. Encode limit: the chunks our chunker makes from the corpus (with their embedding text),
   embedded in one call by the embedder the default settings pick (on a machine with an
   NVIDIA driver: torch, fp16, batches of 256), model already loaded. Twice: from the
   texts (`embed_documents`, tokenising included), and from the same texts tokenised
   beforehand as the extraction workers do (`embed_token_ids`: the model alone).
2. Ingest: `rag index <corpus as .txt files> --json` as a whole process, default settings
   (extraction workers = cores), and the time inside the run (`seconds`).
3. The ratio of ingest to each limit (target: ingest ≥ 50% of the encode limit).

Run (unchanged on any machine with CUDA): python benchmarks/gpu_ingest.py [--docs N]
Writes benchmarks/results/gpu_ingest.json. `--allow-cpu` runs it without a GPU (to try it);
`--corpus PATH` reads SciFact's corpus.jsonl (or .jsonl.gz) from elsewhere than ../shared.
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

from _scifact import SCIFACT, write_docs

ROOT = Path(__file__).resolve().parents[1]

ENCODE = """
import json, sys, time
from pathlib import Path
from rag_pipeline import Pipeline, Settings, load_file
from rag_pipeline.chunking import embedding_text
from rag_pipeline.embedding.tokens import DocumentTokenizer, token_spec_of

docs = Path(sys.argv[1])
pipeline = Pipeline(Settings())
texts = []
for path in sorted(docs.iterdir()):
    chunks = pipeline.chunker.split(load_file(path, source=path.name), path.name)
    texts.extend(embedding_text(c) for c in chunks)
embedder = pipeline.embedder
embedder.embed_documents(texts[:512])  # load the model and warm the kernels
start = time.perf_counter()
embedder.embed_documents(texts)
seconds = time.perf_counter() - start
ids = {}
spec = token_spec_of(embedder)
if spec is not None:
    start = time.perf_counter()
    token_ids = DocumentTokenizer(spec)(texts)  # what the workers do, here in one process
    tokenise = time.perf_counter() - start
    embedder.embed_token_ids(token_ids[:512])  # the same warm-up
    start = time.perf_counter()
    embedder.embed_token_ids(token_ids)
    ids = {"seconds": time.perf_counter() - start, "tokenise_s": tokenise}
print(json.dumps({"chunks": len(texts), "seconds": seconds, "ids": ids,
                  "embedder": type(embedder).__name__, "model": embedder.model_name}))
"""


def gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or None


def run(command: list[str], env: dict[str, str]) -> str:
    """Run a step and return its stdout; on failure show its stderr (a remote run has no other)."""
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(exc.stderr[-20000:])
        raise


def rag_command() -> list[str]:
    """The `rag` console script beside this interpreter, else the same entry point via -c."""
    script = Path(sys.executable).parent / "rag"
    if script.exists():
        return [str(script)]
    # The package on PYTHONPATH only (not installed, as on a bare GPU machine): no script.
    return [sys.executable, "-c", "from rag_pipeline.cli import main; main()"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=0, help="first N docs (0: all 5,183)")
    parser.add_argument("--allow-cpu", action="store_true")
    parser.add_argument(
        "--corpus", type=Path, default=SCIFACT, help="SciFact corpus.jsonl or .jsonl.gz"
    )
    args = parser.parse_args()
    gpu = gpu_name()
    if gpu is None and not args.allow_cpu:
        sys.exit("no NVIDIA GPU here (nvidia-smi not found); --allow-cpu to run anyway")
    work = Path(tempfile.mkdtemp(prefix="gpu-ingest-"))
    docs = work / "docs"
    count = write_docs(docs, args.docs, args.corpus)
    env = {**os.environ, "RAG_DATA_DIR": str(work / "data"), "HF_HUB_OFFLINE": "1"}
    env.setdefault("RAG_MODEL_CACHE_DIR", str(work / "models"))
    encode = run([sys.executable, "-c", ENCODE, str(docs)], env)
    limit = json.loads(encode.strip().splitlines()[-1])
    start = time.perf_counter()
    out = run([*rag_command(), "index", str(docs), "--knowledge", "bench", "--json"], env)
    wall = time.perf_counter() - start
    report = json.loads(out)
    chunks = report["chunks"]["added"]
    limit_rate = limit["chunks"] / limit["seconds"]
    in_run, whole = chunks / report["seconds"], chunks / wall
    ids = limit["ids"]
    ids_rate = limit["chunks"] / ids["seconds"] if ids else None
    results = {
        "machine": {
            "gpu": gpu,
            "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
        },
        "docs": count,
        "encode_limit": {
            "chunks": limit["chunks"],
            "seconds": round(limit["seconds"], 2),
            "chunks_per_s": round(limit_rate, 1),
            "embedder": limit["embedder"],
            "model": limit["model"],
        },
        # The model alone: ids tokenised beforehand (None: the embedder takes no ids).
        "encode_limit_ids": {
            "seconds": round(ids["seconds"], 2),
            "chunks_per_s": round(ids_rate, 1),
            "tokenise_s_one_process": round(ids["tokenise_s"], 2),
        }
        if ids_rate
        else None,
        "ingest": {
            "wall_s": round(wall, 2),
            "index_s": report["seconds"],
            "chunks": chunks,
            "failed": report["files"]["failed"],
            "docs_per_s_wall": round(count / wall, 1),
            "chunks_per_s_in_run": round(chunks / report["seconds"], 1),
        },
        "ingest_over_encode_limit": {
            "in_run": round(in_run / limit_rate, 3),
            "whole_process": round(whole / limit_rate, 3),
        },
        "ingest_over_encode_limit_ids": {
            "in_run": round(in_run / ids_rate, 3),
            "whole_process": round(whole / ids_rate, 3),
        }
        if ids_rate
        else None,
    }
    out_path = ROOT / "benchmarks" / "results" / "gpu_ingest.json"
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
