"""The second stage: ``rerank``, the retriever's use of a reranker, and how one is chosen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline import ConfigError, Pipeline, Settings
from rag_pipeline.errors import RerankError
from rag_pipeline.ingest import SourceItem
from rag_pipeline.retrieval.http_rerank import HTTPReranker
from rag_pipeline.retrieval.rerank import RERANKER_NAMES, Reranker, make_reranker, rerank
from rag_pipeline.retrieval.signals import SignalReranker
from rag_pipeline.types import Document, Hit

from ..rerank_server import overlap_score, rerank_server

DOCS = {
    "otters.txt": "Sea otters hold hands while they sleep so they do not drift apart.",
    "volcano.txt": "Basaltic lava flows are hotter and runnier than rhyolitic lava.",
    "bread.txt": "Sourdough bread rises because wild yeast ferments the dough overnight.",
    "bees.txt": "Honey bees dance to tell their hive where the flowers are.",
    "tides.txt": "Tides rise and fall twice a day as the moon pulls on the oceans.",
}


class WordCounter:
    """A reranker of our own rule, through the public protocol: it prefers one word."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.seen: list[list[str]] = []

    @property
    def model_name(self) -> str:
        return f"count-{self.word}"

    def score(self, query: str, documents: Sequence[str]) -> np.ndarray:
        self.seen.append(list(documents))
        return np.array([d.lower().count(self.word) for d in documents], dtype=np.float32)


def _hits(texts: list[str]) -> list[Hit]:
    return [
        Hit(id=str(i), score=1.0 - i / 10, text=t, source=f"{i}.txt") for i, t in enumerate(texts)
    ]


def test_rerank_orders_by_the_rerankers_score_and_keeps_the_first_stages() -> None:
    hits = _hits(["no", "bread bread", "bread", "bread bread"])
    ranked = rerank(WordCounter("bread"), "q", hits, top_k=3)
    # Ties keep their first-stage order; the first stage's score is kept in the metadata.
    assert [h.id for h in ranked] == ["1", "3", "2"]
    assert [h.score for h in ranked] == [2.0, 2.0, 1.0]
    assert [h.metadata["retrieval_score"] for h in ranked] == [0.9, 0.7, 0.8]
    assert hits[1].score == 0.9  # the caller's hits are not changed
    assert rerank(WordCounter("x"), "q", [], 3) == []


def test_a_reranker_that_answers_the_wrong_count_is_an_error() -> None:
    class Short(WordCounter):
        def score(self, query: str, documents: Sequence[str]) -> np.ndarray:
            return np.zeros(len(documents) - 1, dtype=np.float32)

    with pytest.raises(RerankError, match=r"returned 2 scores .* for 3 documents"):
        rerank(Short("x"), "q", _hits(["a", "b", "c"]), 2)
    assert isinstance(Short("x"), Reranker)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, local_embedder) -> Pipeline:
    pipeline = Pipeline(
        Settings(data_dir=tmp_path_factory.mktemp("rerank")), embedder=local_embedder
    )
    items = [SourceItem.from_documents(n, [Document(text=t, metadata={})]) for n, t in DOCS.items()]
    pipeline.index(items, "nature", workers=0)
    return pipeline


def _with(pipeline: Pipeline, given: Reranker | None, **settings: object) -> Pipeline:
    changed = pipeline.settings.model_copy(update=settings)
    return Pipeline(changed, embedder=pipeline.embedder, store=pipeline.store, reranker=given)


def test_the_retriever_hands_the_reranker_more_candidates_than_it_keeps(
    indexed: Pipeline,
) -> None:
    counter = WordCounter("lava")
    pipeline = _with(indexed, counter, rerank_candidates=4)
    hits = pipeline.query("why do otters hold hands?", "nature", top_k=2)
    # The first stage ranks otters first; the reranker, which only likes lava, decides.
    assert len(counter.seen) == 1 and len(counter.seen[0]) == 4
    assert hits[0].source == "volcano.txt" and hits[0].score == 2.0
    assert len(hits) == 2
    assert "retrieval_score" in hits[0].metadata


def test_without_a_reranker_retrieval_is_unchanged(indexed: Pipeline) -> None:
    assert indexed.settings.reranker == "none" and indexed.reranker is None
    plain = indexed.query("bees and flowers", "nature", top_k=3)
    again = _with(indexed, None, rerank_candidates=50).query("bees and flowers", "nature", top_k=3)
    assert [(h.id, h.score) for h in plain] == [(h.id, h.score) for h in again]
    assert all("retrieval_score" not in h.metadata for h in plain)


def test_settings_choose_the_reranker(indexed: Pipeline, tmp_path: Path) -> None:
    assert RERANKER_NAMES == ("none", "signals", "local", "http")
    signals = _with(indexed, None, reranker="signals").reranker
    assert isinstance(signals, SignalReranker)
    assert signals.embedder.inner is indexed.embedder  # type: ignore[attr-defined]  # cached
    with rerank_server() as server:
        settings = indexed.settings.model_copy(
            update={
                "reranker": "http",
                "reranker_url": server.url + "/rerank",
                "reranker_api": "tei",
            }
        )
        http = make_reranker(settings)
        assert isinstance(http, HTTPReranker) and http.api == "tei"
        # Through the pipeline: the hit the reranking server likes best comes first.
        pipeline = Pipeline(settings, embedder=indexed.embedder, store=indexed.store)
        hits = pipeline.query("moon oceans tides", "nature", top_k=2)
        assert hits[0].source == "tides.txt"
        assert hits[0].score == pytest.approx(overlap_score("moon oceans tides", DOCS["tides.txt"]))
        assert len(server.requests) == 1
        assert len(server.requests[0]["texts"]) == len(DOCS)  # all five were candidates
    for kind, setting in (("local", "RAG_RERANKER_MODEL"), ("http", "RAG_RERANKER_URL")):
        with pytest.raises(ValueError, match=setting):
            Settings(data_dir=tmp_path, reranker=kind)
        with pytest.raises(ConfigError, match=setting):
            make_reranker(Settings(data_dir=tmp_path), kind)
    with pytest.raises(ConfigError, match="unknown reranker 'best'"):
        make_reranker(Settings(data_dir=tmp_path), "best")
