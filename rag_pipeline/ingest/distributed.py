"""The staged run on a Ray cluster: prepare on CPU tasks, embed on model-holding actors.

The driver plans exactly as a local run does (the Indexer's own listing, fingerprints and
stored state), then hands only the changed sources to a Ray Data pipeline: extraction,
chunking and sparse encoding as ``map_batches`` tasks spread over the cluster, embedding
as ``map_batches`` on an actor pool that keeps the model loaded (one GPU each when the
cluster has GPUs). A Qdrant server is written from the workers; the embedded engine is one
process, so its writes come back through the driver's writer thread. Ray is imported only
here, and only when a run starts.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from rag_pipeline.errors import ConfigError, ModelMismatchError, RagError
from rag_pipeline.ingest.indexer import (
    OCR_QUEUED,
    OCR_READ,
    TASK_SOURCES,
    Indexer,
    _Run,
    _Task,
    _Writer,
    embed_prepared,
    write_prepared,
)
from rag_pipeline.ingest.prepare import Failed, PrepareConfig, Prepared, Preparer, reason

if TYPE_CHECKING:
    import pyarrow as pa

    from rag_pipeline.pipeline import Pipeline
    from rag_pipeline.settings import Settings

INSTALL_HINT = "pip install 'rag-pipeline[ray]'"
# Sources per embedding call on an actor: Ray batches rows (sources), not chunks; the
# actor splits them again into groups of the indexer's ``embed_group`` chunks.
EMBED_ROWS = 64
# Memory an embedding actor holds: the model, its activations and a batch of vectors.
EMBED_ACTOR_MEMORY = 1 << 30
# Writer actors only wait on the server: a fraction of a CPU each, so that on a small
# cluster they do not take the cores extraction needs.
WRITER_CPUS = 0.25
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Embedded:
    """A prepared source and its dense vectors, ready to write."""

    prepared: Prepared
    vectors: np.ndarray


@dataclass(frozen=True, slots=True)
class _Written:
    """A source written by a worker: chunks stored and stale ones removed."""

    source: str
    status: str
    chunks: int
    deleted: int
    ocr_pages: int = 0


@dataclass(frozen=True, slots=True)
class _Fatal:
    """An error that must stop the whole run (the model does not fit the collection)."""

    message: str


# Rows travel between stages as Arrow tables; our dataclasses are not Arrow types, so each
# source's value is pickled here, once, rather than by Ray's fallback (which first tries
# an Arrow conversion and warns on every block).
def _pack(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _values(table: pa.Table, column: str = "value") -> list[Any]:
    return [pickle.loads(blob) for blob in table.column(column).to_pylist()]


def _rows(values: list[Any], table: pa.Table) -> pa.Table:
    """New values, with ``table``'s per-source columns carried on: each source's point ids
    before the run and its file's quick key (``SourceItem.quick_key``), for the writer."""
    import pyarrow as pa

    return pa.table(
        {
            "value": pa.array([_pack(v) for v in values], type=pa.binary()),
            "old_ids": table.column("old_ids"),
            "stat": table.column("stat"),
        }
    )


# One Preparer per Ray worker process, kept across the tasks it runs (like the local
# run's pool initializer, which Ray tasks do not have).
_preparer: tuple[PrepareConfig, Preparer] | None = None


def prepare_rows(table: pa.Table, config: PrepareConfig) -> pa.Table:
    """Ray task: load, chunk and sparse-encode planned sources (the local run's Preparer)."""
    global _preparer
    if _preparer is None or _preparer[0] != config:
        _preparer = (config, Preparer.from_config(config))
    preparer = _preparer[1]
    results = [preparer(*task) for task in _values(table)]
    return _rows(results, table)


class EmbedActor:
    """Ray actor: holds one embedding model and embeds prepared sources batch after batch."""

    def __init__(
        self,
        settings: Settings,
        model_name: str,
        dimension: int,
        knowledge_id: str,
        embed_group: int,
    ) -> None:
        from rag_pipeline.embedding.registry import make_embedder

        self.embedder = make_embedder(settings)
        self.dimension = dimension
        self.knowledge_id = knowledge_id
        self.embed_group = embed_group
        self.mismatch: str | None = None
        if self.embedder.model_name != model_name:
            # Settings decide the model on each node (e.g. CUDA there, not here): it must
            # still be the collection's.
            self.mismatch = (
                f"the Ray workers built embedder {self.embedder.model_name!r} but the run "
                f"indexes with {model_name!r}: set the same embedding settings everywhere"
            )

    def __call__(self, table: pa.Table) -> pa.Table:
        """Embed the prepared sources of a batch; failures stay values, as in a local run."""
        values = _values(table)
        out: list[Any] = list(values)
        group: list[int] = []
        chunks = 0
        for index, value in enumerate(values):
            if isinstance(value, Prepared):
                group.append(index)
                chunks += len(value.chunks)
                if chunks >= self.embed_group:
                    self._embed(group, values, out)
                    group, chunks = [], 0
        self._embed(group, values, out)
        return _rows(out, table)

    def _embed(self, group: list[int], values: list[Any], out: list[Any]) -> None:
        if not group:
            return
        batch = [values[i] for i in group]
        try:
            if self.mismatch is not None:
                raise ModelMismatchError(self.mismatch)
            vectors = embed_prepared(self.embedder, batch, self.dimension, self.knowledge_id)
        except ModelMismatchError as exc:
            for i in group:
                out[i] = _Fatal(str(exc))
            return
        except RagError as exc:
            for i, prepared in zip(group, batch, strict=True):
                out[i] = Failed(prepared.source, reason(exc))
            return
        start = 0
        for i, prepared in zip(group, batch, strict=True):
            end = start + len(prepared.chunks)
            out[i] = _Embedded(prepared, vectors[start:end])
            start = end


