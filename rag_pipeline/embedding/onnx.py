"""Local sentence-transformers models run by ONNX Runtime from a cached export."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag_pipeline.embedding._onnx_export import (
    EXPORT_VERSION,
    INPUT_NAMES,
    OUTPUT_NAME,
    ModelSpec,
    export_onnx,
    quantize_int8,
    read_model_spec,
)
from rag_pipeline.embedding.base import default_prefixes
from rag_pipeline.embedding.local import DEFAULT_LOCAL_MODEL, resolve_local_model
from rag_pipeline.embedding.tokens import TokenSpec, cut_at, encode_ids
from rag_pipeline.errors import ConfigError, EmbeddingError

Precision = Literal["fp32", "int8"]
_FILE_NAMES: dict[str, str] = {"fp32": "model.onnx", "int8": "model-int8.onnx"}
# Files that do not change what the model computes.
_UNHASHED = {"README.md", ".gitattributes"}


def _available_cores() -> int:
    """Return the cores this process may run on (the affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


# On a CPU a batch is cut at this many tokens, padding included: measured on this project's
# 2-core machine (benchmarks/RESULTS.md, "CPU batches by tokens"), fp32 MiniLM runs a
# padded 8 x 256 batch slower per text than 8 single rows, and small mixed-length calls
# (a server's) ran at half the one-row speed; 512 served small calls best and left the
# indexer's large calls within noise.
CPU_BATCH_TOKENS = 512
# ... and a batch on a CPU never pads more than this share of its tokens (a long row and
# short ones go to separate batches).
MAX_PADDING = 0.2


def plan_batches(
    lengths: Sequence[int],
    max_rows: int,
    max_tokens: int | None = None,
    max_padding: float | None = None,
) -> list[np.ndarray]:
    """Group row indices into batches of at most ``max_rows``, longest first; a batch also
    stays within ``max_tokens`` padded tokens (one row always fits) and pads at most
    ``max_padding`` of its tokens, where given.

    Token-budget batching as translation and serving stacks do it (fairseq's max_tokens, TEI's
    max_batch_tokens); a few lines over our arrays, so written here.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        width = max(1, int(lengths[order[start]]))
        end, real = start + 1, width
        while end < len(order) and end - start < max_rows:
            rows, length = end - start + 1, int(lengths[order[end]])
            if max_tokens is not None and rows * width > max_tokens:
                break
            if max_padding is not None and real + length < (1 - max_padding) * rows * width:
                break
            real += length
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def model_fingerprint(model_dir: Path) -> str:
    """Return a sha256 over the model folder's file names and bytes, with the export version."""
    digest = hashlib.sha256(f"rag-pipeline-onnx-export {EXPORT_VERSION}\0".encode())
    files = sorted(
        p
        for p in model_dir.rglob("*")
        if p.is_file() and p.name not in _UNHASHED and ".cache" not in p.parts
    )
    for path in files:
        digest.update(path.relative_to(model_dir).as_posix().encode("utf-8") + b"\0")
        digest.update(str(path.stat().st_size).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _memoised_fingerprint(model_dir: Path, cache_dir: Path) -> str:
    """Return ``model_fingerprint``, remembered per (file names, sizes, mtimes) in the cache."""
    # Hashing 90 MB of weights costs ~0.1 s on every process start; a file's size and
    # mtime change whenever its bytes are rewritten, so they key the remembered hash.
    stats = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        info = path.stat()
        stats.update(
            f"{path.relative_to(model_dir)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode()
        )
    memo = cache_dir / "fingerprints" / f"{EXPORT_VERSION}-{stats.hexdigest()[:32]}"
    return remembered(memo, lambda: model_fingerprint(model_dir))


def remembered(memo: Path, compute: Callable[[], str]) -> str:
    """Return the text kept in ``memo``, or ``compute()`` it and keep it there."""
    try:
        return memo.read_text(encoding="ascii").strip()
    except OSError:
        pass
    value = compute()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        temporary = memo.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(value, encoding="ascii")
        os.replace(temporary, memo)
    except OSError:
        pass  # a read-only cache only costs the computation next time
    return value


def _slug(model: str) -> str:
    """Return a file-name-safe short form of a model name or path."""
    name = model.rstrip("/\\")
    if os.sep in name or name.startswith("."):
        name = Path(name).name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:64] or "model"


def _model_folder(model: str) -> Path:
    """Return the local folder holding ``model``: packaged, a path, or in the hub cache."""
    location = resolve_local_model(model)
    if Path(location).is_dir():
        return Path(location)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(location, local_files_only=True))
    except Exception as exc:
        raise ConfigError(
            f"the ONNX embedder needs a local model folder; {model!r} is neither a folder "
            "nor in the Hugging Face cache"
        ) from exc


@contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` so only one process exports into it at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".export.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_session(
    path: Path, providers: Sequence[str], threads: int | None, allow_spinning: bool = False
) -> Any:
    """An ONNX Runtime session for ``path`` with this project's thread settings."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or _available_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Spinning measured no faster (bs 8, 2 cores) and takes cores from other stages.
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
    )
    return ort.InferenceSession(str(path), options, providers=list(providers))


def open_export(path: Path, export: Callable[[], None], session: Callable[[Path], Any]) -> Any:
    """Load the cached export ``path``, running ``export`` first if it is missing and once
    more if it cannot be loaded (a file cut short by a crash, or damaged on disk)."""
    if not path.is_file():
        with _export_lock(path.parent):
            if not path.is_file():
                export()
    before = path.stat()
    try:
        return session(path)
    except Exception as first:
        with _export_lock(path.parent):
            current = path.stat() if path.is_file() else None
            unchanged = current is not None and (current.st_ino, current.st_mtime_ns) == (
                before.st_ino,
                before.st_mtime_ns,
            )
            # Another process may have replaced the bad file while we waited for the lock.
            if current is None or unchanged:
                path.unlink(missing_ok=True)
                export()
        try:
            return session(path)
        except Exception as exc:
            raise EmbeddingError(
                f"cannot load the ONNX export {path} (first error: {first}): {exc}"
            ) from exc


class OnnxEmbedder:
    """A sentence-transformers model exported once to ONNX and run by ONNX Runtime.

    float32 reproduces the torch model's vectors, so it keeps the model's name; int8 does
    not, so it is named ``<model>@int8`` and needs its own collections. int8 quantises
    activations per batch, so a text's int8 vector also shifts a little (cosine ~0.99) with
    the texts batched beside it.
    """

    def __init__(
        self,
        model: str = DEFAULT_LOCAL_MODEL,
        *,
        cache_dir: str | os.PathLike[str],
        precision: Precision = "fp32",
        batch_size: int = 8,
        threads: int | None = None,
        allow_spinning: bool = False,
        batch_tokens: int | None = None,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        if precision not in _FILE_NAMES:
            raise ConfigError(f"precision must be 'fp32' or 'int8', got {precision!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        if batch_tokens is not None and batch_tokens < 0:
            raise ConfigError(f"batch_tokens must be >= 0 (0: no limit), got {batch_tokens}")
        self._model = model
        self._cache_dir = Path(cache_dir)
        self._precision = precision
        self._batch_size = batch_size
        self._threads = threads
        self._allow_spinning = allow_spinning
        self._providers = list(providers) if providers else ["CPUExecutionProvider"]
        # A GPU wants the biggest batches it can get; a CPU does not (CPU_BATCH_TOKENS).
        on_cpu = self._providers == ["CPUExecutionProvider"]
        if batch_tokens is None:
            batch_tokens = CPU_BATCH_TOKENS if on_cpu else 0
        self._batch_tokens = batch_tokens or None
        # The padding cap goes with the budget: 0 is plain batches of batch_size.
        self._max_padding = MAX_PADDING if self._batch_tokens else None
        query_default, passage_default = default_prefixes(model)
        self.query_prefix = query_default if query_prefix is None else query_prefix
        self.passage_prefix = passage_default if passage_prefix is None else passage_prefix
        self._lock = threading.Lock()
        self._spec: ModelSpec | None = None
        self._folder: Path | None = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._pad_id = 0

    @property
    def model_name(self) -> str:
        return self._model if self._precision == "fp32" else f"{self._model}@int8"

    @property
    def precision(self) -> Precision:
        """The weights' precision: fp32 or int8."""
        return self._precision

    @property
    def dimension(self) -> int:
        return self._model_spec().dimension

    @property
    def max_seq_length(self) -> int:
        """The model's input window in its own tokens (longer input is cut)."""
        return self._model_spec().max_seq_length

    @property
    def onnx_path(self) -> Path:
        """Where this model's export for this precision is cached (it may not exist yet)."""
        with self._lock:
            return self._cache_folder() / _FILE_NAMES[self._precision]

    def _model_spec(self) -> ModelSpec:
        with self._lock:
            return self._spec_locked()

    def _spec_locked(self) -> ModelSpec:
        """Return the parsed model folder; call with the lock held."""
        if self._spec is None:
            self._spec = read_model_spec(_model_folder(self._model))
        return self._spec

    def _cache_folder(self) -> Path:
        """Return cache_dir/<slug>-<fingerprint>; call with the lock held."""
        if self._folder is None:
            key = _memoised_fingerprint(self._spec_locked().model_dir, self._cache_dir)[:16]
            self._folder = self._cache_dir / f"{_slug(self._model)}-{key}"
        return self._folder

    def _export(self, path: Path, spec: ModelSpec) -> None:
        """Export (and quantise) into ``path``; call with the export lock held."""
        fp32 = path.with_name(_FILE_NAMES["fp32"])
        fresh = not fp32.is_file()
        if fresh:
            export_onnx(spec, fp32)
        if path == fp32:
            return
        try:
            quantize_int8(fp32, path)
        except EmbeddingError:
            if fresh:
                raise
            # The cached float32 graph that int8 starts from may be the damaged file.
            export_onnx(spec, fp32)
            quantize_int8(fp32, path)

    def _new_session(self, path: Path) -> Any:
        return new_session(path, self._providers, self._threads, self._allow_spinning)

    def _open(self, path: Path, spec: ModelSpec) -> Any:
        return open_export(path, lambda: self._export(path, spec), self._new_session)

    @property
    def providers(self) -> list[str]:
        """The ONNX Runtime execution providers it asks for, in order of preference."""
        return list(self._providers)

    @property
    def loaded(self) -> bool:
        """Whether the inference session is loaded."""
        return self._session is not None

    def preload(self) -> None:
        """Load (or first export) the model now, e.g. while the first files are extracted."""
        self._load()

    def _load(self) -> tuple[Any, Any, ModelSpec]:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                missing = set(self._providers) - set(ort.get_available_providers())
                if missing:
                    raise ConfigError(
                        f"ONNX Runtime providers {sorted(missing)} are not available "
                        f"(available: {ort.get_available_providers()})"
                    )
                folder = self._cache_folder()
                spec = self._spec_locked()
                tokenizer_file = spec.transformer_dir / "tokenizer.json"
                if not tokenizer_file.is_file():
                    raise ConfigError(f"the ONNX embedder needs {tokenizer_file}")
                tokenizer = Tokenizer.from_file(str(tokenizer_file))
                padding = tokenizer.padding
                self._pad_id = int(padding["pad_id"]) if padding else spec.pad_token_id
                # Batches are padded here, to their longest row, after sorting by length.
                cut_at(tokenizer, spec.max_seq_length)
                session = self._open(folder / _FILE_NAMES[self._precision], spec)
                self._tokenizer = tokenizer
                self._session = session
            return self._session, self._tokenizer, self._spec_locked()

    @property
    def token_spec(self) -> TokenSpec:
        """How a worker tokenises documents as this embedder does (see ``embed_token_ids``)."""
        spec = self._model_spec()
        return TokenSpec(
            str(spec.transformer_dir / "tokenizer.json"),
            spec.max_seq_length,
            self.passage_prefix,
            spec.do_lower_case,
        )

    def _tokenize(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The token ids of ``texts`` (prefixes already added), unpadded."""
        _, tokenizer, spec = self._load()
        if spec.do_lower_case:
            texts = [t.lower() for t in texts]
        return encode_ids(tokenizer, texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._run_ids(self._tokenize(texts))

    def _run_ids(self, encoded: Sequence[np.ndarray]) -> np.ndarray:
        """Run the model on token ids, in length-sorted padded batches; normalised rows."""
        dimension = self.dimension
        if not encoded:
            return np.zeros((0, dimension), dtype=np.float32)
        session, _, _ = self._load()
        lengths = np.array([len(e) for e in encoded], dtype=np.int64)
        vectors = np.empty((len(encoded), dimension), dtype=np.float32)
        for rows in plan_batches(lengths, self._batch_size, self._batch_tokens, self._max_padding):
            width = int(lengths[rows[0]])
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                ids[row, : lengths[index]] = encoded[index]
                mask[row, : lengths[index]] = 1
            try:
                (batch,) = session.run(
                    [OUTPUT_NAME], dict(zip(INPUT_NAMES, (ids, mask), strict=True))
                )
            except Exception as exc:
                raise EmbeddingError(f"ONNX model {self.model_name!r} failed: {exc}") from exc
            if batch.shape != (len(rows), dimension):
                raise EmbeddingError(
                    f"ONNX model {self.model_name!r} returned shape {batch.shape}, "
                    f"expected ({len(rows)}, {dimension})"
                )
            vectors[rows] = batch
        if not np.isfinite(vectors).all():
            raise EmbeddingError(f"ONNX model {self.model_name!r} returned non-finite values")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if (norms == 0).any():
            raise EmbeddingError(f"ONNX model {self.model_name!r} returned a zero vector")
        return vectors / norms

    def embed_token_ids(self, ids: Sequence[np.ndarray]) -> np.ndarray:
        """What ``embed_documents`` returns for the texts ``token_spec`` made these ids of."""
        return self._run_ids(ids)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self.passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text])[0]
