"""Copy knowledge bases between stores (embedded engine -> Qdrant server), resumably."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rag_pipeline.errors import ConfigError, NotFoundError
from rag_pipeline.store.base import DENSE, SPARSE, StoredPoint, VectorStore

BATCH = 256


@dataclass
class CollectionCopy:
    """One knowledge base's copy: points in the source, copied now, already there."""

    name: str
    model: str
    source_points: int = 0
    copied: int = 0
    already_there: int = 0
    target_points: int = 0

    @property
    def complete(self) -> bool:
        """Every source point is in the target, and the target holds no others."""
        seen = self.copied + self.already_there
        return seen == self.source_points == self.target_points


@dataclass
class MigrateReport:
    """What a migration copied; ``interrupted`` when the point limit stopped it."""

    collections: list[CollectionCopy] = field(default_factory=list)
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        """Whether every collection is fully in the target."""
        return not self.interrupted and all(c.complete for c in self.collections)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "complete": self.complete,
            "interrupted": self.interrupted,
            "collections": [{**asdict(c), "complete": c.complete} for c in self.collections],
        }


def migrate(
    source: VectorStore,
    target: VectorStore,
    *,
    names: Sequence[str] | None = None,
    limit: int | None = None,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> MigrateReport:
    """Copy collections (dense and sparse vectors, payloads, ids) from ``source`` to
    ``target`` without re-embedding.

    Points the target already holds (by id) are skipped, so a run that was stopped is
    finished by running it again; ``limit`` stops after copying that many points.
    """
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}")
    report = MigrateReport()
    budget = limit
    for name in list(names) if names is not None else source.list_collections():
        if budget == 0:
            report.interrupted = True
            break
        described = source.collection_model(name)
        if described is None:
            raise NotFoundError(f"knowledge {name!r} does not exist in the source")
        model, dimension = described
        # Refuses (ModelMismatchError) a target collection built with another model.
        target.ensure_collection(name, model=model, dimension=dimension)
        copy = CollectionCopy(name, model, source_points=source.count(name))
        report.collections.append(copy)
        pending: list[StoredPoint] = []
        for point_id, payload, vectors in source.scroll_payloads(name, None, with_vectors=True):
            vectors = vectors or {}
            pending.append(StoredPoint(point_id, vectors[DENSE], payload, vectors.get(SPARSE)))
            if len(pending) >= batch:
                budget = _copy(target, name, pending, copy, budget)
                pending = []
                if progress is not None:
                    progress(name, copy.copied + copy.already_there)
                if budget == 0:
                    break
        if pending and budget != 0:
            budget = _copy(target, name, pending, copy, budget)
        target.flush(name)
        copy.target_points = target.count(name)
        if budget == 0 and not copy.complete:
            report.interrupted = True
            break
    return report


def _copy(
    target: VectorStore,
    name: str,
    points: list[StoredPoint],
    copy: CollectionCopy,
    budget: int | None,
) -> int | None:
    """Write the points the target lacks (within ``budget``); return the budget left."""
    present = target.existing_ids(name, [p.id for p in points])
    missing = [p for p in points if p.id not in present]
    if budget is not None:
        missing = missing[:budget]
        budget -= len(missing)
    target.upsert(name, missing)
    copy.copied += len(missing)
    copy.already_there += len(present)
    return budget
