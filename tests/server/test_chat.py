"""RAG chat: the upstream receives the enriched request with the right chunks, stream or not."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from .conftest import World


def _chat(world: World, body: dict[str, Any], stream: bool = False) -> httpx.Response:
    world.upstream.clear()
    return httpx.post(
        f"{world.url}/api/chat/completions",
        headers=world.admin.headers,
        json={**body, "stream": stream},
        timeout=30,
    )


def _sse(text: str) -> list[Any]:
    events = []
    for block in text.split("\n\n"):
        if block.startswith("data: ") and block[6:] != "[DONE]":
            events.append(json.loads(block[6:]))
    return events


def _forwarded_user_message(world: World) -> str:
    chats = world.upstream.chats()
    assert len(chats) == 1, chats
    return chats[0]["body"]["messages"][-1]["content"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["fake-echo", "gemma3:4b"])
def test_file_chat_sends_enriched_request_upstream(world: World, stream: bool, model: str) -> None:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "What does Ziggy eat?"}],
        "files": [{"type": "file", "id": world.zebra_id}],
    }
    response = _chat(world, body, stream)
    assert response.status_code == 200, response.text
    sent = _forwarded_user_message(world)
    assert sent.startswith("### Task:\nRespond to the user query using the provided context")
    assert "eats 7 apples every Tuesday" in sent
    assert "Project Falcon" not in sent  # only the file asked for
    assert sent.endswith("</context>\n\nWhat does Ziggy eat?")
    forwarded = world.upstream.chats()[0]
    assert "files" not in forwarded["body"]
    if model == "fake-echo":
        assert forwarded["path"] == "/v1/chat/completions"
        assert forwarded["headers"]["Authorization"] == "Bearer sk-fake"
    else:
        assert forwarded["path"] == "/api/chat"
    if stream:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse(response.text)
        sources = events[0]["sources"]
        text = "".join(
            e["choices"][0]["delta"].get("content", "") for e in events[1:] if e.get("choices")
        )
        assert "eats 7 apples" in text
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        answer = response.json()
        sources = answer["sources"]
        assert answer["object"] == "chat.completion"
        assert "eats 7 apples" in answer["choices"][0]["message"]["content"]
    assert sources[0]["source"] == {"type": "file", "id": world.zebra_id}
    assert any("7 apples" in d for d in sources[0]["document"])
    assert sources[0]["metadata"][0]["file_id"] == world.zebra_id
    assert sources[0]["metadata"][0]["source"] == "zebra.txt"


@pytest.mark.parametrize("stream", [False, True])
def test_collection_chat_retrieves_from_every_file(world: World, stream: bool) -> None:
    body = {
        "model": "fake-echo",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the budget of Project Falcon?"},
        ],
        "files": [{"type": "collection", "id": world.knowledge_id}],
    }
    response = _chat(world, body, stream)
    assert response.status_code == 200, response.text
    messages = world.upstream.chats()[0]["body"]["messages"]
    assert messages[0] == {"role": "system", "content": "You are terse."}
    sent = messages[-1]["content"]
    assert "42 million euros" in sent and "7 apples" in sent
    # The best chunk comes first.
    assert sent.index("42 million euros") < sent.index("7 apples")
    sources = (_sse(response.text)[0] if stream else response.json())["sources"]
    assert sources[0]["source"] == {"type": "collection", "id": world.knowledge_id}
    assert {m["file_id"] for m in sources[0]["metadata"]} == {world.zebra_id, world.falcon_id}


def test_plain_chat_is_forwarded_unchanged(world: World) -> None:
    body = {"model": "fake-echo", "messages": [{"role": "user", "content": "hi"}], "seed": 7}
    response = _chat(world, body)
    assert response.status_code == 200
    assert "sources" not in response.json()
    forwarded = world.upstream.chats()[0]["body"]
    assert forwarded == {**body, "stream": False}


def test_unknown_model_is_400(world: World) -> None:
    response = _chat(world, {"model": "does-not-exist", "messages": [{"role": "user", "c": 1}]})
    assert response.status_code == 400
    assert response.json() == {"detail": "Model not found"}
    assert world.upstream.chats() == []


def test_slow_upstream_times_out_with_504(world: World) -> None:
    body = {"model": "fake-slow", "messages": [{"role": "user", "content": "hi"}]}
    response = _chat(world, body)
    assert response.status_code == 504
    assert "did not answer in time" in response.json()["detail"]


def test_models_are_merged_from_both_upstreams(world: World) -> None:
    response = httpx.get(f"{world.url}/api/models", headers=world.admin.headers)
    models = {m["id"]: m for m in response.json()["data"]}
    assert models["fake-echo"]["owned_by"] == "openai"
    assert models["fake-echo"]["openai"]["owned_by"] == "fake"
    assert models["gemma3:4b"]["owned_by"] == "ollama"
    assert models["gemma3:4b"]["ollama"]["urls"] == [0]


def test_ollama_generate_streams_ndjson_through(world: World) -> None:
    world.upstream.clear()
    lines = []
    with httpx.stream(
        "POST",
        f"{world.url}/ollama/api/generate",
        headers=world.admin.headers,
        json={"model": "gemma3:4b", "prompt": "こんにちは！"},
    ) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [line["done"] for line in lines] == [False] * 4 + [True]
    assert "".join(line["response"] for line in lines) == "echo: こんにちは！"
    assert lines[-1]["done_reason"] == "stop" and "eval_count" in lines[-1]
    recorded = world.upstream.requests[-1]
    assert recorded["path"] == "/api/generate" and "Authorization" not in recorded["headers"]


def test_ollama_proxy_embed_and_tags(world: World) -> None:
    headers = world.admin.headers
    body = {"model": "llama3.2:3b", "input": ["Open WebUI は素晴らしい！", "second"]}
    answer = httpx.post(f"{world.url}/ollama/api/embed", headers=headers, json=body).json()
    assert len(answer["embeddings"]) == 2
    tags = httpx.get(f"{world.url}/ollama/api/tags", headers=headers).json()["models"]
    assert {"gemma3:4b", "llama3.2:3b"} <= {t["name"] for t in tags}
    assert all(t["connection_type"] == "local" for t in tags)
