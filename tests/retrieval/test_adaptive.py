"""Adaptive hybrid search on a real index: each half takes part only where it can read."""

from __future__ import annotations

import pytest

from rag_pipeline import Pipeline, Settings
from rag_pipeline.ingest import SourceItem
from rag_pipeline.types import Document

DOCS = {
    "otters.txt": "Sea otters hold hands while they sleep so they do not drift apart.",
    "bread.txt": "Sourdough bread rises because wild yeast ferments the dough overnight.",
    "haedal.txt": "해달은 잠을 잘 때 서로 떠내려가지 않도록 손을 잡는다.",
    "ppang.txt": "사워도우 빵은 야생 효모가 밤새 반죽을 발효시키기 때문에 부풀어 오른다.",
    "gomgom.txt": "곰은 겨울 동안 굴에서 겨울잠을 자며 체온을 낮춘다.",
    "lava.txt": "현무암질 용암은 유문암질 용암보다 뜨겁고 묽다.",
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, local_embedder) -> Pipeline:
    data = tmp_path_factory.mktemp("adaptive")
    pipeline = Pipeline(Settings(data_dir=data), embedder=local_embedder)
    items = [SourceItem.from_documents(n, [Document(text=t, metadata={})]) for n, t in DOCS.items()]
    pipeline.index(items, "mixed")
    return pipeline


def test_each_chunk_records_its_script_and_the_collection_its_mix(pipeline: Pipeline) -> None:
    scripts = {p["source"]: p["script"] for _, p, _ in pipeline.store.scroll_payloads("mixed")}
    assert scripts == {n: "Latn" if n in ("otters.txt", "bread.txt") else "Hang" for n in DOCS}
    assert pipeline.language_mix("mixed") == pytest.approx({"Hang": 4 / 6, "Latn": 2 / 6})


def test_a_korean_query_to_an_english_only_model_is_answered_by_the_sparse_half(
    pipeline: Pipeline,
) -> None:
    query = "해달은 잘 때 무엇을 잡나요?"
    adaptive = pipeline.retriever("hybrid")
    assert adaptive.fusion == "adaptive"
    halves = adaptive.halves(query, "mixed")
    assert (halves.dense, halves.sparse) == (0.0, 1.0)
    hits = adaptive.search(query, ["mixed"], top_k=4)
    sparse = pipeline.retriever("sparse").search(query, ["mixed"], top_k=4)
    assert [(h.id, h.score) for h in hits] == [(h.id, h.score) for h in sparse]
    assert hits[0].source == "haedal.txt"


def test_an_english_query_fuses_both_halves_as_dbsf_does(pipeline: Pipeline) -> None:
    query = "why do otters hold hands?"
    adaptive = pipeline.retriever("hybrid")
    dbsf = pipeline.retriever("hybrid")
    dbsf.fusion = "dbsf"
    hits = adaptive.search(query, ["mixed"], top_k=4)
    assert [(h.id, h.score) for h in hits] == [
        (h.id, h.score) for h in dbsf.search(query, ["mixed"], top_k=4)
    ]
    assert hits[0].source == "otters.txt" and hits[0].similarity is not None


def test_a_mostly_korean_collection_with_an_english_only_model_gets_advice(
    pipeline: Pipeline,
) -> None:
    advice = pipeline.language_advice("mixed")
    assert advice is not None
    assert "67%" in advice and "all-MiniLM-L6-v2" in advice and "RAG_EMBEDDER=" in advice
    english = [SourceItem.from_documents("a.txt", [Document(text=DOCS["otters.txt"])])]
    pipeline.index(english, "english")
    assert pipeline.language_advice("english") is None


def test_the_mix_is_counted_once_a_minute_for_every_retriever_of_a_pipeline(
    tmp_path_factory: pytest.TempPathFactory, local_embedder
) -> None:
    # Pipeline.query builds a retriever per call; a mix remembered per retriever was
    # counted again on every query (an exact facet over the whole collection).
    pipeline = Pipeline(Settings(data_dir=tmp_path_factory.mktemp("mix")), embedder=local_embedder)
    english = [SourceItem.from_documents(n, [Document(text=DOCS[n], metadata={})]) for n in DOCS]
    pipeline.index(english[:2], "growing")
    pipeline.query("otters", "growing", mode="hybrid")
    assert pipeline.retriever("hybrid").language_mix("growing") == {"Latn": 1.0}
    pipeline.index(english, "growing")
    # A new retriever answers from the pipeline's memory; the pipeline's own count is fresh.
    assert pipeline.retriever("dense").language_mix("growing") == {"Latn": 1.0}
    assert pipeline.language_mix("growing") == pytest.approx({"Hang": 4 / 6, "Latn": 2 / 6})
    # Another pipeline (another process, a restart) counts for itself.
    other = Pipeline(pipeline.settings, embedder=local_embedder, store=pipeline.store)
    assert other.retriever().language_mix("growing") == pytest.approx(
        {"Hang": 4 / 6, "Latn": 2 / 6}
    )
