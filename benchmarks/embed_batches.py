"""How the ONNX embedder should batch on a CPU: texts/s by call size and token budget.

Real chunks are embedded by the default model (all-MiniLM-L6-v2, fp32 ONNX) in calls of
1, 8, 64 and 256 texts, as a server (a few chunks per upload or per Open WebUI embedding
request) and the indexer (hundreds per call) make them. ``--budget 0`` is the old
plan (batches of 8 rows, longest first, padded to their longest row); a budget N also cuts
a batch at N padded tokens and at 20% padding (``plan_batches``). Two chunk sets: our
chunker's 256-token chunks of SciFact and Open WebUI's 1,000-character chunks.

Run: .venv/bin/python benchmarks/embed_batches.py [--cores 1] [--texts 240]
Writes benchmarks/results/embed_batches_<cores>core.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rag_pipeline import Settings
from rag_pipeline.chunking.splitter import Chunker
from rag_pipeline.embedding.onnx import OnnxEmbedder
from rag_pipeline.types import Document

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"


def chunk_sets(count: int) -> dict[str, list[str]]:
    """Our chunker's chunks and Open WebUI-style 1,000-character chunks of SciFact."""
    docs = []
    with SCIFACT.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            docs.append(f"{row['title']}\n\n{row['text']}")
            if len(docs) >= count:
                break
    settings = Settings()
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    ours: list[str] = []
    owui: list[str] = []
    for index, text in enumerate(docs):
        meta = {"source": f"{index}.txt", "title": "", "content_type": "text/plain"}
        ours += [
            c.text for c in chunker.split([Document(text=text, metadata=meta)], meta["source"])
        ]
        flat = text.replace("\n", " ")
        owui += [flat[i : i + 1000] for i in range(0, len(flat), 900)]
    return {"ours (256 tokens)": ours[:count], "Open WebUI (1,000 chars)": owui[:count]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, help="pin to this many cores (default: all)")
    parser.add_argument("--texts", type=int, default=160, help="texts per measurement")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    args = parser.parse_args()
    if args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    settings = Settings()
    cache = settings.model_cache_dir or settings.data_dir / "models"
    budgets = (0, 256, 512, 1024)
    embedders = {b: OnnxEmbedder(cache_dir=cache, batch_tokens=b) for b in budgets}
    rows = []
    for name, texts in chunk_sets(args.texts).items():
        for calls in (1, 8, 64, 256):
            for budget, embedder in embedders.items():
                if calls == 1 and budget:
                    continue  # one text per call: nothing to plan
                embedder.embed_documents(texts[:8])  # loaded and warm
                best = 0.0
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    for i in range(0, len(texts), calls):
                        embedder.embed_documents(texts[i : i + calls])
                    best = max(best, len(texts) / (time.perf_counter() - start))
                rows.append(
                    {"chunks": name, "call": calls, "budget": budget, "texts_per_s": round(best, 1)}
                )
                print(rows[-1], flush=True)
    cores = len(os.sched_getaffinity(0))
    out = ROOT / "benchmarks" / "results" / f"embed_batches_{cores}core.json"
    out.write_text(json.dumps({"cores": cores, "rows": rows}, indent=2) + "\n")
    heads = " | ".join(f"budget {b}" if b else "no budget (old)" for b in budgets)
    print(f"| chunks | texts per call | {heads} |")
    print("|---|---|" + "---|" * len(budgets))
    for name in dict.fromkeys(r["chunks"] for r in rows):
        for calls in (1, 8, 64, 256):
            found = {
                r["budget"]: r["texts_per_s"]
                for r in rows
                if r["chunks"] == name and r["call"] == calls
            }
            cells = [str(found.get(b, found.get(0))) for b in budgets]
            print(f"| {name} | {calls} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
