"""Settings: environment parsing and the defaults that depend on the embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag_pipeline import Settings
from rag_pipeline.pipeline import make_embedder


def test_batch_size_defaults_per_embedder(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).effective_batch_size == 8
    remote = Settings(data_dir=tmp_path, embedder="ollama", embedding_base_url="http://h:1")
    assert remote.effective_batch_size == 32
    assert Settings(data_dir=tmp_path, embedding_batch_size=3).effective_batch_size == 3


def test_batch_size_from_environment_reaches_the_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EMBEDDING_BATCH_SIZE", "5")
    embedder = make_embedder(Settings(data_dir=tmp_path))
    assert embedder._batch_size == 5
    assert make_embedder(Settings(data_dir=tmp_path, embedding_batch_size=None))._batch_size == 8


def test_bad_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="embedding_batch_size"):
        Settings(data_dir=tmp_path, embedding_batch_size=0)
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(data_dir=tmp_path, chunk_size=64, chunk_overlap=64)