class WriteActor:
    """Ray actor: writes embedded sources to a Qdrant server over its own connection."""

    def __init__(
        self, settings: Settings, knowledge_id: str, extra: Mapping[str, Any], root_key: str
    ) -> None:
        from rag_pipeline.store import open_store

        self.store = open_store(settings)
        self.knowledge_id = knowledge_id
        self.extra = dict(extra)
        self.root_key = root_key

    def __call__(self, table: pa.Table) -> pa.Table:
        """Write a batch's embedded sources in one upsert; pass every other value on."""
        values = _values(table)
        old_ids = table.column("old_ids").to_pylist()
        stats = table.column("stat").to_pylist()
        written = [i for i, v in enumerate(values) if isinstance(v, _Embedded)]
        if written:
            batch = [values[i].prepared for i in written]
            deleted = write_prepared(
                self.store,
                self.knowledge_id,
                batch,
                np.vstack([values[i].vectors for i in written]),
                old_ids={p.source: old_ids[i] for p, i in zip(batch, written, strict=True)},
                extra=self.extra,
                root_key=self.root_key,
                stats={p.source: stats[i] for p, i in zip(batch, written, strict=True)},
            )
            for i, prepared, stale in zip(written, batch, deleted, strict=True):
                values[i] = _Written(
                    prepared.source,
                    prepared.status,
                    len(prepared.chunks),
                    stale,
                    prepared.ocr_pages,
                )
        return _rows(values, table)


