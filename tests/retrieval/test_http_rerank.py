"""HTTPReranker against a loopback reranking server, in both wire shapes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from rag_pipeline.errors import ConfigError, RerankError
from rag_pipeline.retrieval.http_rerank import HTTPReranker

from ..rerank_server import RerankServer, overlap_score, rerank_server

QUERY = "why do sea otters hold hands"
DOCS = [
    "Sourdough rises overnight.",
    "Sea otters hold hands while they sleep.",
    "Otters are mammals.",
    "Why do bees dance?",
    "Hands of a clock.",
]


@pytest.fixture
def server() -> Iterator[RerankServer]:
    with rerank_server() as state:
        yield state


def _reranker(server: RerankServer, api: str = "cohere", **options) -> HTTPReranker:
    path = "/rerank" if api == "tei" else "/v1/rerank"
    options.setdefault("backoff", 0.01)
    return HTTPReranker(server.url + path, "bge-reranker", api=api, api_key="sk-x", **options)


@pytest.mark.parametrize("api", ["cohere", "tei"])
def test_scores_come_back_in_document_order_in_each_shape(server: RerankServer, api: str) -> None:
    reranker = _reranker(server, api, batch_size=2)
    scores = reranker.score(QUERY, DOCS)
    expected = [overlap_score(QUERY, d) for d in DOCS]
    assert scores.dtype == np.float32 and scores == pytest.approx(expected)
    # Five documents in requests of two; the answers came best first, not in order.
    assert len(server.requests) == 3
    first = server.requests[0]
    if api == "tei":
        assert first == {"query": QUERY, "texts": DOCS[:2], "truncate": True}
    else:
        assert first == {
            "model": "bge-reranker",
            "query": QUERY,
            "documents": DOCS[:2],
            "top_n": 2,
            "return_documents": False,
        }
    assert server.headers[0]["Authorization"] == "Bearer sk-x"
    assert reranker.model_name == "bge-reranker"


def test_passing_trouble_is_retried_and_a_refusal_is_not(server: RerankServer) -> None:
    server.faults = [503, 429]
    assert _reranker(server).score(QUERY, DOCS[:2]) == pytest.approx(
        [overlap_score(QUERY, d) for d in DOCS[:2]]
    )
    assert len(server.requests) == 3
    server.faults = [400]
    with pytest.raises(RerankError, match="answered 400") as info:
        _reranker(server).score(QUERY, DOCS)
    assert info.value.status == 400 and info.value.url == server.url + "/v1/rerank"
    server.faults = [503] * 5
    with pytest.raises(RerankError, match="gave up after 3 tries") as info:
        _reranker(server, max_retries=2).score(QUERY, DOCS)
    assert info.value.status == 503


def test_a_server_that_does_not_answer_in_time_is_a_504(server: RerankServer) -> None:
    server.faults = ["stall"]
    server.stall_seconds = 2
    with pytest.raises(RerankError, match=r"did not answer within 0\.3 s") as info:
        _reranker(server, timeout=0.3, max_retries=0).score(QUERY, DOCS)
    assert info.value.status == 504


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("missing", "scored 4 of 5 documents"),
        ("duplicate", "or twice"),
        ("malformed", "malformed JSON"),
    ],
)
def test_an_answer_that_is_wrong_is_an_error_not_a_guess(
    server: RerankServer, fault: str, message: str
) -> None:
    server.faults = [fault]
    with pytest.raises(RerankError, match=message):
        _reranker(server).score(QUERY, DOCS)


def test_no_documents_make_no_request_and_bad_settings_are_refused(server: RerankServer) -> None:
    assert _reranker(server).score(QUERY, []).shape == (0,)
    assert server.requests == []
    with pytest.raises(ConfigError, match="http://"):
        HTTPReranker("localhost:7997/rerank")
    with pytest.raises(ConfigError, match="cohere, tei"):
        HTTPReranker("http://x/rerank", api="jina")  # type: ignore[arg-type]
