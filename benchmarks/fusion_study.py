"""How the dense and sparse halves should be fused: a study over stored rankings.

Each query's dense and sparse candidate lists (300 chunks each, as `rag eval` asks for)
are fetched once from an existing index; fusions are then computed here, so many can be
compared in seconds. The DBSF row reproduces what Qdrant computes (0.7297 against
`rag eval`'s 0.7296 on SciFact), which validates the harness. `sat(w, h)` is
cosine + w · s / (s + h) on the raw BM25 score s: a fixed-scale alternative to DBSF's
per-query normalisation, which lets a sparse list of wrong-language matches count as
much as a good one.

Run after `rag eval` built the index (same RAG_DATA_DIR and RAG_EMBEDDER):
  .venv/bin/python benchmarks/fusion_study.py scifact
  .venv/bin/python benchmarks/fusion_study.py crosslingual   # indexes sample_docs if needed
  .venv/bin/python benchmarks/fusion_study.py ../shared/data/ko_tydiqa dev   # any BEIR folder
  .venv/bin/python benchmarks/fusion_study.py mixed   # ko + ja + en in one collection (_mixed.py)
Results: benchmarks/results/fusion_study.md. `dbsf a:b` counts the dense list a times and
the sparse list b times (what adaptive fusion sends Qdrant: 2:1 for a leading multilingual
model); `adaptive` is the whole rule of rag_pipeline/retrieval/fusion.py per query.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _mixed import LANGUAGES, build_mixed

from rag_pipeline import Pipeline, Settings
from rag_pipeline.evaluation.dataset import load_beir, load_knowledge_queries
from rag_pipeline.evaluation.metrics import evaluate
from rag_pipeline.evaluation.runner import index_dataset

Lists = dict[str, tuple[float, str]]  # point id -> (score, source)
Fusion = Callable[[Lists, Lists], dict[str, float]]


def weighted_dbsf(wd: float, ws: float) -> Fusion:
    def fuse(dense: Lists, sparse: Lists) -> dict[str, float]:
        d, s = dbsf(dense, {}), dbsf({}, sparse)
        return {k: wd * d.get(k, 0.0) + ws * s.get(k, 0.0) for k in d.keys() | s.keys()}

    return fuse


def dbsf(dense: Lists, sparse: Lists) -> dict[str, float]:
    def norm(scores: Lists) -> dict[str, float]:
        values = np.array([v[0] for v in scores.values()])
        if not len(values):
            return {}
        lo, hi = values.mean() - 3 * values.std(), values.mean() + 3 * values.std()
        return {k: (v[0] - lo) / (hi - lo) if hi > lo else 0.5 for k, v in scores.items()}

    d, s = norm(dense), norm(sparse)
    return {k: d.get(k, 0.0) + s.get(k, 0.0) for k in d.keys() | s.keys()}


def rrf(dense: Lists, sparse: Lists, k: int = 60) -> dict[str, float]:
    out: dict[str, float] = {}
    for scores in (dense, sparse):
        for rank, pid in enumerate(sorted(scores, key=lambda p: -scores[p][0])):
            out[pid] = out.get(pid, 0.0) + 1 / (k + rank + 1)
    return out


def saturating(weight: float, half: float) -> Fusion:
    def fuse(dense: Lists, sparse: Lists) -> dict[str, float]:
        floor = min((v[0] for v in dense.values()), default=0.0)
        return {
            k: (dense[k][0] if k in dense else floor)
            + (weight * sparse[k][0] / (sparse[k][0] + half) if k in sparse else 0.0)
            for k in dense.keys() | sparse.keys()
        }

    return fuse


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "scifact"
    pipeline = Pipeline(Settings())
    if which == "mixed":
        dataset = load_beir(build_mixed(Path(tempfile.gettempdir()) / "rag-mixed-set"), "dev")
        collection, depth = index_dataset(pipeline, dataset)[0], 300
    elif which == "scifact" or Path(which).is_dir():
        folder = "../shared/data/scifact" if which == "scifact" else which
        dataset = load_beir(folder, sys.argv[2] if len(sys.argv) > 2 else "test")
        collection, depth = index_dataset(pipeline, dataset)[0], 300
    else:
        dataset = load_knowledge_queries(
            "benchmarks/crosslingual/queries.jsonl", "benchmarks/crosslingual/qrels.tsv", which
        )
        collection, depth = "sample", 30
        if pipeline.store.collection_info(collection) is None:
            pipeline.index("sample_docs", collection)
    dense_retriever, sparse_retriever = pipeline.retriever("dense"), pipeline.retriever("sparse")
    lists: dict[str, tuple[Lists, Lists]] = {}
    model = pipeline.embedder_for(collection).model_name  # auto: the collection's own
    halves = {q: dense_retriever.halves(t, collection, model) for q, t in dataset.queries.items()}
    # Distinct sparse query terms: a sparse hit's score is a sum over the terms it matches.
    terms = {
        q: max(1, len(pipeline.sparse_encoder.embed_query(t).indices))
        for q, t in dataset.queries.items()
    }
    for query_id, text in dataset.queries.items():
        d = dense_retriever.search(text, [collection], top_k=depth)
        s = sparse_retriever.search(text, [collection], top_k=depth)
        lists[query_id] = (
            {h.id: (h.score, h.source) for h in d},
            {h.id: (h.score, h.source) for h in s},
        )

    def adaptive(query_id: str) -> Fusion:
        h = halves[query_id]
        return weighted_dbsf(h.dense, h.sparse)

    def ndcg(fuse: Fusion | None, floor: float | None = None, gate: float = 0.0) -> str:
        run = {}
        for query_id, (dense, sparse) in lists.items():
            sources = {k: v[1] for k, v in (dense | sparse).items()}
            best = max((v[0] for v in sparse.values()), default=0.0)
            if gate and best < gate * terms[query_id]:
                # The whole sparse list is left out when even its best hit is weak (this
                # needs the sparse result before fusing: a second query).
                sparse = {}
            # None: the rule's own floor (adaptive, mixed collections), else the one given.
            cut = floor
            if cut is None:
                cut = halves[query_id].sparse_floor if fuse is None else 0.0
            if cut:
                # Only sparse hits that score at least `cut` per query term take part (the
                # retriever does this inside the one query, as the prefetch's score_threshold).
                sparse = {k: v for k, v in sparse.items() if v[0] >= cut * terms[query_id]}
            fused = (fuse or adaptive(query_id))(dense, sparse)
            ranked = sorted(fused.items(), key=lambda kv: -kv[1])
            docs: dict[str, float] = {}
            for rank, (pid, _) in enumerate(ranked):
                docs.setdefault(sources[pid], float(len(ranked) - rank))
            run[query_id] = docs
        if which != "mixed":
            return f"{evaluate(dataset.qrels, run)['ndcg@10']:.4f}"
        # The mixed set: one column per language of the question, then all of them.
        cells = []
        for lang in (*LANGUAGES, ""):
            qrels = {q: j for q, j in dataset.qrels.items() if q.startswith(lang)}
            cells.append(f"{evaluate(qrels, run)['ndcg@10']:.4f}")
        return " | ".join(cells)

    rows: list[tuple[str, Fusion | None]] = [
        ("dense", lambda d, s: {k: v[0] for k, v in d.items()}),
        ("sparse", lambda d, s: {k: v[0] for k, v in s.items()}),
        ("DBSF", dbsf),
        ("adaptive (default: the rule of fusion.py)", None),
        ("RRF k=60", rrf),
    ]
    rows += [(f"dbsf {a}:{b}", weighted_dbsf(a, b)) for a, b in ((2, 1), (3, 1), (1, 2))]
    rows += [
        (f"sat(w={w}, h={h})", saturating(w, h)) for w in (0.5, 1.0, 1.5) for h in (20, 40, 80)
    ]
    if which == "mixed":
        print(f"| fusion ({model}) | {' | '.join(LANGUAGES)} | all |\n|---|---|---|---|---|")
    else:
        print(f"| fusion | nDCG@10 ({which}, {model}) |\n|---|---|")
    for name, fuse in rows:
        print(f"| {name} | {ndcg(fuse)} |")
    print(f"| adaptive, no sparse floor (stop 11's rule) | {ndcg(None, 0.0)} |")
    for floor in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0):
        print(f"| adaptive, sparse hits >= {floor} x terms | {ndcg(None, floor)} |")
    for gate in (1.0, 1.5, 2.0):
        print(f"| adaptive, sparse out if its best < {gate} x terms | {ndcg(None, 0.0, gate)} |")
    top = sorted(
        max((v[0] for v in s.values()), default=0.0) / terms[q] for q, (_, s) in lists.items()
    )
    print(
        f"\ntop sparse score per query term: quartiles {np.percentile(top, [25, 50, 75]).round(2)}"
    )


if __name__ == "__main__":
    main()