def require_ray() -> None:
    """Raise a ConfigError naming the extra to install when Ray Data is missing."""
    # Looked up, not imported: importing Ray takes seconds, and a re-run that finds
    # nothing changed never needs it.
    for name in ("ray", "pyarrow"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ValueError:  # in sys.modules without a spec: blocked, not importable
            found = False
        if not found:
            raise ConfigError(f"indexing on Ray needs Ray Data ({name} is missing): {INSTALL_HINT}")


class RayIndexer(Indexer):
    """An Indexer whose prepare, embed and (on a Qdrant server) write stages run on Ray.

    Planning, pruning and the report are the Indexer's own, so a Ray run skips, re-embeds
    and prunes exactly what a local run would. Workers build the chunker from the
    driver's, and the embedder and a server connection from ``settings``.
    """

    def __init__(self, *args: Any, settings: Settings, address: str | None, **kwargs: Any):
        require_ray()
        super().__init__(*args, **kwargs)
        self.settings = settings
        self.address = address

    @classmethod
    def for_pipeline(cls, pipeline: Pipeline, *, workers: int | None = None, **extra: Any) -> Self:
        """One over a pipeline's parts, on the cluster its settings name (RAG_RAY_ADDRESS;
        none: a local one)."""
        require_ray()  # before the store is opened or a model named
        extra.setdefault("settings", pipeline.settings)
        extra.setdefault("address", pipeline.settings.ray_address)
        return super().for_pipeline(pipeline, workers=workers, **extra)

    def _process(self, planned: Iterator[_Task], run: _Run, writer: _Writer) -> None:
        """Run the planned sources through the cluster; record each as it comes back."""
        tasks = list(planned)  # the driver fingerprints everything before Ray starts
        if not tasks:
            return  # nothing changed: no cluster, no model
        if run.embedder is None:
            # auto, new collection: workers need the model before they make any chunk,
            # so the driver extracts the first sources once more, to choose by their text.
            self._create(run, self._choose(run, self._sample(tasks)))
        import ray

        started = _connect(self.address)
        try:
            with _quiet_ray_data():
                self._run_dataset(tasks, run, writer)
        finally:
            if started:
                ray.shutdown()

    def _sample(self, tasks: list[_Task]) -> list[Prepared]:
        """Prepare the first sources here (no sparse vectors): what auto chooses by."""
        preparer = Preparer(self.chunker, None, self.limits)
        prepared = (preparer(*task) for task in tasks[:TASK_SOURCES])
        return [p for p in prepared if isinstance(p, Prepared)]

    def _worker_settings(self, run: _Run) -> Settings:
        """The settings workers build the run's embedder from (auto: the one it uses)."""
        assert run.embedder is not None
        if self.choice is None:
            return self.settings
        return self.settings.model_copy(update={"embedder": self.choice.kind_of(run.embedder)})

    def _run_dataset(self, tasks: list[_Task], run: _Run, writer: _Writer) -> None:
        import ray
        import ray.data

        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        nodes = sum(1 for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU"))
        rows = [
            {
                "value": _pack(task),
                "old_ids": list(run.existing.get(task[0].identity, {}).get("ids", [])),
                "stat": run.stats.get(task[0].identity, ""),  # "": none (one arrow type)
            }
            for task in tasks
        ]
        sparse = self.sparse_encoder.config if self.sparse_encoder is not None else None
        config = PrepareConfig(
            self.chunker.chunk_size, self.chunker.chunk_overlap, sparse, self.limits
        )
        dataset = ray.data.from_items(
            rows, override_num_blocks=max(1, math.ceil(len(rows) / TASK_SOURCES))
        ).map_batches(
            prepare_rows,
            fn_kwargs={"config": config},
            batch_size=TASK_SOURCES,
            batch_format="pyarrow",
            num_cpus=1,
        )
        # One model per GPU, else one per node (ONNX Runtime already uses a node's cores).
        embed_resources = {"num_gpus": 1} if gpus else {}
        dataset = dataset.map_batches(
            EmbedActor,
            fn_constructor_kwargs={
                "settings": _portable(self._worker_settings(run)),
                "model_name": run.embedder.model_name,
                "dimension": run.dimension,
                "knowledge_id": run.knowledge_id,
                "embed_group": self.embed_group,
            },
            batch_size=EMBED_ROWS,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=gpus or max(1, nodes)),
            num_cpus=1,
            # The model stays resident: say so, so Ray places actors where it fits. A
            # request the extraction tasks do not make also keeps Ray from fusing them
            # into these few actors (it fuses stages whose requests match), where they
            # would run one batch at a time.
            memory=EMBED_ACTOR_MEMORY,
            **embed_resources,
        )
        if self.settings.qdrant_url:
            dataset = dataset.map_batches(
                WriteActor,
                fn_constructor_kwargs={
                    "settings": self.settings,
                    "knowledge_id": run.knowledge_id,
                    "extra": run.extra,
                    "root_key": run.root_key,
                },
                batch_size=None,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(2, nodes)),
                num_cpus=WRITER_CPUS,
            )
        for table in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            embedded = []
            for value in _values(table):
                if isinstance(value, Failed):
                    run.record(value.source, "failed", value.reason)
                elif isinstance(value, _Written):
                    _pages_read(run, value.source, value.ocr_pages)
                    run.written(value.source, value.status, value.chunks, value.deleted)
                elif isinstance(value, _Embedded):
                    _pages_read(run, value.prepared.name, value.prepared.ocr_pages)
                    embedded.append(value)
                else:
                    assert isinstance(value, _Fatal), value
                    raise ModelMismatchError(value.message)
            if embedded:
                writer.put(
                    ([e.prepared for e in embedded], np.vstack([e.vectors for e in embedded]))
                )


def _pages_read(run: _Run, source: str, pages: int) -> None:
    """Count the pages a Ray task OCR'd (it reads a file's pages itself, one after another)."""
    for _ in range(pages):
        run.page(source, OCR_QUEUED)
        run.page(source, OCR_READ)


def _portable(settings: Settings) -> Settings:
    """The settings with the model cache as an absolute path (workers run elsewhere)."""
    cache = settings.model_cache_dir or settings.data_dir / "models"
    return settings.model_copy(update={"model_cache_dir": Path(os.path.abspath(cache))})


def _connect(address: str | None) -> bool:
    """Join the cluster (``None``: Ray's default, a new local one); True if this call did."""
    import ray

    if ray.is_initialized():
        return False  # the caller's own session (e.g. a test's local cluster)
    options: dict[str, Any] = {
        # Failures come back as values in the report; worker logs would garble the bar.
        "log_to_driver": False,
        "logging_level": logging.ERROR,
    }
    if address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"at {address!r}" if address else "(a local one)"
        raise ConfigError(f"cannot start or join the Ray cluster {where}: {exc}") from exc
    return True


class _quiet_ray_data:
    """Turn Ray Data's console progress bars and execution logs off for one run."""

    def __enter__(self) -> None:
        import ray.data

        context = ray.data.DataContext.get_current()
        self._saved = {
            name: getattr(context, name)
            for name in ("enable_progress_bars", "enable_operator_progress_bars")
        }
        for name in self._saved:
            setattr(context, name, False)
        self._logger = logging.getLogger("ray.data")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        import ray.data

        context = ray.data.DataContext.get_current()
        for name, value in self._saved.items():
            setattr(context, name, value)
        self._logger.setLevel(self._level)
