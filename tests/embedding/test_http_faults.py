"""Faulty embedding upstreams: retries where a later try can succeed, clear errors otherwise.

``FaultyUpstream`` is a real loopback HTTP server with scripted faults per request; the
server's tests (tests/server/test_upstream_faults.py) use it for chats too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_pipeline._retry import retry_after_seconds
from rag_pipeline.embedding import OllamaEmbedder, OpenAIEmbedder
from rag_pipeline.errors import EmbeddingError
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.settings import Settings
from rag_pipeline.types import Document

from ..fault_server import DIM, Fault, FaultyUpstream, faulty_upstream, status, vector


@pytest.fixture
def faulty() -> Iterator[FaultyUpstream]:
    with faulty_upstream() as state:
        yield state


EMBEDDERS = {
    "ollama": lambda url, **kw: OllamaEmbedder(url, "fake-embed", **kw),
    "openai": lambda url, **kw: OpenAIEmbedder(url + "/v1", "fake-embed", **kw),
}


@pytest.fixture(params=sorted(EMBEDDERS))
def make(request: pytest.FixtureRequest, faulty: FaultyUpstream) -> Iterator[Callable[..., Any]]:
    """Build the parametrised embedder against ``faulty``, with fast retries by default."""
    built: list[Any] = []

    def build(**kw: Any) -> Any:
        kw = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0, **kw}
        embedder = EMBEDDERS[request.param](faulty.url, **kw)
        built.append(embedder)
        return embedder

    yield build
    for embedder in built:
        embedder.close()


def test_transient_faults_are_retried_until_an_answer(
    faulty: FaultyUpstream, make: Callable[..., Any]
) -> None:
    embedder = make(timeout=0.5, max_retries=5)
    faulty.embed_faults = [
        status(503),
        status(500),
        status(502),
        Fault("reset"),
        Fault("timeout", seconds=2.0),
    ]
    vectors = embedder.embed_documents(["x", "y"])
    assert np.allclose(vectors, [vector("x"), vector("y")])
    assert len(faulty.attempts()) == 6


def test_retry_after_is_honoured(faulty: FaultyUpstream, make: Callable[..., Any]) -> None:
    embedder = make()
    faulty.embed_faults = [status(429, Retry_After="1")]
    started = time.monotonic()
    assert np.allclose(embedder.embed_query("x"), vector("x"))
    first, second = faulty.attempts()
    assert second - first >= 0.95
    assert time.monotonic() - started >= 1.0


def test_retry_after_is_capped(faulty: FaultyUpstream, make: Callable[..., Any]) -> None:
    embedder = make(max_retry_after=0.2)
    faulty.embed_faults = [status(429, Retry_After="3600")]
    started = time.monotonic()
    embedder.embed_query("x")
    assert time.monotonic() - started < 2.0
    assert len(faulty.attempts()) == 2


def test_no_try_starts_past_the_deadline(faulty: FaultyUpstream, make: Callable[..., Any]) -> None:
    # Waiting 5 s as asked would end past the 1 s deadline: give up at once, saying why.
    embedder = make(retry_deadline=1.0)
    faulty.embed_faults = [status(503, Retry_After="5")]
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match="503") as info:
        embedder.embed_query("x")
    assert time.monotonic() - started < 1.0
    assert len(faulty.attempts()) == 1
    assert info.value.status == 503 and info.value.url == embedder.url


def test_retries_are_bounded_and_say_so(faulty: FaultyUpstream, make: Callable[..., Any]) -> None:
    embedder = make(max_retries=2)
    faulty.rule = lambda body: status(503)
    with pytest.raises(EmbeddingError, match="gave up after 3 tries") as info:
        embedder.embed_query("x")
    assert len(faulty.attempts()) == 3
    assert embedder.url in str(info.value)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (Fault("malformed"), "malformed JSON"),
        (Fault("count"), "returned 1 vectors for 2 texts"),
        (Fault("dim"), "9-dimensional vectors, expected 8"),
        (status(400), "answered 400"),
        (status(404), "answered 404"),
        (status(413), "answered 413"),
    ],
)
def test_permanent_faults_fail_at_once_naming_the_url(
    faulty: FaultyUpstream, make: Callable[..., Any], fault: Fault, says: str
) -> None:
    embedder = make(max_retries=4)
    assert embedder.dimension == DIM  # the dimension is known: a wrong one is detected
    faulty.hits.clear()
    faulty.embed_faults = [fault]
    with pytest.raises(EmbeddingError) as info:
        embedder.embed_documents(["a", "b"])
    message = str(info.value)
    assert says in message
    assert embedder.url in message and info.value.url == embedder.url
    assert len(faulty.attempts()) == 1  # not retried


def test_a_failed_batch_stops_the_others_retrying(
    faulty: FaultyUpstream, make: Callable[..., Any]
) -> None:
    # Every batch but the poisoned one keeps answering 503 with long backoffs; the call
    # fails as soon as the poisoned batch does, instead of after all their retries.
    embedder = make(batch_size=1, concurrency=4, backoff=2.0, max_backoff=8.0, max_retries=5)
    faulty.rule = lambda body: Fault("malformed") if "poison" in body["input"] else status(503)
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match="malformed JSON"):
        embedder.embed_documents(["a", "b", "poison", "c"])
    assert time.monotonic() - started < 1.5


def test_retry_after_dates_are_understood() -> None:
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_indexing_with_a_faulty_embedder_writes_nothing_of_the_failed_batch(
    tmp_path: Path, faulty: FaultyUpstream
) -> None:
    embedder = OllamaEmbedder(faulty.url, "fake-embed", batch_size=1, concurrency=1, backoff=0.01)
    with Pipeline(Settings(data_dir=tmp_path), embedder=embedder) as pipeline:
        good = pipeline.index([("good.txt", [Document("Zebras eat apples.")])], "kb")
        assert good.ok and pipeline.store.count("kb") == 1
        faulty.hits.clear()
        # Two batches answer well, the third with vectors of another size: the whole call
        # fails, and none of its vectors are stored.
        faulty.embed_faults = [None, None, Fault("dim")]
        items = [
            (f"{name}.txt", [Document(f"{name} is a document about {name}.")])
            for name in ("alpha", "beta", "gamma")
        ]
        report = pipeline.index(items, "kb")
        assert sorted(report.failed) == ["alpha.txt", "beta.txt", "gamma.txt"]
        assert all(embedder.url in e["error"] for e in report.errors)
        assert len(faulty.attempts()) == 3
        assert pipeline.store.count("kb") == 1
        # Retrying later, with a healthy upstream, indexes them.
        again = pipeline.index(items, "kb")
        assert again.ok and sorted(again.added) == ["alpha.txt", "beta.txt", "gamma.txt"]
        assert pipeline.store.count("kb") == 4


def test_an_endpoint_that_never_answers_in_time_is_a_504(
    faulty: FaultyUpstream, make: Callable[..., Any]
) -> None:
    # The server answers a query whose embedding timed out with 504, as for a chat upstream.
    from rag_pipeline.server.app import status_for

    embedder = make(timeout=0.3, max_retries=1)
    faulty.embed_faults = [Fault("timeout", seconds=1.0)] * 2
    with pytest.raises(EmbeddingError, match="did not answer within") as raised:
        embedder.embed_query("x")
    assert raised.value.status == 504
    assert status_for(raised.value) == 504
    assert status_for(EmbeddingError("refused", status=500)) == 502
