"""Read a sentence-transformers or cross-encoder model folder and export it to ONNX (the only
torch user here)."""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_pipeline.errors import ConfigError, EmbeddingError, RerankError, StatusError

# Part of every cache key: bump it whenever the exported graph changes.
EXPORT_VERSION = "2"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "sentence_embedding"
SUPPORTED_POOLING = ("mean", "cls")
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class ModelSpec:
    """What the exporter and the ONNX embedder need to know about a model folder."""

    model_dir: Path
    transformer_dir: Path
    pooling: str
    normalize: bool
    dimension: int
    max_seq_length: int
    do_lower_case: bool
    pad_token_id: int


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def _pooling_modes(config: dict[str, Any]) -> tuple[str, ...]:
    """Return the pooling modes of a Pooling config, old (boolean keys) or new format."""
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        return (mode,)
    if isinstance(mode, list):
        return tuple(str(m) for m in mode)
    legacy = tuple(name for key, name in _LEGACY_POOLING_KEYS.items() if config.get(key))
    # sentence-transformers falls back to mean pooling when no mode is switched on.
    return legacy or ("mean",)


def read_model_spec(model_dir: Path) -> ModelSpec:
    """Parse a model folder's modules, refusing pipelines the exporter cannot reproduce."""
    transformer_dir = model_dir
    pooling = "mean"
    normalize = False
    pooling_dimension: int | None = None
    modules_file = model_dir / "modules.json"
    # Without modules.json sentence-transformers wraps a plain model in mean pooling.
    modules = _read_json(modules_file) if modules_file.is_file() else []
    for position, module in enumerate(modules):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        folder = model_dir / str(module.get("path", ""))
        if kind == "Transformer" and position == 0:
            transformer_dir = folder
        elif kind == "Pooling":
            config = _read_json(folder / "config.json")
            modes = _pooling_modes(config)
            if len(modes) != 1 or modes[0] not in SUPPORTED_POOLING:
                raise ConfigError(
                    f"{model_dir}: pooling mode {'+'.join(modes)} is not supported by the ONNX "
                    f"embedder (supported: {', '.join(SUPPORTED_POOLING)}); use the torch embedder"
                )
            pooling = modes[0]
            size = config.get("word_embedding_dimension", config.get("embedding_dimension"))
            pooling_dimension = int(size) if size else None
        elif kind == "Normalize":
            normalize = True
        else:
            raise ConfigError(
                f"{model_dir}: module {module.get('type')!r} at position {position} is not "
                "supported by the ONNX embedder (only Transformer, Pooling, Normalize); "
                "use the torch embedder"
            )
    config = _read_json(transformer_dir / "config.json")
    hidden_size = int(config.get("hidden_size") or config.get("dim") or 0)
    dimension = pooling_dimension or hidden_size
    if dimension < 1:
        raise ConfigError(f"{transformer_dir}/config.json does not give the hidden size")
    st_config_file = transformer_dir / "sentence_bert_config.json"
    st_config = _read_json(st_config_file) if st_config_file.is_file() else {}
    tokenizer_config_file = transformer_dir / "tokenizer_config.json"
    tokenizer_config = _read_json(tokenizer_config_file) if tokenizer_config_file.is_file() else {}
    positions = int(config.get("max_position_embeddings") or 0)
    window = st_config.get("max_seq_length") or tokenizer_config.get("model_max_length") or 512
    # sentence-transformers caps the window at the position table, as must we.
    max_seq_length = min(int(window), positions) if positions > 0 else int(window)
    return ModelSpec(
        model_dir=model_dir,
        transformer_dir=transformer_dir,
        pooling=pooling,
        normalize=normalize,
        dimension=dimension,
        max_seq_length=max_seq_length,
        do_lower_case=bool(st_config.get("do_lower_case", False)),
        pad_token_id=int(config.get("pad_token_id") or 0),
    )


# Cross-encoders have their own graph (token type ids, logits out) and so their own version.
CROSS_ENCODER_EXPORT_VERSION = "1"
CROSS_ENCODER_OUTPUT = "logits"
# Model types whose position ids start after the padding index (transformers'
# create_position_ids_from_input_ids): a window of max_position_embeddings - pad_token_id - 1.
_OFFSET_POSITIONS = {
    "camembert",
    "data2vec-text",
    "ibert",
    "longformer",
    "mpnet",
    "roberta",
    "roberta-prelayernorm",
    "xlm-roberta",
    "xlm-roberta-xl",
    "xmod",
}
# What transformers writes as model_max_length when a tokenizer gives none (int(1e30)).
_NO_MAX_LENGTH = 1_000_000


@dataclass(frozen=True)
class CrossEncoderSpec:
    """What the exporter and the local reranker need to know about a cross-encoder folder."""

    model_dir: Path
    num_labels: int
    max_length: int
    token_type_ids: bool
    pad_token_id: int

    @property
    def input_names(self) -> tuple[str, ...]:
        """The graph's inputs, in order."""
        return (*INPUT_NAMES, "token_type_ids") if self.token_type_ids else INPUT_NAMES


