"""Full SciFact through the default pipeline on a GPU machine, against that machine's encode limit.

1. Encode limit: the chunks our chunker makes from the corpus (with their embedding text),
   embedded in one call by the embedder the default settings pick (on a machine with an
   NVIDIA driver: torch, fp16, batches of 256), model already loaded. Twice: from the
   texts (`embed_documents`, tokenising included), and from the same texts tokenised
   beforehand as the extraction workers do (`embed_token_ids`: the model alone).
2. Ingest: `rag index <corpus as .txt files> --json` as a whole process, default settings
   (extraction workers = cores), and the time inside the run (`seconds`).
3. The ratio of ingest to each limit (#25's targets: full SciFact ≤ 5 s inside the run,
   ingest ≥ 0.8 of the encode limit with the same tokenisation, i.e. from ids).
4. Where this machine's onnxruntime has the CUDA execution provider (onnxruntime-gpu), the
   same chunks through the same model exported to ONNX (fp32) on it, from texts and from
   ids, and its vectors' cosine to the default's, then `rag index` again with
   RAG_EMBEDDING_RUNTIME=onnx: torch or onnxruntime, which is faster.

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
# onnxruntime-gpu's CUDA provider on the same chunks, the same model (fp32 export), if
# this machine's onnxruntime has it: the issue asks which runtime is faster on a GPU.
onnx = {}
try:
    import numpy as np
    import onnxruntime as ort
    from rag_pipeline.embedding.onnx import OnnxEmbedder

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        onnx = {"skipped": f"onnxruntime {ort.__version__} has no CUDA provider "
                           f"(available: {ort.get_available_providers()})"}
    else:
        settings = pipeline.settings
        cuda = OnnxEmbedder(settings.embedding_model,
                            cache_dir=settings.model_cache_dir or settings.data_dir / "models",
                            batch_size=settings.effective_batch_size,
                            providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        cuda.embed_documents(texts[:512])  # export, load, warm
        start = time.perf_counter()
        vectors = cuda.embed_documents(texts)
        onnx = {"seconds": time.perf_counter() - start}
        reference = embedder.embed_documents(texts[:1000])
        cosine = (vectors[:1000] * reference).sum(axis=1)
        onnx["min_cosine_to_default"] = float(cosine.min())
        if spec is not None and token_spec_of(cuda) == spec:
            cuda.embed_token_ids(token_ids[:512])
            start = time.perf_counter()
            cuda.embed_token_ids(token_ids)
            onnx["ids_seconds"] = time.perf_counter() - start
except Exception as exc:  # a measurement that could not be made is reported, not fatal
    onnx = {"failed": repr(exc)[:1000]}
print(json.dumps({"chunks": len(texts), "seconds": seconds, "ids": ids, "onnx_cuda": onnx,
                  "embedder": type(embedder).__name__, "model": embedder.model_name}))
"""


def onnx_cuda(measured: dict, chunks: int) -> dict:
    """The ONNX Runtime CUDA measurement as rates, or why there is none."""
    if "seconds" not in measured:
        return measured
    out = {"seconds": round(measured["seconds"], 2)}
    out["chunks_per_s"] = round(chunks / measured["seconds"], 1)
    out["min_cosine_to_default"] = round(measured["min_cosine_to_default"], 5)
    if "ids_seconds" in measured:
        out["ids_seconds"] = round(measured["ids_seconds"], 2)
        out["ids_chunks_per_s"] = round(chunks / measured["ids_seconds"], 1)
    return out


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
    onnx = onnx_cuda(limit["onnx_cuda"], limit["chunks"])
    if "seconds" in onnx:
        # The same ingest with onnxruntime's CUDA provider (RAG_EMBEDDING_RUNTIME=onnx),
        # into a data dir of its own: which runtime to keep is decided on whole runs.
        try:
            other = {**env, "RAG_EMBEDDING_RUNTIME": "onnx", "RAG_DATA_DIR": str(work / "onnx")}
            start = time.perf_counter()
            out = run([*rag_command(), "index", str(docs), "--knowledge", "bench", "--json"], other)
            onnx_wall = time.perf_counter() - start
            onnx_report = json.loads(out)
            onnx["ingest"] = {
                "wall_s": round(onnx_wall, 2),
                "index_s": onnx_report["seconds"],
                "chunks_per_s_in_run": round(
                    onnx_report["chunks"]["added"] / onnx_report["seconds"], 1
                ),
            }
        except (subprocess.CalledProcessError, ValueError, KeyError) as exc:
            onnx["ingest"] = {"failed": repr(exc)[:1000]}  # the torch results still count
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
        # onnxruntime's CUDA provider, fp32 (None: not measured; "skipped"/"failed": why).
        "encode_limit_onnx_cuda": onnx,
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
