"""A small, fixed SciFact subset evaluated for real: model, store, sparse terms and fusion."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_pipeline import Pipeline, Settings
from rag_pipeline.embedding import LocalEmbedder
from rag_pipeline.evaluation import EvalRun, evaluate_modes, index_dataset, load_beir
from rag_pipeline.evaluation.dataset import Dataset
from rag_pipeline.evaluation.report import write_report

from ..conftest import SHARED_DATA

SCIFACT = SHARED_DATA / "scifact"


@pytest.fixture(scope="module")
def subset() -> Dataset:
    if not SCIFACT.is_dir():
        pytest.skip("shared SciFact data is not present")
    return load_beir(SCIFACT).subset(20, distractors=150, seed=0)


@pytest.fixture(scope="module")
def evaluated(
    subset: Dataset, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalEmbedder
) -> Iterator[tuple[Pipeline, list[EvalRun]]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("eval"))
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        _, report = index_dataset(pipeline, subset)
        assert report.errors == [] and len(report.added) == len(subset.corpus)
        yield pipeline, evaluate_modes(pipeline, subset, ["dense", "sparse", "hybrid"])


def hand_ndcg_at_10(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> float:
    total = 0.0
    for query, judged in qrels.items():
        ranking = sorted(run.get(query, {}), key=lambda d: run[query][d], reverse=True)[:10]
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranking) if judged.get(d, 0) > 0)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(judged))))
        total += dcg / ideal
    return total / len(qrels)


def test_metrics_agree_with_an_independent_computation(
    subset: Dataset, evaluated: tuple[Pipeline, list[EvalRun]]
) -> None:
    _, runs = evaluated
    for run in runs:
        assert run.queries == 20
        assert run.metrics["ndcg@10"] == pytest.approx(hand_ndcg_at_10(subset.qrels, run.run))


def test_each_mode_retrieves_well_and_hybrid_adds_to_dense(
    evaluated: tuple[Pipeline, list[EvalRun]],
) -> None:
    _, runs = evaluated
    by_mode = {r.mode: r.metrics for r in runs}
    # Floors well under what this subset measures (about 0.9 each), to catch breakage.
    # On 20 queries the order of the three is noise; the full-SciFact table in
    # benchmarks/results/scifact is where hybrid is shown to beat both.
    assert by_mode["dense"]["ndcg@10"] > 0.75
    assert by_mode["sparse"]["ndcg@10"] > 0.75
    # Fusion must never fall below the weaker of its two inputs.
    assert by_mode["hybrid"]["ndcg@10"] >= min(
        by_mode["dense"]["ndcg@10"], by_mode["sparse"]["ndcg@10"]
    )
    assert by_mode["hybrid"]["recall@100"] >= max(
        by_mode["dense"]["recall@100"], by_mode["sparse"]["recall@100"]
    )


def test_second_index_reuses_the_collection(
    subset: Dataset, evaluated: tuple[Pipeline, list[EvalRun]]
) -> None:
    pipeline, _ = evaluated
    _, report = index_dataset(pipeline, subset)
    assert report.added == [] and len(report.skipped) == len(subset.corpus)


def test_report_files_for_people_and_programs(
    subset: Dataset, evaluated: tuple[Pipeline, list[EvalRun]], tmp_path: Path
) -> None:
    _, runs = evaluated
    json_path, md_path, png_path = write_report(tmp_path, subset, runs)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 10_000
    table = md_path.read_text()
    for mode in ("dense", "sparse", "hybrid"):
        assert f"| {mode} |" in table
    import json

    data = json.loads(json_path.read_text())
    assert data["dataset"] == subset.name and data["split"] == "test"
    assert [r["mode"] for r in data["runs"]] == ["dense", "sparse", "hybrid"]
    assert set(data["runs"][0]["metrics"]) == {
        "ndcg@10",
        "recall@10",
        "recall@100",
        "mrr@10",
        "map@100",
    }
