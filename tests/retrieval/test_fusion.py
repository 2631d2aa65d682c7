"""The adaptive fusion rule: which halves of a hybrid search take part, per case."""

from __future__ import annotations

import pytest

from rag_pipeline.retrieval.fusion import SPARSE_FLOOR_PER_TERM, fusion_weights

ENGLISH_ONLY = frozenset({"Latn"})
MULTILINGUAL = None


@pytest.mark.parametrize(
    ("query", "model", "mix", "weights"),
    [
        # English question, English collection, English model: both halves, as DBSF did.
        ("Latn", ENGLISH_ONLY, {"Latn": 1.0}, (1.0, 1.0)),
        # Korean question, Korean collection, English-only model: the sparse half alone.
        ("Hang", ENGLISH_ONLY, {"Hang": 0.9, "Latn": 0.1}, (0.0, 1.0)),
        ("Jpan", ENGLISH_ONLY, {"Jpan": 1.0}, (0.0, 1.0)),
        # Same collection, multilingual model: both.
        ("Hang", MULTILINGUAL, {"Hang": 0.9, "Latn": 0.1}, (1.0, 1.0)),
        # Japanese question, English-only collection, multilingual model: only the dense
        # half can find an answer written in another language.
        ("Jpan", MULTILINGUAL, {"Latn": 1.0}, (1.0, 0.0)),
        # A trace of a script (under 2%) is not text the sparse half can match.
        ("Hang", MULTILINGUAL, {"Latn": 0.99, "Hang": 0.01}, (1.0, 0.0)),
        # Neither can read it: both, as best effort.
        ("Hang", ENGLISH_ONLY, {"Latn": 1.0}, (1.0, 1.0)),
        # Languages not recorded (an older collection): the sparse half is trusted.
        ("Hang", ENGLISH_ONLY, {}, (0.0, 1.0)),
        ("Latn", ENGLISH_ONLY, {}, (1.0, 1.0)),
        # A query of numbers only: both.
        ("Zyyy", ENGLISH_ONLY, {"Hang": 1.0}, (1.0, 1.0)),
    ],
)
def test_fusion_weights_for_each_case(
    query: str,
    model: frozenset[str] | None,
    mix: dict[str, float],
    weights: tuple[float, float],
) -> None:
    halves = fusion_weights(query, model, mix)
    assert (halves.dense, halves.sparse) == weights
    assert halves.why


def test_a_leading_multilingual_model_counts_double_where_both_halves_read() -> None:
    halves = fusion_weights("Hang", MULTILINGUAL, {"Hang": 1.0}, dense_leads=True)
    assert (halves.dense, halves.sparse) == (2, 1)
    halves = fusion_weights("Latn", MULTILINGUAL, {"Latn": 1.0}, dense_leads=True)
    assert (halves.dense, halves.sparse) == (2, 1)
    # Leaving a half out still wins over leading.
    halves = fusion_weights("Jpan", MULTILINGUAL, {"Latn": 1.0}, dense_leads=True)
    assert (halves.dense, halves.sparse) == (1, 0)


@pytest.mark.parametrize(
    ("query", "model", "mix", "floor"),
    [
        # A collection of several languages and a model that reads them all: a question
        # may be about text in another language, so weak sparse hits are left out.
        ("Latn", MULTILINGUAL, {"Latn": 0.54, "Jpan": 0.27, "Hang": 0.19}, SPARSE_FLOOR_PER_TERM),
        ("Hang", MULTILINGUAL, {"Latn": 0.54, "Jpan": 0.27, "Hang": 0.19}, SPARSE_FLOOR_PER_TERM),
        # One language (a little English in Korean text is not another corpus): no floor.
        ("Hang", MULTILINGUAL, {"Hang": 0.9, "Latn": 0.1}, 0.0),
        ("Jpan", MULTILINGUAL, {"Jpan": 1.0}, 0.0),
        # An English-only model cannot answer across languages: the sparse half stays whole.
        ("Latn", ENGLISH_ONLY, {"Latn": 0.5, "Hang": 0.5}, 0.0),
        # Languages not recorded: as before.
        ("Latn", MULTILINGUAL, {}, 0.0),
    ],
)
def test_sparse_floor_only_in_collections_of_several_languages(
    query: str, model: frozenset[str] | None, mix: dict[str, float], floor: float
) -> None:
    halves = fusion_weights(query, model, mix, dense_leads=model is None)
    assert halves.sparse_floor == floor
    assert halves.sparse == 1
    assert ("several languages" in halves.why) == bool(floor)
