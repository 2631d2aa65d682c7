"""``/v1/embeddings`` and ``/v1/models`` over real HTTP, as Open WebUI's openai engine calls them;
and the Ollama proxy's embedding calls refusing models its upstream does not list."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from rag_pipeline.embedding.batching import BatchingEmbedder
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings
from rag_pipeline.server.routes.openai_compat import MAX_INPUTS, serves

from .conftest import World
from .harness import live_server

TEXTS = ["The zebra named Ziggy lives in Lisbon.", "Open WebUI は素晴らしい！", ""]


def _embed(world: World, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    # Serialised here with ASCII escapes, so a lone surrogate travels as JSON allows it.
    return httpx.post(
        f"{world.url}/v1/embeddings",
        headers={
            **(world.admin.headers if headers is None else headers),
            "Content-Type": "application/json",
        },
        content=json.dumps(body),
        timeout=60,
    )


def _expected(world: World, texts: list[str]) -> np.ndarray:
    return world.server.app.state.pipeline.embedder.embed_documents(texts)


def test_serves_accepts_our_model_under_its_usual_spellings() -> None:
    for requested in (
        "all-MiniLM-L6-v2",
        "all-minilm-l6-v2:latest",
        "sentence-transformers/all-MiniLM-L6-v2",
    ):
        assert serves("all-MiniLM-L6-v2", requested), requested
    path = "/opt/models/all-MiniLM-L6-v2"
    assert serves(path, path) and serves(path, "all-MiniLM-L6-v2:latest")
    for other in ("nomic-embed-text", "all-MiniLM-L12-v2", "", "all-MiniLM-L6-v2:v2"):
        assert not serves("all-MiniLM-L6-v2", other), other


def test_embeddings_are_the_server_models_vectors_for_every_spelling(world: World) -> None:
    name = world.server.app.state.pipeline.embedder.model_name
    expected = _expected(world, TEXTS)
    for model in (name, f"{name}:latest", name.upper(), f"sentence-transformers/{name}"):
        response = _embed(world, {"model": model, "input": TEXTS})
        assert response.status_code == 200, (model, response.text)
        answer = response.json()
        assert set(answer) == {"object", "data", "model", "usage"}
        assert answer["object"] == "list" and answer["model"] == name
        assert [item["index"] for item in answer["data"]] == [0, 1, 2]
        for item, vector in zip(answer["data"], expected, strict=True):
            assert set(item) == {"object", "index", "embedding"}
            assert item["object"] == "embedding"
            assert item["embedding"] == pytest.approx(vector.tolist(), abs=1e-5)
        usage = answer["usage"]
        assert set(usage) == {"prompt_tokens", "total_tokens"}
        assert usage["prompt_tokens"] == usage["total_tokens"] > 0
    # One string is one embedding; dimensions equal to ours and float are accepted.
    one = _embed(
        world,
        {"model": name, "input": TEXTS[0], "encoding_format": "float", "dimensions": 384},
    ).json()
    assert len(one["data"]) == 1 and len(one["data"][0]["embedding"]) == 384
    assert one["data"][0]["embedding"] == pytest.approx(expected[0].tolist(), abs=1e-5)


def test_base64_is_little_endian_float32_as_openai_sends_it(world: World) -> None:
    name = world.server.app.state.pipeline.embedder.model_name
    answer = _embed(world, {"model": name, "input": TEXTS, "encoding_format": "base64"}).json()
    floats = _embed(world, {"model": name, "input": TEXTS}).json()
    for item, plain in zip(answer["data"], floats["data"], strict=True):
        # What the openai client does with an answer it asked for in base64.
        decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
        assert decoded.shape == (384,)
        assert decoded.tolist() == plain["embedding"]  # the very same float32 values
    assert answer["usage"] == floats["usage"]


def test_the_call_open_webui_makes(world: World) -> None:
    """``generate_openai_batch_embeddings``: RAG_EMBEDDING_BATCH_SIZE texts per POST to
    ``{RAG_OPENAI_API_BASE_URL}/embeddings``, an ``sk-`` key, maybe the user headers and a
    prefix field, reading ``data[i]["embedding"]`` in order; batches sent in parallel."""
    name = world.server.app.state.pipeline.embedder.model_name
    texts = [f"chunk {i}: Ziggy eats {i} apples." for i in range(7)]
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {world.bob.key}",
        "X-OpenWebUI-User-Name": "Bob",
        "X-OpenWebUI-User-Id": world.bob.id,
        "X-OpenWebUI-User-Email": "bob@example.com",
        "X-OpenWebUI-User-Role": "user",
    }
    base_url = f"{world.url}/v1"

    def post(batch: list[str]) -> list[list[float]]:
        r = httpx.post(
            f"{base_url}/embeddings",
            headers=headers,
            json={"input": batch, "model": name, "prefix": "passage: "},
            timeout=60,
        )
        r.raise_for_status()
        data = r.json()
        assert "data" in data
        return [elem["embedding"] for elem in data["data"]]

    batch_size = 3
    batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
    with ThreadPoolExecutor(len(batches)) as pool:
        vectors = [v for batch in pool.map(post, batches) for v in batch]
    assert len(vectors) == len(texts)
    for got, want in zip(vectors, _expected(world, texts), strict=True):
        assert got == pytest.approx(want.tolist(), abs=1e-5)


def test_texts_embedded_before_are_answered_from_memory_with_the_same_vectors(
    world: World,
) -> None:
    """Open WebUI embeds a file's chunks again when the file joins a knowledge base."""
    name = world.server.app.state.pipeline.embedder.model_name
    cache = world.server.app.state.embeddings
    texts = [f"Knowledge chunk {i} about zebras in Lisbon." for i in range(5)]
    body = {"model": name, "input": texts}
    first = _embed(world, body)
    hits = cache.hits
    second = _embed(world, {"model": name, "input": texts[::-1]})
    assert first.status_code == second.status_code == 200, second.text
    assert cache.hits == hits + len(texts)
    one = np.array([d["embedding"] for d in first.json()["data"]])
    other = np.array([d["embedding"] for d in second.json()["data"]])[::-1]
    assert np.allclose(one, other, atol=1e-6)
    assert np.allclose(one, _expected(world, texts), atol=1e-5)


