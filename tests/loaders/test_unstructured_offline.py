"""unstructured runs offline: the spaCy model download it would attempt is replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag_pipeline.loaders import load_file
from rag_pipeline.loaders._unstructured import html_table_to_markdown, prepare_unstructured


def test_unstructured_is_the_pinned_version() -> None:
    from importlib.metadata import version

    # prepare_unstructured replaces a private function of exactly this release.
    assert version("unstructured") == "0.27.32"


def test_prepare_replaces_the_model_loader_and_sets_env() -> None:
    prepare_unstructured()
    from unstructured.nlp import tokenize

    nlp = tokenize._get_nlp()
    assert nlp.meta["name"] == "pipeline"  # spacy.blank, not en_core_web_sm
    assert "sentencizer" in nlp.pipe_names
    assert os.environ["DO_NOT_TRACK"]
    assert os.environ["UNSTRUCTURED_DISABLE_NOTICE"]
    assert tokenize.sent_tokenize("One sentence. Another one.") == ["One sentence.", "Another one."]


def test_text_classification_never_downloads_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_unstructured()
    from unstructured.nlp import tokenize

    def refuse_download() -> None:
        raise AssertionError("unstructured tried to download en_core_web_sm")

    monkeypatch.setattr(tokenize, "_install_spacy_model", refuse_download)
    path = tmp_path / "prose.html"
    path.write_text(
        "<p>The committee reviewed the proposal and approved the budget for next year.</p>"
        "<p>Members discussed several options before they reached a decision.</p>",
        encoding="utf-8",
    )
    (doc,) = load_file(path)
    assert "approved the budget" in doc.text


def test_layout_table_becomes_paragraphs() -> None:
    essay = "A long paragraph of prose. " * 20
    html = f"<table><tr><td></td><td>{essay}<br/><br/>Second paragraph.</td></tr></table>"
    assert html_table_to_markdown(html) == essay.strip() + "\n\nSecond paragraph."


def test_data_table_escapes_pipes_and_drops_empty_columns() -> None:
    html = (
        "<table><tr><td>a|b</td><td></td><td>c</td></tr>"
        "<tr><td>1</td><td></td><td>2</td></tr></table>"
    )
    assert html_table_to_markdown(html) == "| a\\|b | c |\n|---|---|\n| 1 | 2 |"
