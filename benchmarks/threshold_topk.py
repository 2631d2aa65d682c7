"""Choose the default top_k and relevance threshold from SciFact, not by guessing.

For each search mode it retrieves the top 20 chunks of every SciFact test query and of a
set of off-topic questions the corpus cannot answer, then reports:

* per top_k: how often the context holds a relevant document (hit rate), the share of
  relevant documents it covers (recall), the share of its chunks that are relevant
  (precision) and the tokens it costs;
* per threshold: the on-topic hits lost against the off-topic queries rejected outright.

Reuses the index `rag eval` builds (same data dir and settings), so run that first:
    RAG_DATA_DIR=.rag-eval rag eval ../shared/data/scifact
    RAG_DATA_DIR=.rag-eval .venv/bin/python benchmarks/threshold_topk.py
Writes benchmarks/results/threshold_topk.json and .md.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from rag_pipeline import Pipeline, Settings
from rag_pipeline.chunking.tokens import count_tokens
from rag_pipeline.evaluation.dataset import load_beir
from rag_pipeline.evaluation.runner import eval_collection, index_dataset

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
OUT = ROOT / "benchmarks" / "results"
TOP_KS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20)
# Thresholds on a hit's cosine similarity (dense and hybrid), and for comparison on the
# raw score of each mode (BM25 for sparse, the fused DBSF score for hybrid).
SIMILARITIES = (0.0, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
SCORES = {
    "sparse": (0.0, 5.0, 10.0, 12.0, 15.0, 20.0),
    "hybrid": (0.0, 0.5, 1.0, 1.25, 1.5, 2.0),
}
# Questions a scientific-claims corpus cannot answer: what a threshold should turn away.
OFF_TOPIC = [
    "what is the refund policy?",
    "how do I reset my router password?",
    "best recipe for sourdough bread",
    "who won the football world cup in 2014?",
    "how many vacation days do employees get?",
    "what time does the office open on Saturdays?",
    "how to configure nginx as a reverse proxy",
    "translate good morning into French",
    "what is the capital of Australia?",
    "how do I file an expense report?",
    "recommend a good science fiction novel",
    "how to change a flat bicycle tire",
    "what are the shipping costs to Canada?",
    "how do I install Python on Windows?",
    "what is the dress code for the company party?",
    "when is the next train to Osaka?",
    "how to write a cover letter",
    "what is the return window for electronics?",
    "how do I cancel my subscription?",
    "which programming language should I learn first?",
]


def main() -> None:
    settings = Settings()
    pipeline = Pipeline(settings)
    dataset = load_beir(SCIFACT, "test")
    collection = eval_collection(dataset, pipeline)
    if pipeline.store.collection_info(collection) is None:
        index_dataset(pipeline, dataset)
    results: dict[str, object] = {
        "dataset": "scifact/test",
        "queries": len(dataset.queries),
        "off_topic_queries": len(OFF_TOPIC),
        "model": pipeline.embedder.model_name,
        "chunk_size": settings.chunk_size,
        "top_k": settings.top_k,
        "modes": {},
    }
    for mode in ("dense", "sparse", "hybrid"):
        retriever = pipeline.retriever(mode)
        retriever.min_similarity = -1.0  # ask for similarities, filter nothing
        queries = dataset.queries.items()
        on = {qid: retriever.search(text, [collection], top_k=20) for qid, text in queries}
        off = [retriever.search(text, [collection], top_k=20) for text in OFF_TOPIC]
        by_k = []
        for k in TOP_KS:
            hit, recall, precision, tokens = [], [], [], []
            for qid, hits in on.items():
                relevant = {d for d, grade in dataset.qrels[qid].items() if grade > 0}
                top = hits[:k]
                found = {h.source for h in top} & relevant
                hit.append(1.0 if found else 0.0)
                recall.append(len(found) / len(relevant))
                precision.append(sum(h.source in relevant for h in top) / max(len(top), 1))
                tokens.append(sum(count_tokens(h.text) for h in top))
            by_k.append(
                {
                    "top_k": k,
                    "hit_rate": round(statistics.mean(hit), 4),
                    "recall": round(statistics.mean(recall), 4),
                    "precision": round(statistics.mean(precision), 4),
                    "context_tokens_mean": round(statistics.mean(tokens)),
                }
            )
        cut = settings.top_k
        by_threshold = []
        kinds = ([("similarity", t) for t in SIMILARITIES] if mode != "sparse" else []) + [
            ("score", t) for t in SCORES.get(mode, ())
        ]
        for kind, t in kinds:

            def kept(hits: list, kind: str = kind, t: float = t, cut: int = cut) -> list:
                return [h for h in hits[:cut] if getattr(h, kind) >= t]

            kept_hit = []
            for qid, hits in on.items():
                relevant = {d for d, grade in dataset.qrels[qid].items() if grade > 0}
                kept_hit.append(1.0 if {h.source for h in kept(hits)} & relevant else 0.0)
            by_threshold.append(
                {
                    "on": kind,
                    "threshold": t,
                    "on_topic_hit_rate": round(statistics.mean(kept_hit), 4),
                    "on_topic_chunks_kept": round(
                        statistics.mean(len(kept(h)) for h in on.values()), 2
                    ),
                    "off_topic_rejected": round(sum(not kept(h) for h in off) / len(off), 4),
                }
            )
        top_sim = (
            {
                "on_topic": _summary(
                    [h[0].similarity for h in on.values() if h and h[0].similarity]
                ),
                "off_topic": _summary([h[0].similarity for h in off if h and h[0].similarity]),
            }
            if mode != "sparse"
            else None
        )
        results["modes"][mode] = {  # type: ignore[index]
            "by_top_k": by_k,
            "by_threshold": by_threshold,
            "top1_score_on_topic": _summary([h[0].score for h in on.values() if h]),
            "top1_score_off_topic": _summary([h[0].score for h in off if h]),
            "top1_similarity": top_sim,
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "threshold_topk.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "threshold_topk.md").write_text(_markdown(results))
    print(_markdown(results))


def _summary(scores: list[float]) -> dict[str, float]:
    ordered = sorted(scores)
    if not ordered:
        return {}
    return {
        "min": round(ordered[0], 4),
        "p10": round(ordered[len(ordered) // 10], 4),
        "median": round(statistics.median(ordered), 4),
        "p90": round(ordered[(len(ordered) * 9) // 10], 4),
        "max": round(ordered[-1], 4),
    }


def _markdown(results: dict) -> str:
    lines = [
        f"# top_k and relevance threshold on {results['dataset']}",
        "",
        f"{results['queries']} queries, {results['off_topic_queries']} off-topic queries; "
        f"model `{results['model']}`, chunks {results['chunk_size']} tokens.",
    ]
    for mode, data in results["modes"].items():
        lines += ["", f"## {mode}", "", "| top_k | hit rate | recall | precision | tokens |"]
        lines.append("|---|---|---|---|---|")
        for row in data["by_top_k"]:
            lines.append(
                f"| {row['top_k']} | {row['hit_rate']:.3f} | {row['recall']:.3f} | "
                f"{row['precision']:.3f} | {row['context_tokens_mean']} |"
            )
        on, off = data["top1_score_on_topic"], data["top1_score_off_topic"]
        lines += [
            "",
            f"Top-1 score, on-topic: median {on['median']}, p10 {on['p10']}, min {on['min']}; "
            f"off-topic: median {off['median']}, p90 {off['p90']}, max {off['max']}.",
        ]
        if data["top1_similarity"]:
            on, off = data["top1_similarity"]["on_topic"], data["top1_similarity"]["off_topic"]
            lines.append(
                f"Top-1 cosine similarity, on-topic: median {on['median']}, p10 {on['p10']}, "
                f"min {on['min']}; off-topic: median {off['median']}, p90 {off['p90']}, "
                f"max {off['max']}."
            )
        lines += [
            "",
            f"Thresholds at top_k {results['top_k']}:",
            "",
            "| on | threshold | on-topic hit rate | on-topic chunks kept | off-topic rejected |",
            "|---|---|---|---|---|",
        ]
        for row in data["by_threshold"]:
            lines.append(
                f"| {row['on']} | {row['threshold']} | {row['on_topic_hit_rate']:.3f} | "
                f"{row['on_topic_chunks_kept']:.2f} | {row['off_topic_rejected']:.3f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
