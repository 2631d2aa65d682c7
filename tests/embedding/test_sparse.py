from __future__ import annotations

import pytest

from rag_pipeline.embedding.sparse import SparseEncoder, term_id
from rag_pipeline.errors import ConfigError


@pytest.fixture(scope="module")
def encoder() -> SparseEncoder:
    return SparseEncoder()


def test_english_is_lowercased_stemmed_and_stopped(encoder: SparseEncoder) -> None:
    terms = encoder.tokenize("The Refunds are RUNNING quickly, and the refund policy changed.")
    assert terms == ["refund", "run", "quick", "refund", "polici", "chang"]


def test_japanese_becomes_overlapping_bigrams(encoder: SparseEncoder) -> None:
    terms = encoder.tokenize("宿泊費の上限")
    assert terms == ["宿泊", "泊費", "費の", "の上", "上限"]
    # A query word shares its bigrams with the document that contains it.
    doc = set(encoder.tokenize("宿泊費の上限は1泊あたり12,000円とする。"))
    assert {"宿泊", "泊費", "上限"} <= doc


def test_korean_matches_whatever_particle_is_attached(encoder: SparseEncoder) -> None:
    with_particle = set(encoder.tokenize("노트북을 분실한 경우"))
    bare = set(encoder.tokenize("노트북 분실"))
    assert {"노트", "트북", "분실"} <= with_particle
    assert bare <= with_particle


def test_mixed_script_and_width_are_normalised(encoder: SparseEncoder) -> None:
    assert encoder.tokenize("ＡＢＣ Ｗｉｆｉ") == encoder.tokenize("abc wifi")
    assert "2024" in encoder.tokenize("2024年9月3日")


def test_document_vectors_saturate_and_normalise_length(encoder: SparseEncoder) -> None:
    once = encoder.embed_document("tent")
    many = encoder.embed_document("tent " * 50)
    assert once.indices == many.indices == [term_id("tent")]
    assert once.values[0] < many.values[0] < 1.2 + 1  # bounded by k1 + 1
    long_doc = encoder.embed_document("tent " + "stove " * 300)
    assert long_doc.values[long_doc.indices.index(term_id("tent"))] < once.values[0]


def test_query_vector_is_one_per_distinct_term(encoder: SparseEncoder) -> None:
    vector = encoder.embed_query("tent tent stove")
    assert sorted(vector.indices) == sorted({term_id("tent"), term_id("stove")})
    assert vector.values == [1.0, 1.0]
    assert encoder.embed_query("the and of").indices == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="language"):
        SparseEncoder("xx")
    with pytest.raises(ConfigError):
        SparseEncoder(b=2.0)
