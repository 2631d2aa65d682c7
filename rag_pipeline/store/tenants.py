"""The multitenant layout: every knowledge base of one embedding model in one collection.

Qdrant recommends one collection with a tenant field over thousands of small collections
(each collection costs the engine segments, threads and memory of its own). ``TenantStore``
keeps the ``VectorStore`` protocol: callers still name a knowledge base as a collection,
and each call becomes one on the physical collection of its model, with the tenant
condition added.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.errors import StoreError
from rag_pipeline.store.base import (
    FILTERED_FIELDS,
    CollectionInfo,
    Fusion,
    SearchMode,
    SparseVector,
    StoredPoint,
    VectorStore,
    Where,
    check_model,
    validate_collection_name,
)
from rag_pipeline.types import Hit

TENANT = "tenant"
# The caller's point id, kept in the payload: stored ids are derived from tenant and id
# so that two knowledge bases may hold the same chunk id without overwriting each other.
TENANT_POINT_ID = "tenant_point_id"
PREFIX = "rag-tenants"
# Each knowledge base is described by one point of this tenant in its physical collection:
# the description travels with the data (copies, snapshots, `rag migrate`) and needs no
# second store. The name cannot be a knowledge id (those start with a letter or digit), so
# no search, scroll or count of a knowledge base ever sees these points.
META_TENANT = "_meta"
META_OF = "meta_of"
_IDS = uuid.UUID("8f0b6a52-3c1e-4a8e-9a55-2d0f3b7c9e14")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True, slots=True)
class _Tenant:
    """Where a knowledge base lives: physical collection, tenant value, model, version."""

    physical: str
    tenant: str
    model: str
    dimension: int
    version: int


def physical_name(model: str, dimension: int) -> str:
    """The physical collection that holds every knowledge base of one model."""
    slug = _UNSAFE.sub("_", model)[:100]
    digest = hashlib.sha1(f"{model}\0{dimension}".encode()).hexdigest()[:8]
    return f"{PREFIX}-{slug}-{dimension}-{digest}"


def stored_id(tenant: str, point_id: str) -> str:
    """The id a tenant's point is stored under."""
    return str(uuid.uuid5(_IDS, f"{tenant}\0{point_id}"))


def _meta_id(name: str) -> str:
    return stored_id(META_TENANT, name)