def test_unknown_model_is_400_naming_ours(world: World) -> None:
    name = world.server.app.state.pipeline.embedder.model_name
    response = _embed(world, {"model": "text-embedding-3-small", "input": ["hi"]})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "text-embedding-3-small" in detail and f"'{name}'" in detail


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"model": "M", "input": []}, "empty list"),
        ({"model": "M", "input": ["a", 7]}, "token ids"),  # strings and ids mixed
        ({"model": "M", "input": [[1, 2], []]}, "empty list of token ids"),
        ({"model": "M", "input": [[1, 2], [-3]]}, "outside cl100k_base"),
        ({"model": "M", "input": [10**9]}, "outside cl100k_base"),
        ({"model": "M", "input": ["a", None]}, "list of strings"),
        ({"model": "M", "input": {"text": "a"}}, "list of strings"),
        ({"model": "M"}, "list of strings"),
        ({"model": "M", "input": ["a"] * (MAX_INPUTS + 1)}, f"at most {MAX_INPUTS}"),
        ({"model": "M", "input": ["a\ud800b"]}, "lone surrogate"),
        ({"model": "M", "input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "M", "input": "a", "dimensions": 256}, "must be 384"),
        ({"model": "M", "input": "a", "dimensions": "384"}, "must be 384"),
        ({"input": "a"}, "'model'"),
        ({"model": 7, "input": "a"}, "'model'"),
        (["a", "b"], "JSON object"),
    ],
)
def test_bad_input_is_400_with_a_reason(world: World, body: Any, reason: str) -> None:
    if isinstance(body, dict) and body.get("model") == "M":
        body = {**body, "model": world.server.app.state.pipeline.embedder.model_name}
    response = _embed(world, body)
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]


def test_token_ids_are_decoded_and_embedded_as_their_text(world: World) -> None:
    # LangChain's OpenAIEmbeddings sends cl100k_base ids by default; OpenAI accepts them.
    from rag_pipeline.chunking.tokens import get_encoding

    name = world.server.app.state.pipeline.embedder.model_name
    texts = ["Zebras graze at dawn.", "한국어 문장도 됩니다."]
    ids = [get_encoding("cl100k_base").encode(t) for t in texts]
    as_ids = _embed(world, {"model": name, "input": ids})
    as_text = _embed(world, {"model": name, "input": texts})
    one = _embed(world, {"model": name, "input": ids[0]})  # one input as a list of ints
    assert as_ids.status_code == as_text.status_code == one.status_code == 200, as_ids.text
    vectors = [np.array([d["embedding"] for d in r.json()["data"]]) for r in (as_ids, as_text)]
    assert np.allclose(vectors[0], vectors[1], atol=1e-5)
    assert np.allclose(one.json()["data"][0]["embedding"], vectors[1][0], atol=1e-5)


