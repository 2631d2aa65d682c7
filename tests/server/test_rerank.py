"""``/v1/rerank`` and ``/rerank`` over real HTTP, as Open WebUI's external reranker calls them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rag_pipeline.pipeline import Pipeline
from rag_pipeline.server import ServerSettings

from ..rerank_server import RerankServer, overlap_score, rerank_server
from .conftest import World
from .harness import live_server

QUERY = "Where does the zebra Ziggy live?"
DOCS = [
    "Falcon launches on 2031-05-04.",
    "The zebra named Ziggy lives in Lisbon and eats 7 apples every Tuesday.",
    "Ziggy's favourite colour is teal.",
    "The budget of Project Falcon is 42 million euros.",
]


def owui_predict(url: str, key: str, model: str, query: str, docs: list[str]) -> list[float]:
    """What Open WebUI 0.12.4's ExternalReranker.predict sends and reads back."""
    response = httpx.post(
        url,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        json={"model": model, "query": query, "documents": docs, "top_n": len(docs)},
        timeout=60,
    )
    response.raise_for_status()
    results = sorted(response.json()["results"], key=lambda x: x["index"])
    return [result["relevance_score"] for result in results]


def _post(world: World, body: Any, path: str = "/v1/rerank", **headers: str) -> httpx.Response:
    return httpx.post(
        f"{world.url}{path}", headers={**world.bob.headers, **headers}, json=body, timeout=60
    )


def test_open_webui_gets_a_score_for_every_document_on_one_scale(world: World) -> None:
    scores = owui_predict(f"{world.url}/v1/rerank", world.bob.key, "rag-signals", QUERY, DOCS)
    assert len(scores) == len(DOCS) and all(0 <= s <= 1 for s in scores)
    assert max(range(len(DOCS)), key=scores.__getitem__) == 1
    assert scores[1] > scores[2] > scores[0]
    # Scored alone, a document gets the score it got among others: the dense half is the
    # same cosine, and a one-document request's weights give its matched share.
    alone = owui_predict(f"{world.url}/v1/rerank", world.bob.key, "rag-signals", QUERY, DOCS[1:2])
    assert alone[0] > 0.3


def test_the_answer_is_best_first_cut_to_top_n_with_documents_on_request(world: World) -> None:
    body = {"model": "rag-signals", "query": QUERY, "documents": DOCS, "top_n": 2}
    answer = _post(world, {**body, "return_documents": True}).json()
    assert set(answer) == {"id", "model", "results"} and answer["model"] == "rag-signals"
    results = answer["results"]
    assert [r["index"] for r in results] == [1, 2]
    assert results[0]["relevance_score"] >= results[1]["relevance_score"]
    assert results[0]["document"] == {"text": DOCS[1]}
    # Cohere's older shape: documents as {"text": ...}; no model given is ours.
    objects = _post(world, {"query": QUERY, "documents": [{"text": d} for d in DOCS]}).json()
    assert [r["index"] for r in objects["results"]][:1] == [1] and len(objects["results"]) == 4
    assert "document" not in objects["results"][0]


def test_tei_shape_on_slash_rerank(world: World) -> None:
    answer = _post(world, {"query": QUERY, "texts": DOCS, "return_text": True}, "/rerank").json()
    assert isinstance(answer, list) and answer[0]["index"] == 1
    assert set(answer[0]) == {"index", "score", "text"}
    cohere = _post(world, {"query": QUERY, "documents": DOCS}, "/rerank").json()
    assert [r["index"] for r in cohere["results"]] == [r["index"] for r in answer]
    assert _post(world, {"query": QUERY, "documents": []}).json()["results"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "bge-reranker-v2-m3", "query": QUERY, "documents": DOCS}, "not served here"),
        ({"query": "  ", "documents": DOCS}, "'query' must be a non-empty text"),
        ({"query": QUERY, "documents": "one text"}, "'documents' must be a list"),
        ({"query": QUERY, "documents": [1, 2]}, "'documents'[0] must be a text"),
        ({"query": QUERY, "documents": ["x"] * 1001}, "at most 1000"),
        ({"query": QUERY, "documents": DOCS, "top_n": 0}, "'top_n' must be a positive"),
        ({"query": QUERY, "documents": ["x" * 600_000] * 2}, "RAG_EMBED_MAX_REQUEST_CHARS"),
    ],
)
def test_bad_requests_are_400_with_the_reason(
    world: World, body: dict[str, Any], message: str
) -> None:
    response = _post(world, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


def test_no_key_is_401(world: World) -> None:
    for path in ("/v1/rerank", "/rerank"):
        response = httpx.post(f"{world.url}{path}", json={"query": QUERY, "documents": DOCS})
        assert response.status_code == 401


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory, local_embedder) -> Iterator[tuple]:
    with rerank_server() as upstream:
        settings = ServerSettings(
            data_dir=tmp_path_factory.mktemp("rerank-server"),
            enable_signup=True,
            reranker="http",
            reranker_url=upstream.url + "/v1/rerank",
            reranker_model="bge-reranker-v2-m3",
            reranker_timeout=1.0,
        )
        with (
            Pipeline(settings, embedder=local_embedder) as pipeline,
            live_server(settings, pipeline) as server,
        ):
            token = server.signup("Admin", "admin@example.com")["token"]
            yield server, server.api_key(token), upstream


def test_a_configured_reranker_answers_and_its_failure_falls_back_to_signals(
    configured: tuple[Any, str, RerankServer],
) -> None:
    server, key, upstream = configured
    listed = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert listed.json()["data"][1] == {
        "id": "bge-reranker-v2-m3",
        "object": "model",
        "created": 0,
        "owned_by": "rag-pipeline",
        "type": "rerank",
    }
    url = f"{server.url}/v1/rerank"
    scores = owui_predict(url, key, "bge-reranker-v2-m3", QUERY, DOCS)
    assert scores == pytest.approx([overlap_score(QUERY, d) for d in DOCS])
    assert upstream.requests[-1]["documents"] == DOCS
    # The reranking server fails: Open WebUI still gets every document scored, by signals.
    upstream.faults = [400]
    response = httpx.post(
        url,
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "bge-reranker-v2-m3", "query": QUERY, "documents": DOCS},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == "rag-signals" and len(answer["results"]) == len(DOCS)
    assert answer["results"][0]["index"] == 1