class TenantStore:
    """Knowledge bases as tenants of one collection per embedding model, over another store."""

    def __init__(self, inner: VectorStore) -> None:
        """``inner``: the store that holds the physical collections."""
        self.inner = inner

    # -- where a knowledge base lives ------------------------------------------------

    def _physicals(self) -> list[str]:
        return [c for c in self.inner.list_collections() if c.startswith(PREFIX + "-")]

    def _descriptions(self, where: Where | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        for physical in self._physicals():
            conditions = {**(where or {}), TENANT: META_TENANT}
            for _, payload, _ in self.inner.scroll_payloads(physical, None, where=conditions):
                yield physical, payload

    def _locate(self, name: str) -> _Tenant | None:
        validate_collection_name(name)
        found = [
            _Tenant(
                physical,
                str(payload["points_tenant"]),
                str(payload["model"]),
                int(payload["dimension"]),
                int(payload["version"]),
            )
            for physical, payload in self._descriptions({META_OF: name})
        ]
        # Two descriptions exist only between the steps of a switch (or after a crash in
        # it): the newer one is the switch's result.
        return max(found, key=lambda t: t.version) if found else None

    def _require(self, name: str) -> _Tenant:
        located = self._locate(name)
        if located is None:
            raise StoreError(f"collection {name!r} does not exist")
        return located

    def _describe(self, name: str, at: _Tenant) -> None:
        vector = np.zeros(at.dimension, dtype=np.float32)
        vector[0] = 1.0  # any unit vector: it is never searched (its tenant is never asked)
        payload = {
            TENANT: META_TENANT,
            META_OF: name,
            "points_tenant": at.tenant,
            "model": at.model,
            "dimension": at.dimension,
            "version": time.time_ns(),
        }
        self.inner.upsert(at.physical, [StoredPoint(_meta_id(name), vector, payload)])

    # -- the VectorStore protocol ----------------------------------------------------

    def collection_info(self, name: str) -> CollectionInfo | None:
        at = self._locate(name)
        if at is None:
            return None
        return CollectionInfo(
            name=name,
            model=at.model,
            dimension=at.dimension,
            points=self.inner.count(at.physical, where={TENANT: at.tenant}),
            extra={"layout": "tenants", "collection": at.physical},
        )

    def has_collection(self, name: str) -> bool:
        return self._locate(name) is not None

    def collection_model(self, name: str) -> tuple[str, int] | None:
        at = self._locate(name)
        return None if at is None else (at.model, at.dimension)

    def ensure_collection(self, name: str, *, model: str, dimension: int) -> None:
        at = self._locate(name)
        if at is not None:
            check_model(name, (at.model, at.dimension), model, dimension)
            return
        physical = physical_name(model, dimension)
        if not self.inner.has_collection(physical):
            self.inner.ensure_collection(physical, model=model, dimension=dimension)
            self.inner.ensure_payload_index(physical, TENANT, is_tenant=True)
            for key in (META_OF, *FILTERED_FIELDS):
                self.inner.ensure_payload_index(physical, key)
        self._describe(name, _Tenant(physical, name, model, dimension, 0))

    def list_collections(self) -> list[str]:
        return sorted({str(p[META_OF]) for _, p in self._descriptions()})

    def delete_collection(self, name: str) -> bool:
        at = self._locate(name)
        if at is None:
            return False
        # The description goes first: a crash after it leaves unreachable points, never a
        # knowledge base that lists but lost its points.
        for physical, _ in list(self._descriptions({META_OF: name})):
            self.inner.delete_points(physical, [_meta_id(name)])
        self.inner.delete_where(at.physical, TENANT, at.tenant)
        return True

    def switch_alias(self, alias: str, target: str) -> None:
        validate_collection_name(alias)
        new = self._require(target)
        old = self._locate(alias)
        # A newer description of ``alias`` is the switch: readers take the newest one.
        self._describe(alias, new)
        if target != alias:
            self.inner.delete_points(new.physical, [_meta_id(target)])
        if old is not None:
            if old.physical != new.physical:
                self.inner.delete_points(old.physical, [_meta_id(alias)])
            if (old.physical, old.tenant) != (new.physical, new.tenant):
                self.inner.delete_where(old.physical, TENANT, old.tenant)

    def upsert(self, name: str, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        at = self._require(name)
        self.inner.upsert(
            at.physical,
            [
                StoredPoint(
                    stored_id(at.tenant, p.id),
                    p.vector,
                    {**p.payload, TENANT: at.tenant, TENANT_POINT_ID: p.id},
                    p.sparse,
                )
                for p in points
            ],
        )

    def delete_points(self, name: str, ids: Sequence[str]) -> None:
        if ids:
            at = self._require(name)
            self.inner.delete_points(at.physical, [stored_id(at.tenant, i) for i in ids])

    def delete_where(self, name: str, key: str, value: str, *, where: Where | None = None) -> None:
        at = self._require(name)
        self.inner.delete_where(at.physical, key, value, where=self._where(at, where))

    def set_payload_where(
        self,
        name: str,
        payload: dict[str, Any],
        key: str,
        value: str,
        *,
        where: Where | None = None,
    ) -> None:
        at = self._require(name)
        self.inner.set_payload_where(at.physical, payload, key, value, where=self._where(at, where))

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        at = self._require(name)
        by_stored = {stored_id(at.tenant, i): i for i in ids}
        return {by_stored[s] for s in self.inner.existing_ids(at.physical, list(by_stored))}

    def scroll_payloads(
        self,
        name: str,
        fields: Sequence[str] | None = None,
        *,
        with_vectors: bool = False,
        where: Where | None = None,
    ) -> Iterator[tuple[str, dict[str, Any], Any]]:
        at = self._require(name)
        wanted = None if fields is None else [*fields, TENANT_POINT_ID]
        for _, payload, vectors in self.inner.scroll_payloads(
            at.physical, wanted, with_vectors=with_vectors, where=self._where(at, where)
        ):
            point_id = str(payload.pop(TENANT_POINT_ID))
            payload.pop(TENANT, None)
            yield point_id, payload, vectors

    def ensure_payload_index(self, name: str, key: str, *, is_tenant: bool = False) -> None:
        self.inner.ensure_payload_index(self._require(name).physical, key, is_tenant=is_tenant)

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
        weights: tuple[int, int] = (1, 1),
        sparse_floor: float = 0.0,
    ) -> list[Hit]:
        at = self._require(name)
        hits = self.inner.search(
            at.physical,
            dense=dense,
            sparse=sparse,
            limit=limit,
            mode=mode,
            where=self._where(at, where),
            candidates=candidates,
            fusion=fusion,
            weights=weights,
            sparse_floor=sparse_floor,
        )
        out = []
        for hit in hits:
            metadata = dict(hit.metadata)
            point_id = str(metadata.pop(TENANT_POINT_ID, hit.id))
            metadata.pop(TENANT, None)
            out.append(
                Hit(
                    id=point_id,
                    score=hit.score,
                    text=hit.text,
                    source=hit.source,
                    metadata=metadata,
                    similarity=hit.similarity,
                )
            )
        return out

    def value_counts(self, name: str, key: str, *, where: Where | None = None) -> dict[str, int]:
        at = self._require(name)
        return self.inner.value_counts(at.physical, key, where=self._where(at, where))

    def count(self, name: str, *, where: Where | None = None) -> int:
        at = self._require(name)
        return self.inner.count(at.physical, where=self._where(at, where))

    def sidecar(self, name: str, filename: str) -> Path | None:
        return None  # knowledge bases share a collection: no folder is one's own

    def flush(self, name: str) -> None:
        self.inner.flush(self._require(name).physical)

    def unindexed(self, name: str) -> int:
        return self.inner.unindexed(self._require(name).physical)

    def build_index(self, name: str) -> None:
        self.inner.build_index(self._require(name).physical)

    def close(self) -> None:
        self.inner.close()

    @staticmethod
    def _where(at: _Tenant, where: Where | None) -> dict[str, Any]:
        if where and (TENANT in where or TENANT_POINT_ID in where):
            raise StoreError(f"{TENANT!r} and {TENANT_POINT_ID!r} are reserved payload fields")
        return {**(where or {}), TENANT: at.tenant}