def test_a_body_that_is_not_json_is_400(world: World) -> None:
    response = httpx.post(
        f"{world.url}/v1/embeddings",
        headers={**world.admin.headers, "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize("token", [None, "sk-00000000000000000000000000000000"])
def test_no_or_wrong_token_is_401(world: World, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    name = world.server.app.state.pipeline.embedder.model_name
    embedded = _embed(world, {"model": name, "input": "hi"}, headers=headers)
    listed = httpx.get(f"{world.url}/v1/models", headers=headers)
    for response in (embedded, listed):
        assert response.status_code == 401
        assert set(response.json()) == {"detail"}


def test_models_lists_the_embedding_model_and_the_reranker(world: World) -> None:
    response = httpx.get(f"{world.url}/v1/models", headers=world.bob.headers)
    assert response.status_code == 200
    common = {"object": "model", "created": 0, "owned_by": "rag-pipeline"}
    assert response.json() == {
        "object": "list",
        "data": [
            {
                "id": world.server.app.state.pipeline.embedder.model_name,
                **common,
                "type": "embedding",
            },
            {"id": "rag-signals", **common, "type": "rerank"},
        ],
    }


def test_long_inputs_are_read_as_far_as_the_model_reads(world: World) -> None:
    # A 5 MB input used to be tokenised whole (RSS 808 MB -> 1.43 GB) to be cut at the
    # model's window anyway; it is cut first now, and the vector is the same.
    name = world.server.app.state.pipeline.embedder.model_name
    settings = world.server.app.state.settings
    words = " ".join(f"harbour{n % 97} lantern" for n in range(40_000))  # ~700 KB
    assert len(words) > settings.embed_max_input_chars
    response = _embed(world, {"model": name, "input": [words]})
    assert response.status_code == 200, response.text
    got = np.array(response.json()["data"][0]["embedding"])
    cut = words[: settings.embed_max_input_chars]
    assert np.allclose(got, _expected(world, [cut])[0], atol=1e-5)
    # ... which is what the model makes of the first few thousand characters alone.
    assert np.allclose(got, _expected(world, [words[:8_000]])[0], atol=1e-5)


def test_a_request_past_the_character_limit_is_400_naming_it(world: World) -> None:
    name = world.server.app.state.pipeline.embedder.model_name
    limit = world.server.app.state.settings.embed_max_request_chars
    texts = ["x" * (limit // 2 + 1), "y" * (limit // 2 + 1)]
    response = _embed(world, {"model": name, "input": texts})
    assert response.status_code == 400, response.text
    assert "RAG_EMBED_MAX_REQUEST_CHARS" in response.json()["detail"]


def test_one_model_is_retrieved_by_any_of_its_spellings(world: World) -> None:
    name = world.server.app.state.pipeline.embedder.model_name
    for spelling in (name, f"sentence-transformers/{name}", f"{name}:latest"):
        response = httpx.get(f"{world.url}/v1/models/{spelling}", headers=world.bob.headers)
        assert response.status_code == 200, (spelling, response.text)
        assert response.json()["id"] == name
    missing = httpx.get(f"{world.url}/v1/models/gpt-4o", headers=world.bob.headers)
    assert missing.status_code == 404
    assert "gpt-4o" in missing.json()["detail"]


def test_concurrent_calls_share_the_batching_embedder(tmp_path: Path, local_embedder) -> None:
    """As ``rag serve`` runs it: the pipeline's embedder is a BatchingEmbedder."""
    settings = ServerSettings(data_dir=tmp_path)
    batching = BatchingEmbedder(local_embedder)
    with (
        Pipeline(settings, embedder=batching) as pipeline,
        live_server(settings, pipeline) as server,
    ):
        headers = {
            "Authorization": f"Bearer {server.api_key(server.signup('A', 'a@x.io')['token'])}"
        }
        texts = [[f"text {i}-{j}" for j in range(i + 1)] for i in range(6)]

        def post(batch: list[str]) -> list[list[float]]:
            body = {"model": "all-MiniLM-L6-v2", "input": batch}
            answer = httpx.post(f"{server.url}/v1/embeddings", headers=headers, json=body)
            assert answer.status_code == 200, answer.text
            return [item["embedding"] for item in answer.json()["data"]]

        with ThreadPoolExecutor(len(texts)) as pool:
            answers = list(pool.map(post, texts))
    for batch, got in zip(texts, answers, strict=True):
        want = local_embedder.embed_documents(batch)
        assert np.allclose(np.array(got), want, atol=1e-5)


def test_ollama_embed_of_a_model_the_upstream_lacks_is_400(world: World) -> None:
    world.upstream.clear()
    unknown = httpx.post(
        f"{world.url}/ollama/api/embed",
        headers=world.admin.headers,
        json={"model": "nomic-embed-text", "input": "hello"},
    )
    assert unknown.status_code == 400
    assert unknown.json() == {"detail": "Model 'nomic-embed-text' was not found"}
    legacy = httpx.post(
        f"{world.url}/ollama/api/embeddings",
        headers=world.admin.headers,
        json={"model": "nomic-embed-text", "prompt": "hello"},
    )
    assert legacy.status_code == 400
    assert legacy.json() == {"detail": "Model 'nomic-embed-text' was not found"}
    assert not [r for r in world.upstream.requests if r["method"] == "POST"]
    # A listed model is forwarded, spelt with or without its ':latest'.
    for model in ("fake-ollama", "fake-ollama:latest", "llama3.1"):
        known = httpx.post(
            f"{world.url}/ollama/api/embed",
            headers=world.admin.headers,
            json={"model": model, "input": ["hello world", "second"]},
        )
        assert known.status_code == 200, (model, known.text)
        assert len(known.json()["embeddings"]) == 2
        assert world.upstream.requests[-1]["path"] == "/api/embed"
        assert world.upstream.requests[-1]["body"]["model"] == model
    for body in ([1, 2], "text"):
        response = httpx.post(
            f"{world.url}/ollama/api/embed", headers=world.admin.headers, json=body
        )
        assert response.status_code == 400, response.text
