from __future__ import annotations

import numpy as np
import pytest

from rag_pipeline.embedding import OllamaEmbedder, OpenAIEmbedder
from rag_pipeline.errors import ConfigError, EmbeddingError

from ..conftest import DIM, FakeEmbedServer, fake_vector


def test_ollama_batches_and_sends_bearer_token(embed_server: FakeEmbedServer) -> None:
    embedder = OllamaEmbedder(
        embed_server.url + "/ollama", "nomic-embed-text", api_key="sk-test", batch_size=3
    )
    texts = [f"text {i}" for i in range(7)]
    vectors = embedder.embed_documents(texts)
    assert vectors.shape == (7, DIM)
    assert np.allclose(vectors[5], fake_vector("text 5"))
    assert sorted(len(r["body"]["input"]) for r in embed_server.requests) == [1, 3, 3]
    assert {r["path"] for r in embed_server.requests} == {"/ollama/api/embed"}
    assert {r["auth"] for r in embed_server.requests} == {"Bearer sk-test"}
    assert embedder.dimension == DIM


def test_openai_orders_by_index_and_sends_input_type(embed_server: FakeEmbedServer) -> None:
    embedder = OpenAIEmbedder(embed_server.url + "/v1", "e5-small", send_input_type=True)
    vectors = embedder.embed_documents(["a", "b", "c"])
    assert np.allclose(vectors, [fake_vector(t) for t in "abc"])
    query = embedder.embed_query("q")
    assert np.allclose(query, fake_vector("q"))
    bodies = [r["body"] for r in embed_server.requests]
    assert [b["input_type"] for b in bodies] == ["passage", "query"]
    assert embed_server.requests[0]["path"] == "/v1/embeddings"


def test_e5_prefixes_are_applied_without_input_type(embed_server: FakeEmbedServer) -> None:
    embedder = OpenAIEmbedder(embed_server.url + "/v1", "intfloat/multilingual-e5-small")
    embedder.embed_documents(["doc"])
    embedder.embed_query("question")
    assert [r["body"]["input"] for r in embed_server.requests] == [
        ["passage: doc"],
        ["query: question"],
    ]


def test_retries_on_429_and_5xx_then_succeeds(embed_server: FakeEmbedServer) -> None:
    embed_server.faults = [429, 503, 500]
    embedder = OllamaEmbedder(embed_server.url, "m", backoff=0.01)
    vectors = embedder.embed_documents(["x"])
    assert np.allclose(vectors[0], fake_vector("x"))
    assert len(embed_server.requests) == 4


def test_gives_up_naming_url_and_status(embed_server: FakeEmbedServer) -> None:
    embed_server.faults = [401]
    embedder = OllamaEmbedder(embed_server.url, "m", backoff=0.01)
    with pytest.raises(EmbeddingError) as info:
        embedder.embed_documents(["x"])
    assert info.value.status == 401
    assert info.value.url == embed_server.url + "/api/embed"
    assert "401" in str(info.value) and embed_server.url in str(info.value)
    assert len(embed_server.requests) == 1  # a 401 is not retried


def test_retries_are_bounded(embed_server: FakeEmbedServer) -> None:
    embed_server.faults = [503] * 10
    embedder = OllamaEmbedder(embed_server.url, "m", backoff=0.001, max_retries=2)
    with pytest.raises(EmbeddingError, match="503"):
        embedder.embed_documents(["x"])
    assert len(embed_server.requests) == 3


def test_dimension_disagreement_is_an_error(embed_server: FakeEmbedServer) -> None:
    embedder = OllamaEmbedder(embed_server.url, "m")
    embedder.embed_documents(["x"])
    embed_server.dim = DIM + 4
    with pytest.raises(EmbeddingError, match="expected 8"):
        embedder.embed_documents(["y"])
    embed_server.dim = DIM
    embed_server.ragged = True
    with pytest.raises(EmbeddingError, match="different sizes"):
        embedder.embed_documents(["y", "z"])


def test_unreachable_endpoint_is_named() -> None:
    embedder = OllamaEmbedder("http://127.0.0.1:9", "m", max_retries=0, timeout=2)
    with pytest.raises(EmbeddingError, match=r"127\.0\.0\.1:9/api/embed"):
        embedder.embed_query("x")


def test_bad_base_url_is_rejected_when_built() -> None:
    with pytest.raises(ConfigError):
        OllamaEmbedder("localhost:11434", "m")


def test_concurrent_batches_keep_order(embed_server: FakeEmbedServer) -> None:
    embedder = OllamaEmbedder(embed_server.url, "m", batch_size=2, concurrency=4)
    texts = [f"t{i}" for i in range(21)]
    vectors = embedder.embed_documents(texts)
    assert np.allclose(vectors, [fake_vector(t) for t in texts])
