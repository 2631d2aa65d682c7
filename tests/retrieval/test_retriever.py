"""Retriever: modes, top_k, the relevance threshold and the model check."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_pipeline import ConfigError, ModelMismatchError, Pipeline, SearchScope, Settings
from rag_pipeline.errors import NotFoundError
from rag_pipeline.ingest import Indexer, SourceItem
from rag_pipeline.types import Document

DOCS = {
    "otters.txt": "Sea otters hold hands while they sleep so they do not drift apart.",
    "volcano.txt": "Basaltic lava flows are hotter and runnier than rhyolitic lava.",
    "bread.txt": "Sourdough bread rises because wild yeast ferments the dough overnight.",
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, local_embedder) -> Pipeline:
    data = tmp_path_factory.mktemp("retriever")
    pipeline = Pipeline(Settings(data_dir=data), embedder=local_embedder)
    items = [SourceItem.from_documents(n, [Document(text=t, metadata={})]) for n, t in DOCS.items()]
    indexer = Indexer(
        pipeline.store,
        pipeline.embedder,
        pipeline.chunker,
        sparse_encoder=pipeline.sparse_encoder,
    )
    indexer.run(items, "animals")
    return pipeline


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_each_mode_ranks_the_matching_document_first(pipeline: Pipeline, mode: str) -> None:
    hits = pipeline.retriever(mode).search("why do otters hold hands?", ["animals"], top_k=2)
    assert hits[0].source == "otters.txt"
    assert len(hits) <= 2
    assert hits == sorted(hits, key=lambda h: h.score, reverse=True)


def _with_threshold(pipeline: Pipeline, threshold: float | None) -> Pipeline:
    settings = pipeline.settings.model_copy(update={"relevance_threshold": threshold})
    return Pipeline(settings, embedder=pipeline.embedder, store=pipeline.store)


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_threshold_is_on_cosine_similarity_in_every_mode(pipeline: Pipeline, mode: str) -> None:
    everything = (
        _with_threshold(pipeline, 0).retriever(mode).search("otters sleeping", ["animals"], top_k=3)
    )
    assert len(everything) == 3
    # Similarity is the true cosine of query and chunk, whatever the fused score is.
    query = pipeline.embedder.embed_query("otters sleeping")
    strict = _with_threshold(pipeline, -1.0).retriever(mode)
    scored = strict.search("otters sleeping", ["animals"], top_k=3)
    vectors = {
        i: v["dense"]
        for i, _, v in pipeline.store.scroll_payloads("animals", None, with_vectors=True)
    }
    # Hits carry it with the threshold off too (shown in hits and payload sources).
    for h in [*scored, *everything]:
        assert h.similarity == pytest.approx(float(vectors[h.id] @ query), abs=1e-5)
    best, second = sorted((h.similarity for h in scored), reverse=True)[:2]
    kept = (
        _with_threshold(pipeline, (best + second) / 2)
        .retriever(mode)
        .search("otters sleeping", ["animals"], top_k=3)
    )
    assert [h.source for h in kept] == ["otters.txt"]


def test_threshold_turns_away_an_off_topic_question_and_is_off_by_default(
    pipeline: Pipeline,
) -> None:
    assert _with_threshold(pipeline, None).retriever().min_similarity is None
    strict = _with_threshold(pipeline, 0.30)
    assert strict.retriever().search("how do I reset my router password?", ["animals"]) == []
    assert strict.retriever().search("do otters sleep holding hands?", ["animals"])
    payload = strict.payload("how do I reset my router password?", ["animals"], model="m")
    assert payload.sources == []
    assert payload.messages[-1]["content"] == "how do I reset my router password?"


def test_bad_top_k_and_unknown_collection_are_named(pipeline: Pipeline) -> None:
    with pytest.raises(ConfigError, match="top_k"):
        pipeline.retriever().search("otters", ["animals"], top_k=0)
    with pytest.raises(NotFoundError, match="nope"):
        pipeline.retriever().search("otters", ["nope"])


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_search_each_equals_one_search_per_scope(pipeline: Pipeline, mode: str) -> None:
    retriever = pipeline.retriever(mode)
    scopes = [
        SearchScope("animals", {"source": "bread.txt"}),
        "animals",
        SearchScope("animals", {"source": ["otters.txt", "volcano.txt"]}),
    ]
    groups = retriever.search_each("why does bread rise?", scopes, top_k=2)
    alone = [retriever.search("why does bread rise?", [scope], top_k=2) for scope in scopes]
    assert [[h.id for h in g] for g in groups] == [[h.id for h in g] for g in alone]
    assert {h.source for h in groups[0]} == {"bread.txt"}
    assert {h.source for h in groups[2]} <= {"otters.txt", "volcano.txt"}
    merged = retriever.search("why does bread rise?", scopes, top_k=3)
    assert [h.score for h in merged] == sorted((h.score for g in groups for h in g), reverse=True)[
        :3
    ]


def test_another_model_is_refused_on_the_collection(pipeline: Pipeline, tmp_path: Path) -> None:
    class OtherModel:
        model_name = "other-model"
        dimension = 384
        query_prefix = passage_prefix = ""

        def embed_query(self, text: str):  # pragma: no cover - refused before embedding
            raise AssertionError("must not embed")

    other = Pipeline(pipeline.settings, embedder=OtherModel(), store=pipeline.store)  # type: ignore[arg-type]
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2"):
        other.retriever("dense").search("otters", ["animals"])