def read_cross_encoder_spec(model_dir: Path) -> CrossEncoderSpec:
    """Parse a sequence-classification model folder with one or two labels and a tokenizer.json;
    refuse anything else, naming the folder and why."""
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{model_dir} is not a model folder (no config.json)")
    config = _read_json(config_file)
    architectures = [str(a) for a in config.get("architectures") or []]
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ConfigError(
            f"{model_dir} is not a cross-encoder: its architectures {architectures} name no "
            "...ForSequenceClassification model"
        )
    labels = config.get("id2label")
    # transformers saves num_labels as id2label; its default without either is 2.
    num_labels = len(labels) if labels else int(config.get("num_labels", 2))
    if num_labels not in (1, 2):
        raise ConfigError(
            f"{model_dir} has {num_labels} labels; a reranker needs 1 (a relevance logit) "
            "or 2 (not relevant, relevant)"
        )
    if not (model_dir / "tokenizer.json").is_file():
        raise ConfigError(f"{model_dir} has no tokenizer.json (a fast tokenizer's file)")
    tokenizer_config_file = model_dir / "tokenizer_config.json"
    tokenizer_config = _read_json(tokenizer_config_file) if tokenizer_config_file.is_file() else {}
    pad_token_id = int(config.get("pad_token_id") or 0)
    windows = []
    tokenizer_window = tokenizer_config.get("model_max_length")
    if tokenizer_window and int(tokenizer_window) < _NO_MAX_LENGTH:
        windows.append(int(tokenizer_window))
    positions = int(config.get("max_position_embeddings") or 0)
    if positions > 0:
        offset = pad_token_id + 1 if config.get("model_type") in _OFFSET_POSITIONS else 0
        windows.append(positions - offset)
    return CrossEncoderSpec(
        model_dir=model_dir,
        num_labels=num_labels,
        max_length=min(windows) if windows else 512,
        # BERT-style models embed a segment per token; XLM-RoBERTa's single type (and
        # models without the table) take none, and would index past it on a 1.
        token_type_ids=int(config.get("type_vocab_size") or 0) > 1,
        pad_token_id=pad_token_id,
    )


@contextmanager
def _temporary_file(target: Path) -> Iterator[Path]:
    """Yield a temp path next to ``target``; move it onto ``target`` if the body succeeds."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        # mkstemp makes the file private; a shared cache must stay readable by others.
        temp.chmod(0o644)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _import_transformers() -> Any:
    """Import transformers quietly and offline, or explain that the export needs it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        # transformers imports without torch, then fails at the export.
        import torch  # noqa: F401
        import transformers
        from transformers.utils import logging as transformers_logging
    except ImportError as exc:
        raise ConfigError(
            "exporting a model to ONNX needs torch and transformers "
            "(pip install torch transformers); later runs use the cached export"
        ) from exc

    transformers_logging.disable_progress_bar()
    return transformers


def _build_wrapper(spec: ModelSpec) -> Any:
    """Load the transformer and wrap it with pooling (and normalisation) as one torch module."""
    transformers = _import_transformers()
    import torch

    # sdpa attention exports a larger graph that ran ~1.5x slower in ONNX Runtime.
    model = transformers.AutoModel.from_pretrained(
        spec.transformer_dir, attn_implementation="eager"
    ).eval()

    class SentenceEncoder(torch.nn.Module):
        """Transformer, pooling and optional L2 normalisation in one forward pass."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            # transformers 5 rejects positional arguments here (use_cache clashes).
            tokens = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            if spec.pooling == "cls":
                pooled = tokens[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if spec.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=1)
            return pooled

    return SentenceEncoder().eval()


def _dummy_batch(spec: ModelSpec, rows: int, width: int) -> tuple[Any, Any]:
    """Return (input_ids, attention_mask) with the last row padded, so masking is traced."""
    import torch

    ids = torch.full((rows, width), 5, dtype=torch.long)
    mask = torch.ones((rows, width), dtype=torch.long)
    ids[-1, width // 2 :] = spec.pad_token_id
    mask[-1, width // 2 :] = 0
    return ids, mask


# torch's ONNX exporter keeps process-wide state (GLOBALS.in_onnx_export): two exports at
# once in one process, even of two models, fail ("must be False"). A first index in auto
# mode did exactly that (the default model preloading in one thread while the first
# batches loaded the multilingual one): one export at a time per process. Between
# processes, the file lock on the cache folder (onnx._export_lock) does the rest.
_EXPORTING = threading.Lock()


def export_onnx(spec: ModelSpec, target: Path) -> None:
    """Export ``spec``'s model as a float32 ONNX graph that outputs sentence embeddings."""
    with _EXPORTING:
        _export_onnx(spec, target)


