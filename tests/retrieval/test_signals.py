"""SignalReranker: our dense and sparse signals on one 0..1 scale, per script the right model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder
from rag_pipeline.embedding.sparse import SparseEncoder
from rag_pipeline.retrieval.signals import SIGNALS_MODEL, SignalReranker, cosine_range

ENGLISH = [
    "Sea otters hold hands while they sleep so they do not drift apart.",
    "Otters are playful mammals of rivers and coasts.",
    "Sourdough bread rises because wild yeast ferments the dough overnight.",
]
KOREAN = [
    "한니발은 고대 카르타고의 장군으로 코끼리를 이끌고 알프스를 넘었다.",
    "서울은 대한민국의 수도이며 인구가 가장 많은 도시이다.",
    "텐트는 완전히 말린 뒤 서늘하고 건조한 곳에 보관해야 한다.",
]


@pytest.fixture(scope="module")
def e5() -> E5OnnxEmbedder:
    # conftest points RAG_MODEL_CACHE_DIR at one folder per machine: exported once.
    return E5OnnxEmbedder(
        cache_dir=Path(os.environ.get("RAG_MODEL_CACHE_DIR", tempfile.gettempdir()))
    )


@pytest.fixture(scope="module")
def signals(local_embedder, e5: E5OnnxEmbedder) -> SignalReranker:
    return SignalReranker(local_embedder, SparseEncoder("en"), multilingual=lambda: e5)


def test_the_answer_ranks_first_on_a_zero_to_one_scale(signals: SignalReranker) -> None:
    scores = signals.score("why do otters hold hands when sleeping?", ENGLISH)
    assert scores.dtype == np.float32 and scores.shape == (3,)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores.argmax() == 0 and scores[2] == scores.min()
    assert signals.model_name == SIGNALS_MODEL
    assert signals.score("anything", []).shape == (0,)


def test_the_model_that_reads_the_script_gives_the_cosine(
    signals: SignalReranker, local_embedder, e5: E5OnnxEmbedder
) -> None:
    assert signals.dense_model("otters", ENGLISH) is local_embedder
    assert signals.dense_model("한국의 수도는 어디인가요?", KOREAN) is e5
    # An English question over Korean text needs a model that reads both.
    assert signals.dense_model("capital of Korea", KOREAN) is e5
    scores = signals.score("한국의 수도는 어디인가요?", KOREAN)
    assert scores.argmax() == 1
    low, high = cosine_range(e5.model_name)
    vectors = e5.embed_documents(KOREAN)
    cosines = vectors @ e5.embed_query("한국의 수도는 어디인가요?")
    dense = np.clip((cosines - low) / (high - low), 0, 1)
    lexical = signals.lexical_scores("한국의 수도는 어디인가요?", KOREAN)
    weight = signals.dense_weight
    assert scores == pytest.approx(weight * dense + (1 - weight) * lexical, abs=1e-5)


def test_korean_stems_match_whatever_particle_is_attached(signals: SignalReranker) -> None:
    # "수도는" (the capital + topic particle) and "수도이며": whitespace tokens never match.
    lexical = signals.lexical_scores("대한민국 수도는 어디", KOREAN)
    assert lexical.argmax() == 1 and lexical[1] > 0 and lexical[0] == lexical[2] == 0


def test_lexical_weights_rare_terms_over_common_ones(signals: SignalReranker) -> None:
    docs = ["otters otters", "otters and kelp", "otters", "kelp forests"]
    lexical = signals.lexical_scores("otters kelp", docs)
    # "kelp" is in fewer documents than "otters", so matching it counts for more.
    assert lexical[3] > lexical[2] and lexical[1] == lexical.max()
    assert signals.lexical_scores("the and of", docs).tolist() == [0, 0, 0, 0]


def test_a_multilingual_model_is_built_once_and_only_when_needed(local_embedder, e5) -> None:
    built: list[int] = []

    def build() -> E5OnnxEmbedder:
        built.append(1)
        return e5

    reranker = SignalReranker(local_embedder, SparseEncoder("en"), multilingual=build)
    reranker.score("otters", ENGLISH)
    assert built == []
    reranker.score("한국의 수도", KOREAN)
    reranker.score("알프스", KOREAN)
    assert built == [1]
    with pytest.raises(ValueError, match=r"0\.\.1"):
        SignalReranker(local_embedder, SparseEncoder("en"), dense_weight=1.5)
