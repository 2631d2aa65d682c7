"""`rag eval` from the command line: JSON for programs, a report folder for people."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pipeline.cli import app

DOCS = {
    "d1": ("Otters", "Sea otters hold hands while they sleep so that they do not drift apart."),
    "d2": ("Volcanoes", "Basaltic lava is hotter and runnier than rhyolitic lava."),
    "d3": ("Bread", "Sourdough rises because wild yeast ferments the dough overnight."),
    "d4": ("Bees", "Honey bees dance to tell their hive where the flowers are."),
}
QUERIES = {"q1": "why do otters hold hands", "q2": "how do bees share where flowers are"}
QRELS = {"q1": "d1", "q2": "d4"}


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    root = tmp_path / "toy"
    (root / "qrels").mkdir(parents=True)
    rows = [{"_id": k, "title": t, "text": x} for k, (t, x) in DOCS.items()]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rows = [{"_id": k, "text": t} for k, t in QUERIES.items()]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q, d in QRELS.items()]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


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