def _export_onnx(spec: ModelSpec, target: Path) -> None:
    _export_verified(
        _build_wrapper(spec),
        INPUT_NAMES,
        OUTPUT_NAME,
        _dummy_batch(spec, 2, 8),
        _dummy_batch(spec, 3, 13),
        target,
        spec.model_dir,
        EmbeddingError,
    )


def _export_verified(
    module: Any,
    input_names: Sequence[str],
    output_name: str,
    traced: tuple[Any, ...],
    checked: tuple[Any, ...],
    target: Path,
    source: Path,
    error: type[StatusError],
) -> None:
    """Export ``module`` traced on ``traced`` into ``target``, if ONNX Runtime reproduces
    torch on ``checked`` (another batch and length); raise ``error`` otherwise."""
    import numpy as np
    import onnxruntime as ort
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_file(target) as temp:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                # Tracer and deprecation warnings are about code paths this graph never takes.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    traced,
                    str(temp),
                    input_names=list(input_names),
                    output_names=[output_name],
                    dynamic_axes={
                        **{name: {0: "batch", 1: "sequence"} for name in input_names},
                        output_name: {0: "batch"},
                    },
                    opset_version=17,
                    dynamo=False,
                )
                # Check another batch and length than the traced one: shapes must stay dynamic.
                expected = module(*checked).numpy()
            session = ort.InferenceSession(str(temp), providers=["CPUExecutionProvider"])
            (got,) = session.run(
                [output_name],
                {name: tensor.numpy() for name, tensor in zip(input_names, checked, strict=True)},
            )
        except Exception as exc:
            raise error(f"ONNX export of {source} failed: {exc}") from exc
        if not np.allclose(got, expected, atol=1e-4, rtol=1e-3):
            raise error(
                f"ONNX export of {source} does not reproduce the torch model "
                f"(max difference {float(np.abs(got - expected).max()):.2e})"
            )


def export_cross_encoder(model_dir: Path, target: Path) -> None:
    """Export ``model_dir``'s sequence classifier as a float32 ONNX graph that outputs logits."""
    spec = read_cross_encoder_spec(model_dir)
    with _EXPORTING:
        _export_verified(
            _build_classifier(spec),
            spec.input_names,
            CROSS_ENCODER_OUTPUT,
            _dummy_pairs(spec, 2, 8),
            _dummy_pairs(spec, 3, 13),
            target,
            model_dir,
            RerankError,
        )


def _build_classifier(spec: CrossEncoderSpec) -> Any:
    """Load the classifier as a torch module that takes the graph's inputs and returns logits."""
    transformers = _import_transformers()
    import torch

    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            spec.model_dir, attn_implementation="eager"
        ).eval()
    except Exception as exc:
        raise RerankError(f"cannot load the cross-encoder {spec.model_dir}: {exc}") from exc

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.model(**inputs).logits

    return Logits().eval()


def _dummy_pairs(spec: CrossEncoderSpec, rows: int, width: int) -> tuple[Any, ...]:
    """Return the graph's inputs for ``rows`` pairs, the last one padded, so that masking and
    the second segment's type are traced."""
    import torch

    ids = torch.full((rows, width), 5, dtype=torch.long)
    mask = torch.ones((rows, width), dtype=torch.long)
    ids[-1, width // 2 :] = spec.pad_token_id
    mask[-1, width // 2 :] = 0
    if not spec.token_type_ids:
        return ids, mask
    types = torch.zeros((rows, width), dtype=torch.long)
    types[:, width // 4 :] = 1
    types[-1, width // 2 :] = 0
    return ids, mask, types


class _DropPreprocessAdvice(logging.Filter):
    """Hides quantize_dynamic's advice to pre-process, which does not apply to these graphs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage()


def _x86_without_vnni() -> bool:
    """Whether this is an x86-64 CPU without VNNI (Linux: from /proc/cpuinfo's flags)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # not Linux: cannot tell, keep the full range
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return not ({"avx512_vnni", "avx_vnni"} & set(flags.split()))


def quantize_int8(source: Path, target: Path) -> None:
    """Write a dynamic per-channel int8 copy of the float32 graph ``source`` to ``target``.

    On an x86-64 CPU without VNNI (AVX2 only, e.g. this project's AMD EPYC CI machines) the
    weights are quantized to 7 bits: ONNX Runtime's u8s8 kernels there can saturate
    (its quantization guide advises ``reduce_range``); measured: a cross-encoder's int8
    scores drifted 0.13 from fp32 with 8 bits on such a machine. A model cache is built
    for the machine it is on (made elsewhere, a quantized file is used as it is).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _temporary_file(target) as temp:
        advice_filter = _DropPreprocessAdvice()
        logging.getLogger().addFilter(advice_filter)
        try:
            # Fusing attention first (onnxruntime.transformers.optimizer) measured ~10% slower.
            quantize_dynamic(
                source,
                temp,
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=_x86_without_vnni(),
            )
        except Exception as exc:
            raise EmbeddingError(f"int8 quantisation of {source} failed: {exc}") from exc
        finally:
            logging.getLogger().removeFilter(advice_filter)
