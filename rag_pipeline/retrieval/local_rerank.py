"""A local cross-encoder reranker run by ONNX Runtime from a cached export."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.embedding._onnx_export import (
    CROSS_ENCODER_EXPORT_VERSION,
    CROSS_ENCODER_OUTPUT,
    CrossEncoderSpec,
    export_cross_encoder,
    quantize_int8,
    read_cross_encoder_spec,
)
from rag_pipeline.embedding.onnx import (
    CPU_BATCH_TOKENS,
    MAX_PADDING,
    Precision,
    _memoised_fingerprint,
    _model_folder,
    _slug,
    new_session,
    open_export,
    plan_batches,
)
from rag_pipeline.errors import ConfigError, EmbeddingError, RerankError

_FILE_NAMES: dict[str, str] = {"fp32": "cross-encoder.onnx", "int8": "cross-encoder-int8.onnx"}


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    # exp(-logaddexp(0, -x)) = 1 / (1 + exp(-x)), without overflowing on very negative logits.
    return np.exp(-np.logaddexp(0.0, -logits))


class LocalReranker:
    """A cross-encoder (a ``...ForSequenceClassification`` model with one or two labels) exported
    once to ONNX and run by ONNX Runtime with the model's own ``tokenizer.json``.

    Each (query, document) pair is encoded as the model was trained (``[CLS] q [SEP] d [SEP]``
    or ``<s> q </s></s> d </s>``), cutting the document (and the query too, only when the query
    alone fills the window) to the model's window. The score is on an absolute 0..1 scale, as
    sentence-transformers' CrossEncoder and bge-reranker's ``normalize=True`` give it: the
    sigmoid of a one-label model's logit, or a two-label model's softmax probability of its
    second ("relevant") label.

    float32 reproduces the torch model's scores and keeps the model's name; int8 is named
    ``<model>@int8``. Tests check the scores against torch on a tiny model built for them;
    how well any real reranker ranks under this runtime (and int8 in particular) is not
    measured here.
    """

    def __init__(
        self,
        model: str,
        *,
        cache_dir: str | os.PathLike[str],
        precision: Precision = "fp32",
        batch_size: int = 8,
        threads: int | None = None,
        max_length: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        if precision not in _FILE_NAMES:
            raise ConfigError(f"precision must be 'fp32' or 'int8', got {precision!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        try:
            folder = _model_folder(model)
        except ConfigError as exc:
            raise ConfigError(
                f"the local reranker needs a local model folder; {model!r} is neither a folder "
                "nor in the Hugging Face cache"
            ) from exc
        # Read now, not at the first query: a wrong model should stop a server at start-up.
        self._spec: CrossEncoderSpec = read_cross_encoder_spec(folder)
        if max_length is not None and not 1 <= max_length <= self._spec.max_length:
            raise ConfigError(
                f"max_length must be between 1 and the model's window "
                f"{self._spec.max_length}, got {max_length}"
            )
        self._model = model
        self._cache_dir = Path(cache_dir)
        self._precision = precision
        self._batch_size = batch_size
        self._max_length = max_length or self._spec.max_length
        self._threads = threads
        self._providers = list(providers) if providers else ["CPUExecutionProvider"]
        # A CPU runs fastest on small, evenly long batches (onnx.CPU_BATCH_TOKENS, measured
        # for MiniLM embeddings, not for cross-encoders); a GPU on the biggest it gets.
        on_cpu = self._providers == ["CPUExecutionProvider"]
        self._batch_tokens = CPU_BATCH_TOKENS if on_cpu else None
        self._max_padding = MAX_PADDING if on_cpu else None
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._session: Any = None
        # Encoders of pairs: one cutting only the document, one cutting the longer side.
        self._tokenizers: tuple[Any, Any] | None = None

    @property
    def model_name(self) -> str:
        return self._model if self._precision == "fp32" else f"{self._model}@int8"

    @property
    def precision(self) -> Precision:
        """The weights' precision: fp32 or int8."""
        return self._precision

    @property
    def max_length(self) -> int:
        """The most tokens of a pair, special tokens included, that the model reads."""
        return self._max_length

    @property
    def onnx_path(self) -> Path:
        """Where this model's export for this precision is cached (it may not exist yet)."""
        with self._lock:
            return self._cache_folder() / _FILE_NAMES[self._precision]

    @property
    def loaded(self) -> bool:
        """Whether the inference session is loaded."""
        return self._session is not None

    def preload(self) -> None:
        """Load (or first export) the model now, rather than at the first query."""
        self._load()

    def _cache_folder(self) -> Path:
        """Return cache_dir/<slug>-<key>; call with the lock held."""
        if self._folder is None:
            fingerprint = _memoised_fingerprint(self._spec.model_dir, self._cache_dir)
            # The embedder's fingerprint, keyed again by this graph's own export version.
            key = hashlib.sha256(
                f"cross-encoder {CROSS_ENCODER_EXPORT_VERSION}\0{fingerprint}".encode()
            ).hexdigest()[:16]
            self._folder = self._cache_dir / f"{_slug(self._model)}-{key}"
        return self._folder

    def _export(self, path: Path, spec: CrossEncoderSpec) -> None:
        """Export (and quantise) into ``path``; call with the export lock held."""
        fp32 = path.with_name(_FILE_NAMES["fp32"])
        fresh = not fp32.is_file()
        if fresh:
            export_cross_encoder(spec.model_dir, fp32)
        if path == fp32:
            return
        try:
            quantize_int8(fp32, path)
        except EmbeddingError:
            if fresh:
                raise
            # The cached float32 graph that int8 starts from may be the damaged file.
            export_cross_encoder(spec.model_dir, fp32)
            quantize_int8(fp32, path)

    def _load(self) -> tuple[Any, tuple[Any, Any]]:
        with self._lock:
            if self._session is None or self._tokenizers is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                missing = set(self._providers) - set(ort.get_available_providers())
                if missing:
                    raise ConfigError(
                        f"ONNX Runtime providers {sorted(missing)} are not available "
                        f"(available: {ort.get_available_providers()})"
                    )
                tokenizers = []
                for strategy in ("only_second", "longest_first"):
                    tokenizer = Tokenizer.from_file(str(self._spec.model_dir / "tokenizer.json"))
                    # Batches are padded here, to their longest row, after sorting by length.
                    tokenizer.no_padding()
                    tokenizer.enable_truncation(max_length=self._max_length, strategy=strategy)
                    tokenizers.append(tokenizer)
                # A pair needs its special tokens and at least one token of each text.
                smallest = tokenizers[0].num_special_tokens_to_add(True) + 2
                if self._max_length < smallest:
                    raise ConfigError(
                        f"max_length {self._max_length} leaves no room for a query and a "
                        f"document (the model's pair needs at least {smallest} tokens)"
                    )
                path = self._cache_folder() / _FILE_NAMES[self._precision]
                try:
                    session = open_export(
                        path,
                        lambda: self._export(path, self._spec),
                        lambda p: new_session(p, self._providers, self._threads),
                    )
                except EmbeddingError as exc:
                    # int8 quantisation and the shared loader speak the embedder's error.
                    raise RerankError(f"reranker {self.model_name!r}: {exc}") from exc
                self._tokenizers = (tokenizers[0], tokenizers[1])
                self._session = session
            return self._session, self._tokenizers

    def _encode(
        self, tokenizers: tuple[Any, Any], query: str, documents: Sequence[str]
    ) -> list[Any]:
        cut_document, cut_longest = tokenizers
        pairs = [(query, document) for document in documents]
        try:
            return cut_document.encode_batch(pairs)
        except Exception:
            pass  # the query alone fills the window: cutting the document is not enough
        try:
            return cut_longest.encode_batch(pairs)
        except Exception as exc:
            raise RerankError(f"cannot fit a pair into {self._max_length} tokens: {exc}") from exc

    def score(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """Return one float32 relevance in 0..1 per document, in order."""
        if not documents:
            return np.zeros(0, dtype=np.float32)
        session, tokenizers = self._load()
        encodings = self._encode(tokenizers, query, documents)
        lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
        names = self._spec.input_names
        logits = np.empty((len(documents), self._spec.num_labels), dtype=np.float32)
        for rows in plan_batches(lengths, self._batch_size, self._batch_tokens, self._max_padding):
            width = int(lengths[rows[0]])
            # RoBERTa-style models number positions from the ids, skipping the config's pad id.
            ids = np.full((len(rows), width), self._spec.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                encoding = encodings[index]
                ids[row, : lengths[index]] = encoding.ids
                mask[row, : lengths[index]] = 1
                types[row, : lengths[index]] = encoding.type_ids
            try:
                (batch,) = session.run(
                    [CROSS_ENCODER_OUTPUT],
                    dict(zip(names, (ids, mask, types)[: len(names)], strict=True)),
                )
            except Exception as exc:
                raise RerankError(f"ONNX model {self.model_name!r} failed: {exc}") from exc
            if batch.shape != (len(rows), self._spec.num_labels):
                raise RerankError(
                    f"ONNX model {self.model_name!r} returned shape {batch.shape}, "
                    f"expected ({len(rows)}, {self._spec.num_labels})"
                )
            logits[rows] = batch
        if not np.isfinite(logits).all():
            raise RerankError(f"ONNX model {self.model_name!r} returned non-finite logits")
        # A two-label softmax's second column is the sigmoid of the logits' difference.
        margin = logits[:, 0] if self._spec.num_labels == 1 else logits[:, 1] - logits[:, 0]
        return _sigmoid(margin).astype(np.float32)
