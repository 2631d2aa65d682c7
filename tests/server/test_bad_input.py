"""Bad input gets a 4xx with a reason, never a 500; crashes leave nothing behind."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

from rag_pipeline.server import ServerSettings
from rag_pipeline.server.app import create_app

from .conftest import World
from .harness import live_server, wait_processed


def test_long_cjk_file_names_are_cut_by_bytes(world: World) -> None:
    name = "資料" * 45 + ".txt"  # 90 characters, 270 bytes before the suffix
    answer = httpx.post(
        f"{world.url}/api/v1/files/",
        headers=world.admin.headers,
        files={"file": (name, "長い名前のファイル。".encode(), "text/plain")},
    )
    assert answer.status_code == 200, answer.text
    stored = answer.json()["filename"]
    assert stored.endswith(".txt") and len(stored.encode("utf-8")) <= 200
    assert stored.startswith("資料資料")  # whole characters, none cut in half
    assert Path(answer.json()["path"]).is_file()
    status = wait_processed(world.url, world.admin.key, answer.json()["id"])
    assert status["status"] == "completed"


def test_odd_ollama_paths_are_400_not_500(world: World) -> None:
    for method, path in (
        ("PUT", "/ollama/%11"),
        ("GET", "/ollama/api/ta gs"),
        ("DELETE", "/ollama/api/%00x"),
    ):
        response = httpx.request(method, world.url + path, headers=world.admin.headers)
        assert response.status_code == 400, (method, path, response.text)
        assert "Ollama API path" in response.json()["detail"]


def test_upload_folders_without_a_row_are_removed_at_start(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    old = settings.upload_dir / "cut-off-upload"
    old.mkdir(parents=True)
    (old / "half.pdf").write_bytes(b"%PDF-1.4 half")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    young = settings.upload_dir / "still-arriving"
    young.mkdir()
    with live_server(settings) as server:
        token = server.signup("Root", "root@example.com")["token"]
        kept = server.api_key(token)
        assert kept.startswith("sk-")
    assert not old.exists()
    assert young.exists()  # another process may still be receiving it


def test_openapi_declares_the_error_answers(tmp_path: Path) -> None:
    schema = create_app(ServerSettings(data_dir=tmp_path, env="dev")).openapi()
    for path, operations in schema["paths"].items():
        if path == "/health":
            continue  # no input, no auth: nothing to refuse
        for method, operation in operations.items():
            declared = set(operation["responses"])
            assert {"400", "401", "404", "413"} <= declared, (method, path)


def test_malformed_chat_bodies_are_422_naming_the_field(world: World) -> None:
    good = {"model": "fake-echo", "messages": [{"role": "user", "content": "hi"}]}
    for changed, field in (
        ({"files": 5}, "files"),
        ({"messages": [None]}, "messages"),
        ({"messages": ["hi"]}, "messages"),
        ({"messages": [{"role": "user", "content": ["plain string"]}]}, "messages"),
        ({"messages": []}, "messages"),
        ({"model": 7}, "model"),
        ({"files": [{"type": "file"}]}, "files"),
    ):
        response = httpx.post(
            f"{world.url}/api/chat/completions",
            headers=world.admin.headers,
            json={**good, **changed},
        )
        assert response.status_code == 422, (changed, response.text)
        assert field in json.dumps(response.json()["detail"]), changed
    for body in ([1, 2], "text", None):
        response = httpx.post(
            f"{world.url}/api/chat/completions", headers=world.admin.headers, json=body
        )
        assert response.status_code == 422, (body, response.text)
    # Fields we do not model pass through to the upstream untouched.
    world.upstream.clear()
    answer = httpx.post(
        f"{world.url}/api/chat/completions",
        headers=world.admin.headers,
        json={
            **good,
            "temperature": 0.2,
            "messages": [{"role": "user", "content": "hi", "name": "x"}],
        },
    )
    assert answer.status_code == 200, answer.text
    sent = world.upstream.chats()[-1]["body"]
    assert sent["temperature"] == 0.2 and sent["messages"][0]["name"] == "x"


def test_bodies_nested_too_deeply_are_400_not_500(world: World) -> None:
    deep_list = "[" * 200_000 + "]" * 200_000
    deep_object = '{"a":' * 5_000 + "1" + "}" * 5_000
    for path in ("/v1/embeddings", "/ollama/api/embed", "/api/v1/knowledge/create"):
        for body in (deep_list, deep_object):
            response = httpx.post(
                world.url + path,
                headers={**world.admin.headers, "Content-Type": "application/json"},
                content=body,
                timeout=30,
            )
            assert response.status_code in (400, 422), (path, response.status_code)
            assert response.json()["detail"], path


def test_ollama_generate_and_chat_with_an_unlisted_model_are_400(world: World) -> None:
    world.upstream.clear()
    for path in ("/ollama/api/generate", "/ollama/api/chat"):
        body = {"model": "no-such-model:7b", "prompt": "hi", "messages": []}
        response = httpx.post(world.url + path, headers=world.admin.headers, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["detail"] == "Model 'no-such-model:7b' was not found"
    assert world.upstream.chats() == []
    # A listed model is forwarded as before.
    body = {"model": "llama3.1", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    response = httpx.post(world.url + "/ollama/api/chat", headers=world.admin.headers, json=body)
    assert response.status_code == 200, response.text
