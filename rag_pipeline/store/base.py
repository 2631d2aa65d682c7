"""The store interface every Qdrant backend implements."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from rag_pipeline.errors import ConfigError, ModelMismatchError
from rag_pipeline.types import Hit

DENSE = "dense"
SPARSE = "sparse"
SearchMode = Literal["dense", "sparse", "hybrid"]
Fusion = Literal["dbsf", "rrf"]
# Payload conditions, all of which must hold: a string must equal, a list is "any of".
Where = Mapping[str, str | Sequence[str]]
# Reciprocal-rank fusion constant (the usual 60); only used with fusion="rrf".
RRF_K = 60

_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}$")


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Term ids and weights of a sparse (BM25-style) vector."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """What a collection was built with and how many points it holds."""

    name: str
    model: str
    dimension: int
    points: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """A point to write: id, dense vector, optional sparse vector, payload."""

    id: str
    vector: np.ndarray
    payload: dict[str, Any]
    sparse: SparseVector | None = None


def validate_collection_name(name: str) -> str:
    """Return ``name`` if it is a safe collection name, else raise ConfigError."""
    if not _COLLECTION_NAME.match(name) or ".." in name:
        raise ConfigError(
            f"invalid knowledge id {name!r}: use letters, digits, '-', '_' or '.' (max 255)"
        )
    return name


def check_model(name: str, stored: tuple[str, int], model: str, dimension: int) -> None:
    """Refuse to mix embedding models in one collection (``stored``: its model, dimension)."""
    stored_model, stored_dimension = stored
    if stored_model != model or stored_dimension != dimension:
        raise ModelMismatchError(
            f"collection {name!r} was built with model {stored_model!r} "
            f"({stored_dimension} dimensions), not {model!r} ({dimension} dimensions). "
            f"Query it with --model {stored_model!r}, or index into a new knowledge id "
            f"(the existing one is kept) or delete it first with `rag delete {name}`."
        )


@runtime_checkable
class VectorStore(Protocol):
    """Collections of chunks with dense and sparse vectors, keyed by knowledge id."""

    def collection_info(self, name: str) -> CollectionInfo | None:
        """Return the collection's model, dimension and size, or None if it does not exist."""
        ...

    def has_collection(self, name: str) -> bool:
        """Whether the collection exists (no count: cheap)."""
        ...

    def collection_model(self, name: str) -> tuple[str, int] | None:
        """Return the collection's (model, dimension) without counting, or None if absent."""
        ...

    def ensure_collection(self, name: str, *, model: str, dimension: int) -> None:
        """Create the collection, or check that it was built with the same model."""
        ...

    def list_collections(self) -> list[str]:
        """Return the names of all collections."""
        ...

    def delete_collection(self, name: str) -> bool:
        """Drop a collection; return False if it did not exist."""
        ...

    def upsert(self, name: str, points: Sequence[StoredPoint]) -> None:
        """Insert or replace points."""
        ...

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        """Delete points by id."""
        ...

    def delete_where(self, name: str, key: str, value: str) -> None:
        """Delete every point whose payload ``key`` equals ``value``."""
        ...

    def scroll_payloads(
        self,
        name: str,
        fields: Sequence[str] | None = None,
        *,
        with_vectors: bool = False,
        where: Where | None = None,
    ) -> Iterator[tuple[str, dict[str, Any], Any]]:
        """Yield (id, payload, vectors-or-None) for every point (that ``where`` matches)."""
        ...

    def ensure_payload_index(self, name: str, key: str) -> None:
        """Index a keyword payload field, so filters on it do not scan the collection."""
        ...

    def search(
        self,
        name: str,
        *,
        dense: np.ndarray | None = None,
        sparse: SparseVector | None = None,
        limit: int = 10,
        mode: SearchMode = "dense",
        where: Where | None = None,
        candidates: int = 100,
        fusion: Fusion = "dbsf",
    ) -> list[Hit]:
        """Return the best points for a query, fused in the engine for ``hybrid``.

        ``Hit.similarity`` (dense cosine) is filled wherever a dense query is given, in the
        same round trip.
        """
        ...

    def count(self, name: str) -> int:
        """Return the number of points in a collection."""
        ...

    def flush(self, name: str) -> None:
        """Persist a collection's segments (writes are already durable in its WAL)."""
        ...

    def close(self) -> None:
        """Release files and connections."""
        ...


def hit_from_payload(
    point_id: str, score: float, payload: dict[str, Any], similarity: float | None = None
) -> Hit:
    """Build a Hit from a stored payload."""
    payload = dict(payload)
    text = payload.pop("text", "")
    source = payload.pop("source", "")
    return Hit(
        id=str(point_id),
        score=float(score),
        text=text,
        source=source,
        metadata=payload,
        similarity=similarity,
    )


def cosines(stored: Sequence[Any], query: np.ndarray) -> list[float | None]:
    """Cosine similarity of each stored dense vector (None where absent) to a query vector."""
    present = [i for i, v in enumerate(stored) if v is not None]
    out: list[float | None] = [None] * len(stored)
    if not present:
        return out
    # One matrix product for all hits: per-hit numpy calls cost 3.6 ms of an 11 ms query.
    matrix = np.asarray([stored[i] for i in present], dtype=np.float32)
    q = np.asarray(query, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(q))
    values = (matrix @ q) / np.where(norms == 0, 1.0, norms)
    for i, value in zip(present, values.tolist(), strict=True):
        out[i] = value
    return out
