"""Server set-up: docs only in dev, health, upstream down, local embeddings, CLI, resuming work."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from rag_pipeline.cli import app as cli
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings
from rag_pipeline.server.db import PROCESSING, Database, FileRecord
from rag_pipeline.server.scopes import UPLOADS_COLLECTION

from .conftest import ZEBRA, upload_text
from .harness import live_server, wait_processed


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _admin_key(server) -> str:
    return server.api_key(server.signup("Admin", "admin@example.com")["token"])


def test_docs_only_when_env_is_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV", "dev")
    with live_server(ServerSettings(data_dir=tmp_path / "dev")) as server:
        assert httpx.get(f"{server.url}/docs").status_code == 200
        paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
        assert "/api/chat/completions" in paths and "/api/v1/files/" in paths
    monkeypatch.delenv("ENV")
    with live_server(ServerSettings(data_dir=tmp_path / "prod")) as server:
        assert httpx.get(f"{server.url}/docs").status_code == 404
        assert httpx.get(f"{server.url}/openapi.json").status_code == 404
        assert httpx.get(f"{server.url}/health").json() == {"status": True}


def test_auto_keeps_serving_with_the_model_the_uploads_were_made_with(tmp_path: Path) -> None:
    korean = "해달은 잠을 잘 때 서로 떠내려가지 않도록 손을 잡는다."
    with live_server(ServerSettings(data_dir=tmp_path, embedder="e5onnx")) as server:
        key = _admin_key(server)
        first = upload_text(server.url, key, "haedal.txt", korean)
        assert wait_processed(server.url, key, first["id"])["status"] == "completed"
    # Restarted on the default settings (auto): the uploads collection keeps its model.
    with live_server(ServerSettings(data_dir=tmp_path)) as server:
        assert server.app.state.pipeline.embedder.model_name == "e5onnx-multilingual-e5-small"
        second = upload_text(server.url, key, "gom.txt", "곰은 겨울 동안 굴에서 겨울잠을 잔다.")
        assert wait_processed(server.url, key, second["id"])["status"] == "completed"
        answer = httpx.post(
            f"{server.url}/api/v1/retrieval/query/doc",
            headers={"Authorization": f"Bearer {key}"},
            json={"collection_name": f"file-{first['id']}", "query": "해달은 무엇을 잡나요?"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert korean in answer.json()["documents"][0][0]


def test_upstream_down_is_502_with_a_readable_error(tmp_path: Path) -> None:
    down = _closed_port_url()
    settings = ServerSettings(
        data_dir=tmp_path, openai_api_base_url=f"{down}/v1", ollama_base_url=down
    )
    with live_server(settings) as server:
        headers = {"Authorization": f"Bearer {_admin_key(server)}"}
        body = {"model": "fake-echo", "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(
            f"{server.url}/api/chat/completions", headers=headers, json=body, timeout=20
        )
        assert response.status_code == 502
        assert "cannot reach the OpenAI-compatible upstream" in response.json()["detail"]
        response = httpx.post(
            f"{server.url}/ollama/api/generate",
            headers=headers,
            json={"model": "x", "prompt": "hi"},
            timeout=20,
        )
        assert response.status_code == 502
        assert "cannot reach the Ollama upstream" in response.json()["detail"]
        assert httpx.get(f"{server.url}/api/models", headers=headers).status_code == 502


def test_embed_without_ollama_uses_the_local_model(tmp_path: Path, local_embedder) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    with (
        Pipeline(settings, embedder=local_embedder) as pipeline,
        live_server(settings, pipeline) as server,
    ):
        headers = {"Authorization": f"Bearer {_admin_key(server)}"}
        tags = httpx.get(f"{server.url}/ollama/api/tags", headers=headers).json()["models"]
        assert [t["name"] for t in tags] == ["all-MiniLM-L6-v2"]
        body = {"model": "all-MiniLM-L6-v2", "input": ["hello world", "second"]}
        answer = httpx.post(
            f"{server.url}/ollama/api/embed", headers=headers, json=body, timeout=60
        ).json()
        assert [len(v) for v in answer["embeddings"]] == [384, 384]
        expected = local_embedder.embed_documents(["hello world"])[0]
        assert answer["embeddings"][0] == pytest.approx(expected.tolist(), abs=1e-5)
        unknown = httpx.post(
            f"{server.url}/ollama/api/embed",
            headers=headers,
            json={"model": "nomic-embed-text", "input": "hello"},
        )
        assert unknown.status_code == 400
        assert unknown.json() == {"detail": "Model 'nomic-embed-text' was not found"}
        # Not an object; a lone surrogate (valid JSON, not encodable text): 400, not 500.
        for raw in (b"[1, 2]", b'{"model": "all-MiniLM-L6-v2", "input": "a\\ud800b"}'):
            bad = httpx.post(
                f"{server.url}/ollama/api/embed",
                headers={**headers, "Content-Type": "application/json"},
                content=raw,
            )
            assert bad.status_code == 400, bad.text
        # The library's own Ollama embedder can use the server as its Ollama.
        from rag_pipeline.embedding import OllamaEmbedder

        remote = OllamaEmbedder(
            f"{server.url}/ollama", "all-MiniLM-L6-v2", api_key=headers["Authorization"][7:]
        )
        assert remote.embed_query("hello world") == pytest.approx(expected, abs=1e-5)
        remote.close()


def test_cli_creates_users_and_keys_for_headless_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    made = runner.invoke(
        cli, ["users", "create", "--email", "ops@example.com", "--password", "s3cret-pw"]
    )
    assert made.exit_code == 0, made.output
    assert "created admin ops@example.com" in made.output
    again = runner.invoke(cli, ["users", "create", "--email", "ops@example.com", "--password", "x"])
    assert again.exit_code == 1
    keyed = runner.invoke(cli, ["keys", "create", "--email", "ops@example.com"])
    assert keyed.exit_code == 0, keyed.output
    key = keyed.output.strip()
    assert key.startswith("sk-")
    nobody = runner.invoke(cli, ["keys", "create", "--email", "nobody@example.com"])
    assert nobody.exit_code == 1
    with live_server(ServerSettings(data_dir=tmp_path)) as server:
        ok = httpx.get(
            f"{server.url}/api/v1/knowledge/", headers={"Authorization": f"Bearer {key}"}
        )
        assert ok.status_code == 200
        signin = httpx.post(
            f"{server.url}/api/v1/auths/signin",
            json={"email": "ops@example.com", "password": "s3cret-pw"},
        )
        assert signin.status_code == 200 and signin.json()["role"] == "admin"


def test_restart_resumes_unfinished_processing(tmp_path: Path, local_embedder) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        with live_server(settings, pipeline) as server:
            key = _admin_key(server)
            file_id = upload_text(server.url, key, "zebra.txt", ZEBRA)["id"]
            assert wait_processed(server.url, key, file_id)["status"] == "completed"
        # Simulate a crash mid-processing: the row says processing, held by a replica that
        # died and whose lease has run out; the vectors are gone.
        pipeline.store.delete_where(UPLOADS_COLLECTION, "file_id", file_id)
        database = Database(settings.resolved_database_url())
        with database.session() as session:
            session.execute(
                update(FileRecord)
                .where(FileRecord.id == file_id)
                .values(
                    status=PROCESSING,
                    content=None,
                    lease_holder="a-replica-that-died",
                    lease_expires=0.0,
                    attempts=1,
                )
            )
        database.close()
        with live_server(settings, pipeline) as server:
            assert wait_processed(server.url, key, file_id)["status"] == "completed"
            assert pipeline.store.count(UPLOADS_COLLECTION) == 1
            got = httpx.get(
                f"{server.url}/api/v1/files/{file_id}",
                headers={"Authorization": f"Bearer {key}"},
            ).json()
            assert got["data"]["content"].startswith("The zebra named Ziggy")


def test_startup_loads_the_embedding_model_before_any_request(tmp_path: Path) -> None:
    from rag_pipeline.embedding.local import LocalEmbedder

    fresh = LocalEmbedder()
    settings = ServerSettings(data_dir=tmp_path)
    with Pipeline(settings, embedder=fresh) as pipeline, live_server(settings, pipeline) as server:
        assert httpx.get(f"{server.url}/health").status_code == 200
        deadline = time.monotonic() + 120
        while fresh._model is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fresh._model is not None
