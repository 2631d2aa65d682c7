"""IR metrics through pytrec_eval (trec_eval, the implementation BEIR reports with)."""

from __future__ import annotations

from collections.abc import Mapping

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")
RECALL_CURVE = (1, 2, 3, 5, 10, 20, 50, 100)

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _cut(run: Run, k: int) -> dict[str, dict[str, float]]:
    return {
        q: dict(sorted(docs.items(), key=lambda item: item[1], reverse=True)[:k])
        for q, docs in run.items()
    }


def _mean(per_query: Mapping[str, Mapping[str, float]], key: str, queries: int) -> float:
    # Queries with no results still count (as 0), as BEIR counts them.
    return sum(v[key] for v in per_query.values()) / queries if queries else 0.0


def evaluate(qrels: Qrels, run: Run) -> dict[str, float]:
    """Return nDCG@10, Recall@10/100, MRR@10 and MAP@100 averaged over the judged queries."""
    import pytrec_eval

    judged = {q: dict(d) for q, d in qrels.items()}
    full = {q: dict(run.get(q, {})) for q in judged}
    n = len(judged)
    per_query = pytrec_eval.RelevanceEvaluator(
        judged, {"ndcg_cut.10", "recall.10,100", "map_cut.100"}
    ).evaluate(full)
    top10 = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(_cut(full, 10))
    return {
        "ndcg@10": _mean(per_query, "ndcg_cut_10", n),
        "recall@10": _mean(per_query, "recall_10", n),
        "recall@100": _mean(per_query, "recall_100", n),
        "mrr@10": _mean(top10, "recip_rank", n),
        "map@100": _mean(per_query, "map_cut_100", n),
    }


def recall_curve(qrels: Qrels, run: Run, ks: tuple[int, ...] = RECALL_CURVE) -> dict[int, float]:
    """Return Recall@k for each k."""
    import pytrec_eval

    judged = {q: dict(d) for q, d in qrels.items()}
    full = {q: dict(run.get(q, {})) for q in judged}
    measure = "recall." + ",".join(str(k) for k in ks)
    per_query = pytrec_eval.RelevanceEvaluator(judged, {measure}).evaluate(full)
    return {k: _mean(per_query, f"recall_{k}", len(judged)) for k in ks}
