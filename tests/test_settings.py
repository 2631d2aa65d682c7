"""Settings: environment parsing and the defaults that depend on the embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag_pipeline import Settings
from rag_pipeline.embedding.registry import make_embedder

from .conftest import FakeEmbedServer


def test_batch_size_defaults_per_embedder(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).effective_batch_size == 8
    remote = Settings(data_dir=tmp_path, embedder="ollama", embedding_base_url="http://h:1")
    assert remote.effective_batch_size == 32
    assert Settings(data_dir=tmp_path, embedding_batch_size=3).effective_batch_size == 3


def test_batch_size_from_environment_reaches_the_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embed_server: FakeEmbedServer
) -> None:
    # An HTTP embedder sends one request per batch, so the batch size shows in the requests.
    def request_sizes(settings: Settings, texts: int) -> list[int]:
        embed_server.requests.clear()
        embedder = make_embedder(settings)
        embedder.embed_documents([f"text {i}" for i in range(texts)])
        embedder.close()  # type: ignore[attr-defined]
        return sorted(len(r["body"]["input"]) for r in embed_server.requests)

    remote = {"embedder": "ollama", "embedding_base_url": embed_server.url}
    monkeypatch.setenv("RAG_EMBEDDING_BATCH_SIZE", "5")
    assert request_sizes(Settings(data_dir=tmp_path, **remote), 12) == [2, 5, 5]
    unset = Settings(data_dir=tmp_path, embedding_batch_size=None, **remote)
    assert request_sizes(unset, 40) == [8, 32]  # the HTTP default


def test_bad_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="embedding_batch_size"):
        Settings(data_dir=tmp_path, embedding_batch_size=0)
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(data_dir=tmp_path, chunk_size=64, chunk_overlap=64)
