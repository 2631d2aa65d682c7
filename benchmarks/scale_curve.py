"""How cost grows with size: one knowledge base on the embedded store, in steps up to 1M chunks.

Issue #25, part 1. SciFact-like documents are indexed into ONE knowledge base on the default
embedded store (qdrant-edge, `Settings()` but for `data_dir`) through the one way in,
`Pipeline.index((source, documents) pairs, kb)`, until it holds at least each step's number
of chunks. After each step it reports:

- ingest rate of the step: docs/s and chunks/s (wall time of the step's `Pipeline.index`
  calls, `--batch-docs` documents per call);
- an incremental re-run that finds nothing changed: `Pipeline.index` over every document
  indexed so far with `prune=False`, timed as a user's re-run would be (listing the items,
  reading their stored state, re-hashing every document, skipping all). The seconds spent
  only generating those documents are reported apart (`rerun.gen_s`); the issue's target
  is <= 5 s at 100k files. `--rerun-at` limits it to some steps; `--rerun-prune` also
  times the `prune=True` variant (reads the whole collection's state instead);
- hybrid and dense query latency in process, `Pipeline.query(text, kb, top_k=10, mode=...)`
  over fixed SciFact test queries, p50/p95 in ms after one warm-up per mode. Hybrid
  through one Retriever kept across queries (`hybrid_one_retriever`) and the language-mix
  facet count alone (`facet_ms`) are reported too: before the pipeline shared one mix
  cache among its retrievers, every hybrid `Pipeline.query` (and server request) paid
  that count, 24 ms at 100k chunks; now the two hybrid columns agree;
- `--optimize`: `pipeline.store.build_index(kb)` (builds the HNSW index), timed, then the
  queries again: the curve shows when the index pays. Without it no HNSW index is ever
  built and every search is exact. With it, the "before" numbers of a step are over a
  collection whose earlier steps were optimized and whose new points were not: run once
  without `--optimize` for a never-optimized curve;
- memory: VmRSS now (anonymous and file-backed apart) and peak RSS (`ru_maxrss`) of this
  process after the ingest, the re-run (a window of its items at a time) and the
  optimize. The
  extraction workers are not counted: they are children of multiprocessing's forkserver,
  not of this process, so `RUSAGE_CHILDREN` never sees them;
- disk: bytes allocated under the data dir.

The embedder costs nothing: this measures the pipeline and the store, NOT a model. Its
vectors are still distinct unit vectors of the real dimension (384), deterministic from
the text (a seed hashed from it), so Qdrant's search does real work. Documents are the 5,183
SciFact documents (../shared/data/scifact/corpus.jsonl, ~1.85 chunks each at the default
chunking) repeated: copy n of document d is the source "{n}/{d}.txt" with text
"{title}\\n\\n{abstract} (copy {n})" and title "{d} (copy {n})" (a `{d}.txt` file's loader
title is its stem; the copy tag in the title makes every chunk's embedding text, so its
vector, distinct). They are generated lazily: 500k+ documents are never all in memory,
except during a re-run (see above).

Run (the full curve; the data dir takes ~5 KB a chunk, ~9 KB around an optimize: ~5-9 GB
at 1M chunks, pick a disk with room):
    .venv/bin/python benchmarks/scale_curve.py --steps 10000 100000 1000000 --optimize \\
        --queries 50 [--data-dir DIR --keep] [--rerun-at 100000 1000000]
Smoke: .venv/bin/python benchmarks/scale_curve.py --steps 5000 20000 --queries 10 --optimize
Writes benchmarks/results/scale_curve.json (after every step, so a cut-off run keeps what
it measured) and scale_curve.png beside it (`--out` moves both).

Time of the full run, EXTRAPOLATED from a smoke run to 20k chunks (`--steps 5000 20000
--queries 10 --optimize`, 53 s, on 2 cores busy with other benchmarks; nothing measured
above 20k): ingest ~700-800 chunks/s -> ~20-25 min for 1M chunks if it stays flat; re-runs
~45-50 us a chunk -> ~5 s at 100k chunks, ~50 s at 1M; optimize (HNSW build) ~1,100
vectors/s -> ~1.5 min at the 100k step and 15 min or more at the 1M step (the build is
n log n, and merges may rebuild earlier segments); queries ~1-2 min in all. About 45 min with
`--optimize`, about 25 min without; more cores speed the ingest (extraction runs in worker
processes) and the HNSW build. Peak RSS extrapolates to ~6-7 GB at 1M (~6 KB a chunk),
more while optimizing (+9 KB a chunk transiently at 20k).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _scifact import SCIFACT

from rag_pipeline import Pipeline, Settings
from rag_pipeline.types import Document

ROOT = Path(__file__).resolve().parents[1]
QUERIES = SCIFACT.parent / "queries.jsonl"
QRELS = SCIFACT.parent / "qrels" / "test.tsv"
KB = "scale"
DIMENSION = 384
NOTE = (
    "free embedder: vectors cost nothing (distinct unit vectors of dimension 384, hashed "
    "from the text); this measures the pipeline and the store, not a model"
)


class FreeEmbedder:
    """An embedder that costs nothing (as in pipeline_free_embedder.py), but deterministic:
    each text's vector is a unit Gaussian vector seeded by a hash of the text (~20 us)."""

    model_name = "free-hash-384"
    dimension = DIMENSION

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
            rng = np.random.default_rng(int.from_bytes(seed, "little"))
            out[row] = rng.standard_normal(DIMENSION, dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def load_corpus(path: Path = SCIFACT) -> list[tuple[str, str, str]]:
    """SciFact's (id, title, abstract) rows, in file order (~7 MB)."""
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [(row["_id"], row["title"], row["text"]) for row in rows]


def documents(corpus: list[tuple[str, str, str]]) -> Iterator[tuple[str, list[Document]]]:
    """Endless distinct (source, documents) pairs: copy 0 of the corpus, copy 1, ..."""
    for copy in itertools.count():
        for doc_id, title, text in corpus:
            source = f"{copy}/{doc_id}.txt"
            metadata = {
                "source": source,
                "title": f"{doc_id} (copy {copy})",
                "content_type": "text/plain",
            }
            yield source, [Document(text=f"{title}\n\n{text} (copy {copy})", metadata=metadata)]


def load_queries(count: int) -> list[str]:
    """The first ``count`` SciFact test queries (ids from qrels/test.tsv, in order)."""
    ids: list[str] = []
    for line in QRELS.read_text(encoding="utf-8").splitlines()[1:]:
        query_id = line.split("\t")[0]
        if query_id not in ids:
            ids.append(query_id)
    texts = {}
    for line in QUERIES.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts[row["_id"]] = row["text"]
    return [texts[i] for i in ids[:count]]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measure_queries(pipeline: Pipeline, queries: list[str]) -> dict[str, Any]:
    """p50/p95/mean ms of `Pipeline.query` per mode, after one warm-up query each."""
    results: dict[str, Any] = {}
    for mode in ("dense", "hybrid"):
        pipeline.query(queries[0], KB, top_k=10, mode=mode)  # warm-up
        times = []
        for query in queries:
            start = time.perf_counter()
            hits = pipeline.query(query, KB, top_k=10, mode=mode)
            times.append((time.perf_counter() - start) * 1000)
            assert len(hits) == 10, (mode, query, len(hits))
        results[mode] = {
            "p50_ms": round(percentile(times, 0.5), 2),
            "p95_ms": round(percentile(times, 0.95), 2),
            "mean_ms": round(sum(times) / len(times), 2),
        }
    # `Pipeline.query` builds a new Retriever per call, so its language-mix cache never
    # hits: hybrid through one Retriever kept across queries, and the facet count alone.
    retriever = pipeline.retriever("hybrid")
    retriever.search(queries[0], [KB], top_k=10)  # warm-up, fills the cache
    times = []
    for query in queries:
        start = time.perf_counter()
        retriever.search(query, [KB], top_k=10)
        times.append((time.perf_counter() - start) * 1000)
    results["hybrid_one_retriever"] = {
        "p50_ms": round(percentile(times, 0.5), 2),
        "p95_ms": round(percentile(times, 0.95), 2),
        "mean_ms": round(sum(times) / len(times), 2),
    }
    start = time.perf_counter()
    pipeline.store.value_counts(KB, "script")
    results["facet_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return results


def memory() -> dict[str, float]:
    """MB: this process's VmRSS now, split into anonymous memory (the heap: what the
    process needs) and file-backed pages (the store's memory-mapped files: page cache the
    kernel can drop and read again), and its peak (ru_maxrss, both kinds together)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())

    def mb(key: str) -> float:
        return round(int(status[key].split()[0]) / 1024, 1)

    return {
        "vm_rss_mb": mb("VmRSS"),
        "rss_anon_mb": mb("RssAnon"),
        "rss_file_mb": mb("RssFile"),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def reopen(data: Path, queries: int) -> dict[str, Any]:
    """What a process that only serves the knowledge base costs: a fresh interpreter opens
    the data dir (`Pipeline(Settings(data_dir=...))`, the same env), queries it (one pass
    to warm up, one measured) and reports its memory. The caller must have closed its
    store first (one process at a time holds a shard's write-ahead log)."""
    command = [sys.executable, __file__, "--probe", str(data), "--queries", str(queries)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe(data: Path, queries: list[str]) -> None:
    """The child side of `reopen`: prints one JSON line."""
    started = time.perf_counter()
    with Pipeline(Settings(data_dir=data), embedder=FreeEmbedder()) as pipeline:
        count = pipeline.store.count(KB)
        opened = {"s": round(time.perf_counter() - started, 2), "memory": memory()}
        cold: dict[str, Any] = {}
        for mode in ("dense", "hybrid"):
            times = []
            for query in queries:
                start = time.perf_counter()
                pipeline.query(query, KB, top_k=10, mode=mode)
                times.append((time.perf_counter() - start) * 1000)
            cold[mode] = {
                "p50_ms": round(percentile(times, 0.5), 2),
                "max_ms": round(max(times), 2),
            }
        warm = measure_queries(pipeline, queries)
        answer = {"chunks": count, "opened": opened, "cold": cold, "queries": warm}
        print(json.dumps({**answer, "memory": memory()}))


def shard_info(store: Any) -> dict[str, int] | None:
    """The engine's segments and HNSW-indexed vectors (qdrant-edge only: None elsewhere)."""
    use = getattr(store, "_use", None)
    if use is None:
        return None
    with use(KB) as shard:
        info = shard.info()
    return {
        "segments": info.segments_count,
        "points": info.points_count,
        "indexed_vectors": info.indexed_vectors_count,
        "unindexed": store.unindexed(KB),
    }


def disk_mb(path: Path) -> float:
    """MB allocated on disk under ``path``."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(FileNotFoundError):  # the engine replaced it meanwhile
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return round(total / 1e6, 1)


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - start, result


def rerun(pipeline: Pipeline, corpus: list, docs: int, prune: bool) -> dict[str, Any]:
    """Index everything indexed so far again; it must all be skipped."""
    gen_s, _ = timed(lambda: sum(1 for _ in itertools.islice(documents(corpus), docs)))
    seconds, report = timed(
        pipeline.index, itertools.islice(documents(corpus), docs), KB, prune=prune
    )
    changed = len(report.added) + len(report.updated) + len(report.deleted) + len(report.errors)
    assert len(report.skipped) == docs and not changed, report.to_dict()
    return {"s": round(seconds, 2), "gen_s": round(gen_s, 2), "memory": memory()}


def row_of(step: dict[str, Any]) -> list[str]:
    q, o = step["queries"], step.get("optimized") or {}
    oq = o.get("queries", {})

    def ms(part: dict[str, Any], mode: str) -> str:
        return f"{part[mode]['p50_ms']:.1f}/{part[mode]['p95_ms']:.1f}" if part else "-"

    rerun_ = step.get("rerun")
    return [
        f"{step['chunks']:,}",
        f"{step['docs']:,}",
        f"{step['ingest']['docs_per_s']:,.0f}",
        f"{step['ingest']['chunks_per_s']:,.0f}",
        f"{rerun_['s']:.2f}" if rerun_ else "-",
        ms(q, "dense"),
        ms(q, "hybrid"),
        ms(q, "hybrid_one_retriever"),
        f"{q['facet_ms']:.1f}",
        f"{o['s']:.1f}" if o else "-",
        ms(oq, "dense"),
        ms(oq, "hybrid"),
        f"{step['memory']['vm_rss_mb']:,.0f}/{step['memory']['peak_rss_mb']:,.0f}",
        f"{step['disk_mb']:,.0f}",
    ]


HEADER = [
    "chunks",
    "docs",
    "docs/s",
    "chunks/s",
    "rerun s",
    "dense p50/p95",
    "hybrid p50/p95",
    "hyb 1 retr",
    "facet ms",
    "opt s",
    "dense opt",
    "hybrid opt",
    "RSS/peak MB",
    "disk MB",
]


def table(steps: Iterable[dict[str, Any]]) -> str:
    rows = [HEADER, *(row_of(s) for s in steps)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def plot(steps: list[dict[str, Any]], memory_start: dict[str, float], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["chunks"] for s in steps]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    ax = axes[0][0]
    ax.plot(x, [s["ingest"]["chunks_per_s"] for s in steps], "o-", label="chunks/s")
    ax.plot(x, [s["ingest"]["docs_per_s"] for s in steps], "s-", label="docs/s")
    ax.set_title("ingest rate of the step")
    ax.set_ylim(bottom=0)
    ax = axes[0][1]
    for mode, style in (("dense", "o"), ("hybrid", "s")):
        ax.plot(x, [s["queries"][mode]["p50_ms"] for s in steps], f"{style}-", label=mode)
        ax.plot(
            x,
            [s["queries"][mode]["p95_ms"] for s in steps],
            f"{style}:",
            alpha=0.5,
            label=f"{mode} p95",
        )
        opt = [(s["chunks"], s["optimized"]["queries"][mode]) for s in steps if s["optimized"]]
        if opt:
            ax.plot(
                [c for c, _ in opt],
                [q["p50_ms"] for _, q in opt],
                f"{style}--",
                label=f"{mode}, optimized",
            )
    ax.plot(
        x,
        [s["queries"]["hybrid_one_retriever"]["p50_ms"] for s in steps],
        "v-.",
        label="hybrid, one Retriever",
    )
    ax.plot(x, [s["queries"]["facet_ms"] for s in steps], "x:", label="language-mix facet")
    ax.set_yscale("log")
    ax.set_title("query p50 ms (top_k=10, in process)")
    ax = axes[0][2]
    reruns = [(s["chunks"], s["rerun"]) for s in steps if s["rerun"]]
    ax.plot([c for c, _ in reruns], [r["s"] for _, r in reruns], "o-", label="re-run, prune=False")
    pruned = [(s["chunks"], s["rerun_prune"]) for s in steps if s.get("rerun_prune")]
    if pruned:
        ax.plot(
            [c for c, _ in pruned], [r["s"] for _, r in pruned], "s-", label="re-run, prune=True"
        )
    opt = [(s["chunks"], s["optimized"]["s"]) for s in steps if s["optimized"]]
    if opt:
        ax.plot([c for c, _ in opt], [s for _, s in opt], "^-", label="optimize (HNSW build)")
    ax.set_title("seconds")
    ax = axes[1][0]
    ax.plot(x, [s["memory"]["vm_rss_mb"] for s in steps], "o-", label="VmRSS after ingest")
    ax.plot(x, [s["memory"]["peak_rss_mb"] for s in steps], "s-", label="peak after ingest")
    ax.plot(x, [s["final_memory"]["peak_rss_mb"] for s in steps], "^--", label="peak, end of step")
    ax.set_title("memory of the process, MB")
    ax = axes[1][1]
    ax.plot(x, [s["disk_mb"] for s in steps], "o-", label="after ingest")
    if any(s["optimized"] for s in steps):
        ax.plot(x, [s["final_disk_mb"] for s in steps], "s--", label="end of step")
    ax.set_title("data dir on disk, MB")
    ax = axes[1][2]
    # Marginal: what the step's ingest added to the state before it (the end of the step
    # before, or the process's start-up RSS).
    before = [(0, memory_start["vm_rss_mb"], 0.0)] + [
        (s["chunks"], s["final_memory"]["vm_rss_mb"], s["final_disk_mb"]) for s in steps[:-1]
    ]
    added = [s["chunks"] - b[0] for s, b in zip(steps, before, strict=True)]
    rss = [s["memory"]["vm_rss_mb"] - b[1] for s, b in zip(steps, before, strict=True)]
    disk = [s["disk_mb"] - b[2] for s, b in zip(steps, before, strict=True)]
    ax.plot(x, [1000 * m / n for m, n in zip(rss, added, strict=True)], "o-", label="VmRSS")
    ax.plot(x, [1000 * d / n for d, n in zip(disk, added, strict=True)], "s-", label="disk")
    ax.set_title("KB per chunk the step added (first: with start-up)")
    ax.set_ylim(bottom=0)
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_xlabel("chunks in the knowledge base")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"rag-pipeline scale curve, embedded qdrant-edge store ({NOTE})", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--data-dir", type=Path, help="default: a temporary dir, removed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--optimize", action="store_true")
    parser.add_argument(
        "--rerun-at",
        type=int,
        nargs="*",
        help="steps with a re-run (default: all; none: no re-run)",
    )
    parser.add_argument("--rerun-prune", action="store_true", help="also time prune=True")
    parser.add_argument("--batch-docs", type=int, default=50_000, help="documents per index call")
    parser.add_argument("--workers", type=int, help="extraction processes (default: settings)")
    parser.add_argument(
        "--reopen",
        action="store_true",
        help="after each step, open the data dir in a fresh process, query it, report its memory",
    )
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)  # reopen's child
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale_curve.json"
    )
    args = parser.parse_args()
    if args.probe is not None:
        probe(args.probe, load_queries(args.queries))
        return
    steps = sorted(args.steps)
    rerun_at = set(steps if args.rerun_at is None else args.rerun_at)
    temporary = args.data_dir is None
    data = Path(tempfile.mkdtemp(prefix="scale-curve-")) if temporary else args.data_dir
    corpus = load_corpus()
    queries = load_queries(args.queries)
    settings = Settings(data_dir=data)
    results: dict[str, Any] = {
        "note": NOTE,
        "knowledge_base": KB,
        "store": settings.embedded_store,
        "qdrant_on_disk": settings.qdrant_on_disk,
        "qdrant_quantization": settings.qdrant_quantization,
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "workers": args.workers if args.workers is not None else settings.workers,
        "batch_docs": args.batch_docs,
        "queries": len(queries),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": [round(v, 2) for v in os.getloadavg()],
        "argv": sys.argv[1:],
        "steps": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(NOTE, flush=True)
    print(f"data dir: {data}", flush=True)
    started = time.perf_counter()
    try:
        with Pipeline(settings, embedder=FreeEmbedder()) as pipeline:
            if pipeline.store.has_collection(KB):
                raise SystemExit(f"{data} already holds knowledge base {KB!r}: use a new dir")
            results["memory_start"] = memory()
            stream = documents(corpus)
            docs = chunks = 0
            per_doc = 1.85  # SciFact at the default chunking; corrected as chunks come
            for target in steps:
                step_start = time.perf_counter()
                step_docs = step_chunks = calls = 0
                while chunks < target:
                    want = max(1, min(args.batch_docs, math.ceil((target - chunks) / per_doc)))
                    report = pipeline.index(
                        itertools.islice(stream, want), KB, workers=args.workers
                    )
                    assert len(report.added) == want and report.ok, report.to_dict()
                    calls += 1
                    docs += want
                    step_docs += want
                    chunks += report.chunks_added
                    step_chunks += report.chunks_added
                    per_doc = chunks / docs
                ingest_s = time.perf_counter() - step_start
                count_s, stored = timed(pipeline.store.count, KB)
                assert stored == chunks, (stored, chunks)
                step: dict[str, Any] = {
                    "target": target,
                    "chunks": stored,
                    "docs": docs,
                    "ingest": {
                        "docs": step_docs,
                        "chunks": step_chunks,
                        "calls": calls,
                        "s": round(ingest_s, 2),
                        "docs_per_s": round(step_docs / ingest_s, 1) if step_docs else 0,
                        "chunks_per_s": round(step_chunks / ingest_s, 1) if step_docs else 0,
                    },
                    "count_ms": round(count_s * 1000, 2),
                    "memory": memory(),
                    "disk_mb": disk_mb(data),
                    "shard": shard_info(pipeline.store),
                    "rerun": None,
                    "rerun_prune": None,
                    "optimized": None,
                    "loadavg": [round(v, 2) for v in os.getloadavg()],
                }
                print(
                    f"[{target:,}] ingest {step_docs:,} docs / {step_chunks:,} chunks in"
                    f" {ingest_s:.1f} s",
                    flush=True,
                )
                if target in rerun_at:
                    step["rerun"] = rerun(pipeline, corpus, docs, prune=False)
                    print(f"[{target:,}] re-run (prune=False) {step['rerun']['s']} s", flush=True)
                    if args.rerun_prune:
                        step["rerun_prune"] = rerun(pipeline, corpus, docs, prune=True)
                        print(
                            f"[{target:,}] re-run (prune=True) {step['rerun_prune']['s']} s",
                            flush=True,
                        )
                query_s, step["queries"] = timed(measure_queries, pipeline, queries)
                step["queries_s"] = round(query_s, 2)
                if args.optimize:
                    optimize_s, _ = timed(pipeline.store.build_index, KB)
                    print(f"[{target:,}] optimize {optimize_s:.1f} s", flush=True)
                    query_s, optimized = timed(measure_queries, pipeline, queries)
                    step["optimized"] = {
                        "s": round(optimize_s, 2),
                        "shard": shard_info(pipeline.store),
                        "queries": optimized,
                        "queries_s": round(query_s, 2),
                    }
                step["final_memory"] = memory()
                if args.reopen:
                    pipeline.store.close()  # the child needs the shard's write-ahead log
                    step["reopened"] = reopen(data, len(queries))
                    print(f"[{target:,}] reopened: {step['reopened']}", flush=True)
                step["final_disk_mb"] = disk_mb(data)
                step["step_s"] = round(time.perf_counter() - step_start, 2)
                results["steps"].append(step)
                results["total_s"] = round(time.perf_counter() - started, 2)
                args.out.write_text(json.dumps(results, indent=2) + "\n")
                print(table([step]), flush=True)
        plot(results["steps"], results["memory_start"], args.out.with_suffix(".png"))
    finally:
        if temporary and not args.keep:
            shutil.rmtree(data, ignore_errors=True)
    print(f"\n{NOTE}\n{table(results['steps'])}")
    print(f"total {results['total_s']:.0f} s; wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
