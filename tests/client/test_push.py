"""The client against a live ``rag serve``: push a folder, re-push nothing, chat and embed."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_pipeline.cli import app as cli
from rag_pipeline.client import AsyncRagClient, RagClient, push
from rag_pipeline.errors import AuthError
from rag_pipeline.ingest import walk_files
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings
from tests.server.harness import FakeUpstream, LiveServer, fake_upstream, live_server

MIXED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mixed_docs"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with fake_upstream() as state:
        yield state


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, local_embedder
) -> Iterator[tuple[LiveServer, str]]:
    settings = ServerSettings(
        data_dir=tmp_path_factory.mktemp("client-server"),
        openai_api_base_url=upstream.openai_url,
        ollama_base_url=None,
    )
    with (
        Pipeline(settings, embedder=local_embedder) as pipeline,
        live_server(settings, pipeline) as server,
    ):
        answer = server.signup("Admin", "admin@example.com", "pw-123456")
        yield server, server.api_key(answer["token"])


def test_push_mixed_docs_then_repush_uploads_nothing(served: tuple[LiveServer, str]) -> None:
    if not MIXED.is_dir():
        pytest.skip("shared test data (../shared/data/mixed_docs) is not present")
    server, key = served
    expected = {p.relative_to(MIXED).as_posix() for p in walk_files(MIXED)}
    with RagClient(server.url, key) as client:
        seen: list[tuple[str, str]] = []
        report = push(client, [MIXED], "mixed", progress=lambda n, s: seen.append((n, s)))
        done = set(report.added) | {e["path"] for e in report.errors}
        assert done == expected
        for error in report.errors:
            assert error["error"], error  # a named failure, never a silent one
        assert len(report.added) >= len(expected) - 2, report.errors
        assert len(report.uploaded) == len(expected)
        kb = client.find_knowledge("mixed")
        assert kb is not None and kb["file_count"] == len(report.added)
        statuses = {f["meta"]["name"]: f["data"]["status"] for f in client.files()}
        assert set(statuses.values()) <= {"completed", "failed"}
        again = push(client, [MIXED], "mixed")
        assert again.uploaded == [] and again.added == []
        assert set(again.skipped) == set(report.added)
        hits = client.query([kb["id"]], "Norwich City football club", k=3)
        assert any("norwich" in m["name"].lower() for m in hits["metadatas"][0])
    assert {s for _, s in seen} <= {"uploaded", "added", "failed", "skipped"}


def test_client_round_trip(served: tuple[LiveServer, str], tmp_path: Path) -> None:
    server, _ = served
    note = tmp_path / "otter.md"
    note.write_text("# Otters\n\nOtters hold hands while sleeping.\n", encoding="utf-8")
    with RagClient(server.url, email="admin@example.com", password="pw-123456") as client:
        file = client.upload_and_wait(note)
        assert file["data"]["status"] == "completed"
        assert "hold hands" in file["data"]["content"]
        kb = client.create_knowledge("Animals")
        client.add_file(kb["id"], file["id"])
        assert [f["id"] for f in client.knowledge_files(kb["id"])] == [file["id"]]
        answer = client.chat("fake-echo", "How do otters sleep?", collections=[kb["id"]])
        assert "hold hands" in answer["sources"][0]["document"][0]
        events = list(client.chat_stream("fake-echo", "How do otters sleep?", files=[file["id"]]))
        assert "sources" in events[0]
        assert "hold hands" in json.dumps(events[1:])
        vectors = client.embed("all-MiniLM-L6-v2", ["otters"])
        assert len(vectors[0]) == 384
        client.remove_file(kb["id"], file["id"])
        assert client.knowledge_files(kb["id"]) == []
        client.delete_knowledge(kb["id"])
        client.delete_file(file["id"])
    with pytest.raises(AuthError):
        RagClient(server.url, "sk-wrong").models()


def test_async_client(served: tuple[LiveServer, str], tmp_path: Path) -> None:
    server, key = served
    note = tmp_path / "heron.txt"
    note.write_text("Herons stand on one leg to keep warm.\n", encoding="utf-8")

    async def run() -> None:
        async with AsyncRagClient(server.url, key) as client:
            uploaded = await client.upload(note)
            assert (await client.wait(uploaded["id"], poll=0.1))["status"] == "completed"
            answer = await client.chat("fake-echo", "Why one leg?", files=[uploaded["id"]])
            assert "one leg" in answer["sources"][0]["document"][0]
            events = [
                e async for e in client.chat_stream("fake-echo", "hi", files=[uploaded["id"]])
            ]
            assert "sources" in events[0]

    asyncio.run(run())


def test_push_command_exit_codes(served: tuple[LiveServer, str], tmp_path: Path) -> None:
    server, key = served
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha file about apples.\n", encoding="utf-8")
    (folder / "b.md").write_text("# Beta\n\nBeta file about bananas.\n", encoding="utf-8")
    shutil.copy(folder / "a.txt", folder / "a-copy.txt")  # its own entry (text stored once)
    runner = CliRunner()
    args = ["push", str(folder), "--server", server.url, "--knowledge", "cli", "--json"]
    first = runner.invoke(cli, [*args, "--api-key", key])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["files"]["uploaded"] == 3 and report["files"]["failed"] == 0
    second = json.loads(runner.invoke(cli, [*args, "--api-key", key]).output)
    assert second["files"]["uploaded"] == 0 and second["files"]["skipped"] == 3
    (folder / "c.pdf").write_bytes(b"not really a pdf")
    partial = runner.invoke(cli, [*args, "--api-key", key])
    assert partial.exit_code == 1
    assert json.loads(partial.output)["errors"][0]["path"] == "c.pdf"
    assert runner.invoke(cli, [*args, "--api-key", "sk-bad"]).exit_code == 2
    missing = runner.invoke(
        cli,
        [
            "push",
            str(tmp_path / "nope"),
            "--server",
            server.url,
            "--knowledge",
            "x",
            "--api-key",
            key,
        ],
    )
    assert missing.exit_code == 2


def test_push_syncs_changes_and_removals_through_sync_diff(
    served: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, key = served
    folder = tmp_path / "synced"
    (folder / "sub").mkdir(parents=True)
    (folder / "keep.txt").write_text("Kept: otters hold hands.\n", encoding="utf-8")
    (folder / "edit.txt").write_text("Version one says the lake is green.\n", encoding="utf-8")
    (folder / "sub" / "keep.txt").write_text("Another keep, in a subfolder.\n", encoding="utf-8")
    (folder / "gone.md").write_text("# Gone\n\nThis file will be deleted.\n", encoding="utf-8")
    with RagClient(server.url, key) as client:
        first = push(client, [folder], "sync-kb")
        assert sorted(first.uploaded) == ["edit.txt", "gone.md", "keep.txt", "sub/keep.txt"]
        again = push(client, [folder], "sync-kb")
        assert again.uploaded == [] and len(again.skipped) == 4 and again.removed == []

        (folder / "edit.txt").write_text("Version two says the lake is blue.\n", encoding="utf-8")
        (folder / "gone.md").unlink()
        third = push(client, [folder], "sync-kb")
        assert third.uploaded == ["edit.txt"] and third.removed == ["gone.md"]
        assert sorted(third.skipped) == ["keep.txt", "sub/keep.txt"]
        files = client.knowledge_files(third.knowledge_id)
        assert sorted(f["meta"]["name"] for f in files) == ["edit.txt", "keep.txt", "keep.txt"]
        hits = client.query([third.knowledge_id], "what colour is the lake?", k=5)
        texts = " ".join(hits["documents"][0])
        assert "blue" in texts and "green" not in texts and "deleted" not in texts


def test_knowledge_files_reads_every_page(
    served: tuple[LiveServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_pipeline.client import _client

    server, key = served
    folder = tmp_path / "paged"
    folder.mkdir()
    for i in range(5):
        (folder / f"n{i}.txt").write_text(f"Paged note {i} about herons.\n", encoding="utf-8")
    monkeypatch.setattr(_client, "PAGE", 2)  # pages of 2
    with RagClient(server.url, key) as client:
        pushed = push(client, [folder], "paged-kb")
        files = client.knowledge_files(pushed.knowledge_id)
        assert sorted(f["meta"]["name"] for f in files) == [f"n{i}.txt" for i in range(5)]
        assert len({f["id"] for f in files}) == 5
        mine = client.files()  # this module's earlier tests uploaded files too
        assert {f["id"] for f in files} <= {f["id"] for f in mine}
        assert len({f["id"] for f in mine}) == len(mine)
