"""The pipeline alone: index SciFact docs with an embedder that costs nothing, vs LlamaIndex.

Both sides run as whole processes on the same .txt files, alternating, so imports, start-up,
extraction, chunking, sparse encoding (ours) and store writes all count, and the model does
not. Ours: `Pipeline(embedder=<random unit vectors>).index()` into the embedded qdrant-edge
store, with 1 and 2 worker processes. LlamaIndex: `IngestionPipeline(SentenceSplitter(256,
32), MockEmbedding(384))` into a `QdrantVectorStore` on a local on-disk Qdrant
(qdrant-client's local mode), reading with `SimpleDirectoryReader`.

Run: .venv/bin/python benchmarks/pipeline_free_embedder.py [--docs 2000] [--rounds 2]
(needs `pip install -e .[bench]`). Writes benchmarks/results/pipeline_free_embedder.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _scifact import write_docs

ROOT = Path(__file__).resolve().parents[1]

OURS = """
import sys, numpy as np
from rag_pipeline import Pipeline, Settings

class FreeEmbedder:
    model_name = "free"
    dimension = 384
    def __init__(self):
        self._rng = np.random.default_rng(0)
    def embed_documents(self, texts):
        v = self._rng.standard_normal((len(texts), 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    def embed_query(self, text):
        return self.embed_documents([text])[0]

docs, data, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Pipeline(Settings(data_dir=data, workers=workers), embedder=FreeEmbedder()) as p:
    report = p.index(docs, "bench")
print(report.chunks_added, len(report.added), len(report.errors))
"""

LLAMA = """
import sys
from llama_index.core import SimpleDirectoryReader
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.vector_stores.qdrant import QdrantVectorStore
from qdrant_client import QdrantClient

docs, data = sys.argv[1], sys.argv[2]
client = QdrantClient(path=data)
store = QdrantVectorStore(client=client, collection_name="bench")
pipeline = IngestionPipeline(
    transformations=[
        SentenceSplitter(chunk_size=256, chunk_overlap=32),
        MockEmbedding(embed_dim=384),
    ],
    vector_store=store,
)
nodes = pipeline.run(documents=SimpleDirectoryReader(docs).load_data())
client.close()
print(len(nodes))
"""


def timed(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="free-embedder-"))
    docs = work / "docs"
    write_docs(docs, args.docs)
    runs: dict[str, list[float]] = {"ours_1_worker": [], "ours_2_workers": [], "llamaindex": []}
    outputs: dict[str, str] = {}
    for round_ in range(args.rounds):
        for name in runs:
            data = work / f"{name}-{round_}"
            if name == "llamaindex":
                cmd = [sys.executable, "-c", LLAMA, str(docs), str(data)]
            else:
                workers = "1" if name == "ours_1_worker" else "2"
                cmd = [sys.executable, "-c", OURS, str(docs), str(data), workers]
            seconds, outputs[name] = timed(cmd)
            runs[name].append(seconds)
            print(f"{name}: {seconds:.1f} s ({outputs[name]})", flush=True)
    best = {name: min(times) for name, times in runs.items()}
    results = {
        "docs": args.docs,
        "rounds": args.rounds,
        "seconds": {name: [round(t, 2) for t in times] for name, times in runs.items()},
        "median_s": {name: round(statistics.median(t), 2) for name, t in runs.items()},
        "docs_per_s_best": {name: round(args.docs / t, 1) for name, t in best.items()},
        "outputs": outputs,
        "speedup_vs_llamaindex": {
            name: round(best["llamaindex"] / best[name], 2) for name in runs if name != "llamaindex"
        },
        "scaling_1_to_2_workers": round(best["ours_1_worker"] / best["ours_2_workers"], 2),
    }
    out = ROOT / "benchmarks" / "results" / "pipeline_free_embedder.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
