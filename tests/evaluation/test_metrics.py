from __future__ import annotations

import math

import pytest

from rag_pipeline.evaluation.metrics import evaluate, recall_curve


def ndcg_at_10(relevant: set[str], ranking: list[str]) -> float:
    """Binary-relevance nDCG@10, written out by hand as the independent check."""
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranking[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return dcg / ideal


def as_run(ranking: list[str]) -> dict[str, float]:
    return {d: float(len(ranking) - i) for i, d in enumerate(ranking)}


def test_metrics_match_hand_computation() -> None:
    qrels = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}, "q3": {"z": 1}}
    rankings = {"q1": ["a", "x", "b"], "q2": ["y"] * 0 + ["w", "v", "c"], "q3": ["n"]}
    run = {q: as_run(r) for q, r in rankings.items()}
    metrics = evaluate(qrels, run)
    expected_ndcg = sum(ndcg_at_10(set(qrels[q]), rankings[q]) for q in qrels) / 3
    assert metrics["ndcg@10"] == pytest.approx(expected_ndcg)
    assert metrics["recall@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    # AP: q1 = (1/1 + 2/3) / 2, q2 = (1/3) / 1, q3 = 0
    assert metrics["map@100"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 3) / 3)


def test_unanswered_queries_count_as_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    metrics = evaluate(qrels, {"q1": {"a": 1.0}})
    assert metrics["ndcg@10"] == pytest.approx(0.5)


def test_mrr_is_cut_at_10() -> None:
    ranking = [f"d{i}" for i in range(20)] + ["hit"]
    metrics = evaluate({"q": {"hit": 1}}, {"q": as_run(ranking)})
    assert metrics["mrr@10"] == 0.0
    assert metrics["recall@100"] == 1.0


def test_recall_curve_grows_with_k() -> None:
    qrels = {"q": {"a": 1, "b": 1, "c": 1, "d": 1}}
    run = {"q": as_run(["a", "x", "b", "y", "z", "c"] + [f"n{i}" for i in range(60)] + ["d"])}
    curve = recall_curve(qrels, run, ks=(1, 3, 10, 100))
    assert curve == {1: 0.25, 3: 0.5, 10: 0.75, 100: 1.0}
