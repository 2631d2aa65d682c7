"""Safe re-embedding: build a knowledge base anew beside the old one, then switch an alias."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.errors import NotFoundError, StoreError
from rag_pipeline.store.base import (
    DENSE,
    SPARSE,
    StoredPoint,
    VectorStore,
    validate_collection_name,
)

BATCH = 256


@dataclass
class ReindexReport:
    """What a reindex did: the models before and after, and the points re-embedded."""

    knowledge_id: str
    old_model: str
    new_model: str
    dimension: int
    points: int
    built: str
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


def reindex(
    store: VectorStore,
    knowledge_id: str,
    embedder: Embedder,
    *,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> ReindexReport:
    """Re-embed a knowledge base's stored chunk texts with ``embedder``.

    The new vectors go to a new collection beside the old one, with the same point ids,
    payloads and sparse vectors; the knowledge id is switched to it only once every point
    is written. Until then (and if anything fails) the old collection serves, untouched.
    Writes made to the old collection while this runs are not carried over.
    """
    if batch < 1:
        raise StoreError(f"batch must be >= 1, got {batch}")
    validate_collection_name(knowledge_id)
    described = store.collection_model(knowledge_id)
    if described is None:
        raise NotFoundError(f"knowledge {knowledge_id!r} does not exist")
    started = time.perf_counter()
    built = validate_collection_name(f"{knowledge_id[:230]}.reindex-{uuid.uuid4().hex[:12]}")
    dimension = embedder.dimension
    store.ensure_collection(built, model=embedder.model_name, dimension=dimension)
    written = 0
    try:
        expected = store.count(knowledge_id)
        for points in _batches(store, knowledge_id, batch):
            vectors = embedder.embed_documents([str(p.payload.get("text", "")) for p in points])
            store.upsert(
                built,
                [StoredPoint(p.id, vectors[i], p.payload, p.sparse) for i, p in enumerate(points)],
            )
            written += len(points)
            if progress is not None:
                progress(written)
        store.flush(built)
        found = store.count(built)
        if found != expected or written != expected:
            raise StoreError(
                f"reindexing {knowledge_id!r} wrote {found} of {expected} points "
                "(was it written to meanwhile?); the old collection still serves"
            )
    except BaseException:
        # The half-built collection goes; a failure deleting it must not hide the cause.
        with contextlib.suppress(Exception):
            store.delete_collection(built)
        raise
    store.switch_alias(knowledge_id, built)
    return ReindexReport(
        knowledge_id=knowledge_id,
        old_model=described[0],
        new_model=embedder.model_name,
        dimension=dimension,
        points=written,
        built=built,
        seconds=time.perf_counter() - started,
    )


def _batches(store: VectorStore, name: str, size: int) -> Iterator[list[StoredPoint]]:
    """The collection's points (old dense vector included) in lists of ``size``."""
    pending: list[StoredPoint] = []
    for point_id, payload, vectors in store.scroll_payloads(name, None, with_vectors=True):
        vectors = vectors or {}
        pending.append(StoredPoint(point_id, vectors.get(DENSE), payload, vectors.get(SPARSE)))
        if len(pending) >= size:
            yield pending
            pending = []
    if pending:
        yield pending
