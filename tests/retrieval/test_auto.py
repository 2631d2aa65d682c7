"""RAG_EMBEDDER=auto on a real index: each collection gets a model that reads its text."""

from __future__ import annotations

import pytest

from rag_pipeline import Pipeline, Settings
from rag_pipeline.embedding.e5_onnx import E5_ONNX_MODEL
from rag_pipeline.ingest import SourceItem
from rag_pipeline.types import Document

ENGLISH = {
    "otters.txt": "Sea otters hold hands while they sleep so they do not drift apart.",
    "bread.txt": "Sourdough bread rises because wild yeast ferments the dough overnight.",
    "lava.txt": "Basaltic lava is hotter and runnier than rhyolitic lava.",
}
KOREAN = {
    "haedal.txt": "해달은 잠을 잘 때 서로 떠내려가지 않도록 손을 잡는다.",
    "ppang.txt": "사워도우 빵은 야생 효모가 밤새 반죽을 발효시키기 때문에 부풀어 오른다.",
    "gomgom.txt": "곰은 겨울 동안 굴에서 겨울잠을 자며 체온을 낮춘다.",
    "yongam.txt": "현무암질 용암은 유문암질 용암보다 뜨겁고 묽다.",
}


def _items(docs: dict[str, str]) -> list[SourceItem]:
    return [SourceItem.from_documents(n, [Document(text=t, metadata={})]) for n, t in docs.items()]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    settings = Settings(data_dir=tmp_path_factory.mktemp("auto"))
    assert settings.embedder == "auto"  # the default
    pipeline = Pipeline(settings)
    pipeline.index(_items(ENGLISH), "english")
    pipeline.index(_items(KOREAN), "korean")
    # One Korean file among nineteen is 5.3%: enough to expect Korean questions.
    mostly_english = {f"en{i}.txt": f"{text} (copy {i})" for i, text in enumerate(ENGLISH.values())}
    mostly_english |= {f"more{i}.txt": f"Plain English note number {i}." for i in range(15)}
    mostly_english["haedal.txt"] = KOREAN["haedal.txt"]
    pipeline.index(_items(mostly_english), "mostly-english")
    return pipeline


def test_latin_text_gets_the_default_model_and_korean_text_the_multilingual_one(
    pipeline: Pipeline,
) -> None:
    models = {info.name: info.model for info in pipeline.collections()}
    assert models["english"] == pipeline.settings.embedding_model == "all-MiniLM-L6-v2"
    assert models["korean"] == E5_ONNX_MODEL
    assert models["mostly-english"] == E5_ONNX_MODEL
    assert pipeline.embedder_for("korean").model_name == E5_ONNX_MODEL
    assert pipeline.embedder_for("english").model_name == "all-MiniLM-L6-v2"


def test_a_korean_question_is_answered_by_both_halves_of_the_multilingual_collection(
    pipeline: Pipeline,
) -> None:
    retriever = pipeline.retriever("hybrid")
    query = "해달은 잘 때 무엇을 잡나요?"
    halves = retriever.halves(query, "korean", E5_ONNX_MODEL)
    assert (halves.dense, halves.sparse) == (2, 1)
    hits = retriever.search(query, ["korean"], top_k=2)
    assert hits[0].source == "haedal.txt"
    assert hits[0].similarity is not None  # the dense half took part
    # Dense alone reads Korean too: the multilingual model understands the question.
    assert pipeline.query(query, "korean", top_k=1, mode="dense")[0].source == "haedal.txt"


def test_a_question_about_other_language_text_in_a_mixed_collection_is_not_lost_to_sparse(
    pipeline: Pipeline,
) -> None:
    pipeline.index(_items(ENGLISH | KOREAN), "bilingual")
    assert pipeline.store.collection_model("bilingual")[0] == E5_ONNX_MODEL
    # Bears are only written about in Korean; the English question shares a word
    # ("sleep") with an English file.
    query = "Where do bears sleep through the winter?"
    retriever = pipeline.retriever("hybrid")
    halves = retriever.halves(query, "bilingual", E5_ONNX_MODEL)
    assert halves.sparse_floor > 0 and "several languages" in halves.why
    sparse = pipeline.query(query, "bilingual", top_k=1, mode="sparse")
    assert sparse[0].source in ENGLISH  # the sparse half alone answers wrong
    hits = retriever.search(query, ["bilingual"], top_k=3)
    assert hits[0].source == "gomgom.txt"


def test_one_search_over_collections_of_two_models_embeds_the_query_with_each(
    pipeline: Pipeline,
) -> None:
    query = "Why do sea otters hold hands when they sleep?"
    hits = pipeline.query(query, ["english", "korean"], top_k=8, mode="dense")
    assert {h.metadata["knowledge_id"] for h in hits} == {"english", "korean"}
    assert pipeline.query(query, "english", top_k=1, mode="dense")[0].source == "otters.txt"
    # A cross-lingual match: the e5 model read the English question.
    assert pipeline.query(query, "korean", top_k=1, mode="dense")[0].source == "haedal.txt"
    # Each hit's similarity is its own model's: the merged list keeps both.
    both = {(h.metadata["knowledge_id"], h.source): h.similarity for h in hits}
    alone = pipeline.query(query, "korean", top_k=4, mode="dense")
    assert all(both[("korean", h.source)] == pytest.approx(h.similarity) for h in alone)


def test_a_collection_keeps_its_model_when_other_text_arrives(pipeline: Pipeline) -> None:
    pipeline.index(_items(KOREAN), "english")
    assert pipeline.store.collection_model("english")[0] == "all-MiniLM-L6-v2"
    # ...and the advice says what to do about it.
    advice = pipeline.language_advice("english")
    assert advice is not None and "e5onnx" in advice
    report = pipeline.index(_items(KOREAN), "korean")
    assert sorted(report.skipped) == sorted(KOREAN) and report.chunks_added == 0


def test_an_empty_run_makes_the_collection_with_the_default_model(tmp_path) -> None:
    with Pipeline(Settings(data_dir=tmp_path)) as pipeline:
        report = pipeline.index([], "empty")
        assert report.chunks_added == 0
        assert pipeline.store.collection_model("empty")[0] == "all-MiniLM-L6-v2"
