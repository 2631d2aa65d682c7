"""The ``rag`` command: index, query, payload, collections and delete, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from rag_pipeline.cli import app

DOCS = {
    "otters.txt": "Sea otters hold hands while they sleep so that they do not drift apart.\n",
    "kilns.md": "# Kilns\n\nA pottery kiln reaches about 1200 degrees Celsius for stoneware.\n",
    "tents.txt": "Dry a tent fully before you pack it away, or mildew will grow.\n",
}
KILN_QUESTION = "how hot does a pottery kiln get?"


def rag(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    """The output with whitespace collapsed (rich wraps long lines at the terminal width)."""
    return " ".join(text.split())


def collections() -> list[dict]:
    result = rag("collections", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    return path


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def notes(docs: Path) -> Path:
    """The docs folder, indexed into the knowledge id ``notes``."""
    result = rag("index", str(docs), "-k", "notes", "--json")
    assert result.exit_code == 0, result.output
    return docs


def index_json(path: Path, *args: str) -> dict:
    result = rag("index", str(path), "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_index_json_counts_added_skipped_updated_and_deleted_files(docs: Path) -> None:
    report = index_json(docs, "--knowledge", "notes")
    assert report["knowledge_id"] == "notes"
    assert report["files"] == {"added": 3, "updated": 0, "skipped": 0, "deleted": 0, "failed": 0}
    assert report["chunks"]["added"] >= 3 and report["errors"] == []
    assert collections() == [
        {
            "knowledge_id": "notes",
            "model": "all-MiniLM-L6-v2",
            "dimension": 384,
            "points": report["chunks"]["added"],
            "languages": {"Latn": 1.0},
        }
    ]

    again = index_json(docs, "-k", "notes")
    assert again["files"]["skipped"] == 3 and again["chunks"]["added"] == 0

    (docs / "tents.txt").write_text("Pitch a tent with its back to the wind.\n", encoding="utf-8")
    (docs / "otters.txt").unlink()
    kept = index_json(docs, "-k", "notes", "--keep-deleted")
    assert (kept["files"]["updated"], kept["files"]["deleted"]) == (1, 0)
    assert "otters.txt" in sources("notes")
    pruned = index_json(docs, "-k", "notes")
    assert (pruned["files"]["skipped"], pruned["files"]["deleted"]) == (2, 1)
    assert pruned["chunks"]["deleted"] >= 1
    assert sources("notes") == {"kilns.md", "tents.txt"}


def sources(knowledge: str) -> set[str]:
    """The files of every chunk in the collection (top-k above its size)."""
    return {h["source"] for h in query_json("sea otters", knowledge, "--top-k", "50")["hits"]}


def test_index_prints_a_summary_line(docs: Path) -> None:
    result = rag("index", str(docs / "kilns.md"), "-k", "kilns")
    assert result.exit_code == 0, result.output
    assert flat(result.stdout).startswith(
        "kilns: 1 added, 0 updated, 0 skipped, 0 deleted, 0 failed; 1 chunks written, 0 removed"
    )
    assert [c["knowledge_id"] for c in collections()] == ["kilns"]


def test_index_with_a_failed_file_exits_1_and_keeps_the_rest(docs: Path) -> None:
    (docs / "empty.txt").write_bytes(b"")
    text = rag("index", str(docs), "-k", "notes")
    assert text.exit_code == 1, text.output
    assert "failed empty.txt: empty file" in flat(text.stdout)
    assert "3 added" in flat(text.stdout) and "1 failed" in flat(text.stdout)
    as_json = rag("index", str(docs), "-k", "notes", "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["errors"] == [{"path": "empty.txt", "error": "empty file"}]
    assert report["files"]["failed"] == 1 and report["files"]["skipped"] == 3
    assert query_json(KILN_QUESTION, "notes")["hits"][0]["source"] == "kilns.md"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing", "-k", "notes"], "no such file or folder"),
        (["{docs}", "-k", "bad/id"], "invalid knowledge id 'bad/id'"),
        (["{docs}", "--chunk-size", "64", "--chunk-overlap", "64"], "chunk_overlap (64)"),
        (["{docs}", "--chunk-size", "8"], "chunk_size"),
    ],
)
def test_index_usage_errors_exit_2_and_store_nothing(
    docs: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.format(tmp=tmp_path, docs=docs) for a in args]
    result = rag("index", *args, "--json")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert collections() == []


def query_json(text: str, knowledge: str, *args: str) -> dict:
    result = rag("query", text, "-k", knowledge, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_query_json_ranks_the_matching_file_first(notes: Path, mode: str) -> None:
    hits = query_json(KILN_QUESTION, "notes", "--mode", mode, "--top-k", "2")["hits"]
    # Sparse search finds only chunks that share a term with the question.
    assert len(hits) == 2 if mode != "sparse" else 1 <= len(hits) <= 2
    assert hits[0]["source"] == "kilns.md"
    assert "1200 degrees" in hits[0]["text"]
    assert hits[0]["metadata"]["knowledge_id"] == "notes"
    assert hits[0]["metadata"]["heading_path"] == ["Kilns"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert set(hits[0]) == {"id", "score", "text", "source", "metadata"}


def test_query_top_k_bounds_the_hits(notes: Path) -> None:
    assert len(query_json("anything at all", "notes", "--top-k", "1")["hits"]) == 1
    assert len(query_json("anything at all", "notes", "--top-k", "3")["hits"]) == 3


def test_query_prints_ranked_hits(notes: Path) -> None:
    result = rag("query", KILN_QUESTION, "-k", "notes", "--top-k", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("1. kilns.md Kilns score=")
    assert (
        lines[1].strip()
        == "# Kilns A pottery kiln reaches about 1200 degrees Celsius for stoneware."
    )
    assert lines[2].startswith("2. ")
    assert len(lines) == 4


def test_query_with_nothing_matching_says_so(notes: Path) -> None:
    result = rag("query", "zyxwvut", "-k", "notes", "--mode", "sparse")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no hits"
    assert query_json("zyxwvut", "notes", "--mode", "sparse") == {"hits": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["", "-k", "notes"], "the query is empty"),
        (["   ", "-k", "notes"], "the query is empty"),
        (["kiln", "-k", "nope"], "knowledge 'nope' does not exist"),
        (["kiln", "-k", "notes", "--mode", "fuzzy"], "search_mode"),
        (["kiln", "-k", "notes", "--top-k", "0"], "top_k"),
    ],
)
def test_query_errors_exit_2(notes: Path, args: list[str], message: str) -> None:
    for extra in ([], ["--json"]):
        result = rag("query", *args, *extra)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and message in result.stderr


def test_payload_is_the_chat_request_with_retrieved_context(notes: Path) -> None:
    args = ["payload", KILN_QUESTION, "-m", "my-model", "-k", "notes", "--top-k", "1"]
    pretty = rag(*args, "--system", "Answer briefly.")
    assert pretty.exit_code == 0, pretty.output
    assert pretty.stdout.startswith("{\n  ")  # indented for people
    body = json.loads(pretty.stdout)
    assert body["model"] == "my-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == "Answer briefly."
    user = body["messages"][1]["content"]
    assert user.endswith(KILN_QUESTION)
    assert "1200 degrees Celsius" in user and "otters" not in user
    assert [(s["id"], s["file"], s["knowledge_id"]) for s in body["sources"]] == [
        (1, "kilns.md", "notes")
    ]

    compact = rag(*args, "--json")
    assert compact.exit_code == 0, compact.output
    assert compact.stdout.count("\n") == 1  # one JSON object on one line
    plain = json.loads(compact.stdout)
    assert [m["role"] for m in plain["messages"]] == ["user"]
    assert plain["messages"][0] == body["messages"][1] and plain["sources"] == body["sources"]

    wider = json.loads(rag(*args[:-1], "3", "--json").stdout)
    assert len(wider["sources"]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kiln", "-m", "m", "-k", "nope"], "knowledge 'nope' does not exist"),
        (["", "-m", "m", "-k", "notes"], "the query is empty"),
        (["kiln", "-m", "m", "-k", "notes", "--mode", "fuzzy"], "search_mode"),
    ],
)
def test_payload_errors_exit_2(notes: Path, args: list[str], message: str) -> None:
    result = rag("payload", *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_payload_needs_a_model(notes: Path) -> None:
    result = rag("payload", "kiln", "-k", "notes")
    assert result.exit_code == 2
    assert "Missing option" in result.stderr and "--model" in result.stderr
    assert result.stdout == ""


def test_collections_of_an_empty_data_dir() -> None:
    text = rag("collections")
    assert (text.exit_code, text.stdout) == (0, "")
    assert collections() == []


def test_collections_lists_each_knowledge_id(notes: Path) -> None:
    (notes / "tents.txt").write_text("Pitch a tent with its back to the wind.\n" * 200)
    result = rag("index", str(notes / "tents.txt"), "-k", "camping", "--json")
    assert result.exit_code == 0, result.output
    camping_chunks = json.loads(result.stdout)["chunks"]["added"]
    assert camping_chunks > 1  # long enough for several chunks
    rows = collections()
    assert sorted(r["knowledge_id"] for r in rows) == ["camping", "notes"]
    points = {r["knowledge_id"]: r["points"] for r in rows}
    assert points["camping"] == camping_chunks and points["notes"] >= len(DOCS)
    text = rag("collections")
    assert text.exit_code == 0, text.output
    expected = [
        f"{r['knowledge_id']}\t{r['points']} chunks\t{r['model']} ({r['dimension']}d)\tLatn 100%"
        for r in rows
    ]
    assert sorted(text.stdout.splitlines()) == sorted(expected)


def test_delete_drops_the_collection(notes: Path) -> None:
    result = rag("delete", "notes")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "deleted notes"
    assert collections() == []
    assert "knowledge 'notes' does not exist" in rag("query", "kiln", "-k", "notes").stderr
    again = rag("delete", "notes")
    assert again.exit_code == 1
    assert again.stderr.strip() == "error: knowledge 'notes' does not exist"
    invalid = rag("delete", "../notes")
    assert invalid.exit_code == 2
    assert "invalid knowledge id" in invalid.stderr


def test_the_installed_command_reports_exit_codes(tmp_path: Path, data_dir: Path) -> None:
    script = Path(sys.executable).with_name("rag")
    if not script.is_file():
        pytest.skip("the rag console script is not installed next to this interpreter")
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir)}
    listed = subprocess.run(
        [str(script), "collections", "--json"], env=env, capture_output=True, text=True
    )
    assert (listed.returncode, listed.stdout.strip()) == (0, "[]")
    missing = subprocess.run(
        [str(script), "index", str(tmp_path / "nowhere")], env=env, capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no such file or folder")


def test_collections_prints_what_the_library_lists(notes: Path, data_dir: Path) -> None:
    from rag_pipeline import Pipeline, Settings

    with Pipeline(Settings(data_dir=data_dir)) as pipeline:
        infos = pipeline.collections()
    assert [(i.name, i.points) for i in infos] == [
        (r["knowledge_id"], r["points"]) for r in collections()
    ]


def test_a_mostly_korean_folder_with_an_english_only_model_is_told_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EMBEDDER", "local")  # chosen by hand; auto would not choose it
    folder = tmp_path / "ko"
    folder.mkdir()
    for i, text in enumerate(
        [
            "해달은 잠을 잘 때 손을 잡는다.",
            "도자기 가마는 섭씨 1200도에 이른다.",
            "텐트는 말려서 접는다.",
        ]
    ):
        (folder / f"{i}.txt").write_text(text, encoding="utf-8")
    result = rag("index", str(folder), "-k", "korean")
    assert result.exit_code == 0, result.output
    assert flat(result.stderr).count("note:") == 1
    assert "RAG_EMBEDDER=" in flat(result.stderr) and "Hang 100%" in flat(result.stderr)
    listed = rag("collections")
    assert "korean\t3 chunks\tall-MiniLM-L6-v2 (384d)\tHang 100%" in listed.stdout
    # Nothing new embedded: nothing to say again.
    again = rag("index", str(folder), "-k", "korean")
    assert again.exit_code == 0 and "note:" not in again.stderr
    # The note's command gives the collection the multilingual model, which auto then uses.
    assert "rag reindex -k korean --embedder e5onnx" in flat(result.stderr)
    moved = rag("reindex", "-k", "korean", "--embedder", "e5onnx")
    assert moved.exit_code == 0, moved.output
    monkeypatch.delenv("RAG_EMBEDDER")
    assert "e5onnx-multilingual-e5-small (384d)" in rag("collections").stdout
    hits = query_json("해달은 잘 때 무엇을 잡나요?", "korean", "--mode", "dense")["hits"]
    assert hits[0]["source"] == "0.txt"


def test_by_default_a_korean_folder_gets_the_multilingual_model(tmp_path: Path) -> None:
    folder = tmp_path / "ko"
    folder.mkdir()
    (folder / "a.txt").write_text("해달은 잠을 잘 때 손을 잡는다.", encoding="utf-8")
    (folder / "b.txt").write_text("Sea otters hold hands.", encoding="utf-8")
    result = rag("index", str(folder), "-k", "korean")
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stderr
    listed = rag("collections")
    assert "korean\t2 chunks\te5onnx-multilingual-e5-small (384d)\tHang 50%, Latn 50%" in (
        listed.stdout
    )
    hits = query_json("해달은 잘 때 무엇을 잡나요?", "korean", "--mode", "dense")["hits"]
    assert hits[0]["source"] == "a.txt"


def test_index_builds_the_search_index_once_due(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert index_json(docs, "-k", "small")["index_build"] is None  # 3 chunks < 20,000
    monkeypatch.setenv("RAG_HNSW_BUILD_AT", "1")
    (docs / "more.txt").write_text("Kilns need dry wood.\n", encoding="utf-8")
    report = index_json(docs, "-k", "small")
    assert report["index_build"]["collection"] == "small"
    assert report["index_build"]["unindexed_before"] == 4
    (docs / "last.txt").write_text("Tents need pegs.\n", encoding="utf-8")
    assert index_json(docs, "-k", "small", "--no-build-index")["index_build"] is None
    result = rag("index", str(docs), "-k", "small")  # nothing changed, still due: said so
    assert result.exit_code == 0, result.output
    assert "search index: built for 5 chunks" in flat(result.stdout)


def test_build_index_builds_a_knowledge_base_on_demand(notes: Path) -> None:
    result = rag("build-index", "notes", "--at", "100", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"unindexed": 3, "index_build": None}
    result = rag("build-index", "notes", "--json")
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)["index_build"]
    assert (built["collection"], built["unindexed_before"]) == ("notes", 3)
    missing = rag("build-index", "nothing-here")
    assert missing.exit_code == 1
    assert "does not exist" in missing.output
