"""The multitenant layout: knowledge bases of one model share a collection, invisibly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.errors import StoreError
from rag_pipeline.store import EdgeStore, QdrantStore, StoredPoint, TenantStore, VectorStore
from rag_pipeline.store.tenants import TENANT, TENANT_POINT_ID, physical_name

from .test_congruence import DIM, ENGINES, make_points


@pytest.fixture(params=ENGINES)
def inner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    store: VectorStore = EdgeStore(tmp_path) if request.param == "edge" else QdrantStore(":memory:")
    yield store
    store.close()


def test_knowledge_bases_share_one_collection_per_model(inner: VectorStore) -> None:
    store = TenantStore(inner)
    points = make_points(30)
    for name in ("a", "b"):
        store.ensure_collection(name, model="m", dimension=DIM)
    store.ensure_collection("c", model="other", dimension=DIM + 4)
    # The same point ids in two knowledge bases: neither overwrites the other.
    store.upsert("a", points)
    store.upsert("b", points[:10])
    assert inner.list_collections() == sorted(
        [physical_name("m", DIM), physical_name("other", DIM + 4)]
    )
    assert store.list_collections() == ["a", "b", "c"]
    assert (store.count("a"), store.count("b"), store.count("c")) == (30, 10, 0)
    assert store.collection_model("c") == ("other", DIM + 4)
    hits = store.search("b", dense=np.asarray(points[25].vector), limit=20)
    assert {h.id for h in hits} == {p.id for p in points[:10]}
    # Callers see their own ids and payloads; the tenant fields are ours.
    assert all(TENANT not in h.metadata and TENANT_POINT_ID not in h.metadata for h in hits)
    rows = {i: p for i, p, _ in store.scroll_payloads("a", ["source"])}
    assert rows[points[3].id] == {"source": points[3].payload["source"]}
    assert store.existing_ids("b", [points[0].id, points[20].id]) == {points[0].id}
    # Deleting one knowledge base leaves the other's points in the shared collection.
    assert store.delete_collection("a") is True
    assert store.delete_collection("a") is False
    assert store.list_collections() == ["b", "c"]
    assert store.count("b") == 10
    assert inner.count(physical_name("m", DIM)) == 10 + 1  # b's points + b's description


def test_deletes_and_filters_stay_inside_the_tenant(inner: VectorStore) -> None:
    store = TenantStore(inner)
    points = make_points(40)
    for name in ("a", "b"):
        store.ensure_collection(name, model="m", dimension=DIM)
        store.upsert(name, points)
    store.delete_where("a", "source", "file1.txt")
    store.delete_points("a", [points[0].id])
    assert store.count("a") == 35 and store.count("b") == 40
    assert store.count("b", where={"source": "file1.txt"}) == 4
    with pytest.raises(StoreError, match="reserved"):
        store.count("b", where={TENANT: "a"})
    with pytest.raises(StoreError, match="does not exist"):
        store.upsert("ghost", points[:1])


def test_the_description_is_durable(tmp_path: Path) -> None:
    store = TenantStore(EdgeStore(tmp_path))
    store.ensure_collection("kb", model="m", dimension=DIM)
    store.upsert("kb", [StoredPoint("00000000-0000-0000-0000-000000000001", np.ones(DIM), {})])
    store.close()
    again = TenantStore(EdgeStore(tmp_path))
    info = again.collection_info("kb")
    assert info is not None and (info.model, info.dimension, info.points) == ("m", DIM, 1)
    assert info.extra["collection"] == physical_name("m", DIM)
    again.close()
