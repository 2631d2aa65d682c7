"""The embedded engine (qdrant-edge) and qdrant-client must answer the same, in both layouts
(a collection per knowledge base, and knowledge bases as tenants of one collection)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.errors import ConfigError, ModelMismatchError, StoreError
from rag_pipeline.store import (
    EdgeStore,
    QdrantStore,
    SparseVector,
    StoredPoint,
    TenantStore,
    VectorStore,
)

DIM = 16


def make_points(n: int = 200, seed: int = 7) -> list[StoredPoint]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    points = []
    for i in range(n):
        terms = sorted({int(t) for t in rng.choice(500, size=6, replace=False)})
        weights = [float(w) for w in rng.uniform(0.5, 3.0, size=len(terms))]
        points.append(
            StoredPoint(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"p{i}")),
                vector=vectors[i],
                payload={"text": f"chunk {i}", "source": f"file{i % 10}.txt", "chunk_index": i},
                sparse=SparseVector(terms, weights),
            )
        )
    return points


ENGINES = ["edge", "qdrant-client"]
LAYOUTS = ["collections", "tenants"]


def open_store(engine: str, layout: str, path: Path) -> VectorStore:
    """A store of one engine in one layout."""
    inner: VectorStore = EdgeStore(path) if engine == "edge" else QdrantStore(":memory:")
    return TenantStore(inner) if layout == "tenants" else inner


@pytest.fixture(params=[(e, lay) for lay in LAYOUTS for e in ENGINES], ids="-".join)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s = open_store(*request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture(params=LAYOUTS)
def both(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[VectorStore, VectorStore]]:
    edge = open_store("edge", request.param, tmp_path)
    client = open_store("qdrant-client", request.param, tmp_path)
    points = make_points()
    for s in (edge, client):
        s.ensure_collection("kb", model="m", dimension=DIM)
        s.upsert("kb", points)
    yield edge, client
    edge.close()
    client.close()


def test_dense_results_are_identical(both: tuple[VectorStore, VectorStore]) -> None:
    edge, client = both
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = rng.normal(size=DIM).astype(np.float32)
        a = edge.search("kb", dense=q, limit=10)
        b = client.search("kb", dense=q, limit=10)
        assert [h.id for h in a] == [h.id for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)
        assert [h.text for h in a] == [h.text for h in b]


def test_sparse_results_agree(both: tuple[VectorStore, VectorStore]) -> None:
    edge, client = both
    q = SparseVector([1, 2, 3, 50, 100, 250, 499], [1.0] * 7)
    a = edge.search("kb", sparse=q, limit=10, mode="sparse")
    b = client.search("kb", sparse=q, limit=10, mode="sparse")
    assert a, "the sparse query should match something"
    assert np.allclose(sorted(h.score for h in a), sorted(h.score for h in b), atol=1e-3)
    # Equal scores may come back in either order; the set with its scores must agree.
    assert {(h.id, round(h.score, 3)) for h in a} == {(h.id, round(h.score, 3)) for h in b}


def test_hybrid_fuses_both_in_the_engine(both: tuple[VectorStore, VectorStore]) -> None:
    edge, client = both
    points = make_points()
    target = points[42]
    for s in (edge, client):
        hits = s.search("kb", dense=target.vector, sparse=target.sparse, limit=5, mode="hybrid")
        assert hits[0].id == target.id
        assert len(hits) == 5


def test_weighted_hybrid_agrees_across_engines_and_changes_the_fusion(
    both: tuple[VectorStore, VectorStore],
) -> None:
    points = make_points()
    rng = np.random.default_rng(3)
    dense = rng.normal(size=DIM).astype(np.float32)
    sparse = points[5].sparse  # the sparse half prefers point 5, the dense half others
    assert sparse is not None
    runs = {}
    for weights in ((1, 1), (2, 1), (1, 2)):
        ranked = [
            [
                h.id
                for h in s.search(
                    "kb", dense=dense, sparse=sparse, limit=10, mode="hybrid", weights=weights
                )
            ]
            for s in both
        ]
        assert ranked[0] == ranked[1], weights
        runs[weights] = ranked[0]
    assert runs[(2, 1)] != runs[(1, 1)] != runs[(1, 2)]
    # DBSF sums each list's normalised scores: counting a list twice is weighting it 2.
    assert runs[(1, 2)].index(points[5].id) <= runs[(1, 1)].index(points[5].id)
    with pytest.raises(ConfigError, match="whole numbers from 1 to 3"):
        both[0].search("kb", dense=dense, sparse=sparse, mode="hybrid", weights=(0, 1))


def test_sparse_floor_leaves_weak_sparse_hits_out_of_the_fusion(
    both: tuple[VectorStore, VectorStore],
) -> None:
    points = make_points()
    rng = np.random.default_rng(4)
    dense = rng.normal(size=DIM).astype(np.float32)
    sparse = points[5].sparse
    assert sparse is not None
    dense_ids = {h.id for h in both[0].search("kb", dense=dense, limit=100)}
    scores = {h.id: h.score for h in both[0].search("kb", sparse=sparse, limit=100, mode="sparse")}
    floor = sorted(scores.values())[-3]  # the three best sparse hits reach it
    for s in both:
        runs = {
            f: {
                h.id
                for h in s.search(
                    "kb", dense=dense, sparse=sparse, limit=200, mode="hybrid", sparse_floor=f
                )
            }
            for f in (0.0, floor, 1e9)
        }
        strong = {pid for pid, score in scores.items() if score >= floor}
        assert runs[0.0] == dense_ids | set(scores)
        assert runs[floor] == dense_ids | strong
        assert runs[1e9] == dense_ids  # nothing passes: the dense list alone


def test_set_payload_where_agrees(both: tuple[VectorStore, VectorStore]) -> None:
    """Fields set on the points a filter picks, the rest of their payload kept; no other
    point (nor another knowledge base, as a tenant) touched."""
    edge, client = both
    for s in (edge, client):
        s.ensure_collection("other", model="m", dimension=DIM)
        s.upsert("other", make_points(20))
        s.set_payload_where("kb", {"file_stat": "1:2:3:4"}, "source", "file3.txt")
        s.set_payload_where(
            "kb", {"file_stat": "never"}, "source", "file4.txt", where={"text": "no such"}
        )
    for s in (edge, client):
        rows = {i: p for i, p, _ in s.scroll_payloads("kb", None)}
        marked = {i for i, p in rows.items() if "file_stat" in p}
        assert marked == {i for i, p in rows.items() if p["source"] == "file3.txt"}
        assert len(marked) == 20
        assert {rows[i]["file_stat"] for i in marked} == {"1:2:3:4"}
        assert all(rows[i]["text"].startswith("chunk ") for i in marked)  # others kept
        others = [p for _, p, _ in s.scroll_payloads("other", None)]
        assert len(others) == 20 and not any("file_stat" in p for p in others)


def test_filters_and_deletes_agree(both: tuple[VectorStore, VectorStore]) -> None:
    edge, client = both
    q = make_points()[3].vector
    a = edge.search("kb", dense=q, limit=5, where={"source": "file3.txt"})
    b = client.search("kb", dense=q, limit=5, where={"source": "file3.txt"})
    assert [h.id for h in a] == [h.id for h in b]
    assert {h.source for h in a} == {"file3.txt"}
    for s in (edge, client):
        s.delete_where("kb", "source", "file3.txt")
        assert s.count("kb") == 180
        s.delete_points("kb", [make_points()[0].id])
        assert s.count("kb") == 179
    ids_a = sorted(i for i, _, _ in edge.scroll_payloads("kb", ["source"]))
    ids_b = sorted(i for i, _, _ in client.scroll_payloads("kb", ["source"]))
    assert ids_a == ids_b and len(ids_a) == 179
    # A list is "any of", on an indexed field as on a plain one.
    wanted = {"where": {"source": ["file1.txt", "file4.txt", "nope"]}}
    edge.ensure_payload_index("kb", "source")
    client.ensure_payload_index("kb", "source")
    some_a = sorted((i, p["source"]) for i, p, _ in edge.scroll_payloads("kb", None, **wanted))
    some_b = sorted((i, p["source"]) for i, p, _ in client.scroll_payloads("kb", None, **wanted))
    assert some_a == some_b
    assert {s for _, s in some_a} == {"file1.txt", "file4.txt"}
    hits = edge.search("kb", dense=q, limit=100, **wanted)
    assert {h.source for h in hits} == {"file1.txt", "file4.txt"}


def test_value_counts_agree_and_honour_filters(both: tuple[VectorStore, VectorStore]) -> None:
    counts = [s.value_counts("kb", "source") for s in both]
    assert counts[0] == counts[1] == {f"file{i}.txt": 20 for i in range(10)}
    filtered = [
        s.value_counts("kb", "source", where={"source": ["file1.txt", "file2.txt"]}) for s in both
    ]
    assert filtered[0] == filtered[1] == {"file1.txt": 20, "file2.txt": 20}
    assert both[0].value_counts("kb", "script") == {}  # a field no point has


def test_scroll_returns_vectors(store: VectorStore) -> None:
    store.ensure_collection("kb", model="m", dimension=DIM)
    points = make_points(3)
    store.upsert("kb", points)
    rows = {i: (p, v) for i, p, v in store.scroll_payloads("kb", with_vectors=True)}
    first = rows[points[0].id]
    assert first[0]["text"] == "chunk 0"
    assert np.allclose(first[1]["dense"], points[0].vector / np.linalg.norm(points[0].vector))
    assert first[1]["sparse"].indices == points[0].sparse.indices


def test_a_scroll_without_fields_gives_every_id_and_no_payload(store: VectorStore) -> None:
    store.ensure_collection("kb", model="m", dimension=DIM)
    points = make_points(30)
    store.upsert("kb", points)
    rows = list(store.scroll_payloads("kb", []))
    assert sorted(i for i, _, _ in rows) == sorted(p.id for p in points)
    assert all(payload == {} and vectors is None for _, payload, vectors in rows)


def test_a_sidecar_lives_and_goes_with_an_edge_collection(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    assert store.sidecar("kb", "notes.db") is None  # no collection, no place
    store.ensure_collection("kb", model="m", dimension=DIM)
    path = store.sidecar("kb", "notes.db")
    assert path is not None and path.parent.is_dir()
    path.write_text("ours")
    for reserved in ("collection.json", "shard", "../x"):
        with pytest.raises(StoreError):
            store.sidecar("kb", reserved)
    # A rebuilt collection swapped in by alias has its own place.
    store.ensure_collection("kb-v2", model="m", dimension=DIM)
    store.switch_alias("kb", "kb-v2")
    assert store.sidecar("kb", "notes.db") != path
    assert not path.exists()  # went with the collection the alias shadowed
    store.close()
    # Knowledge bases that share one collection, and a server's, have none.
    shared = TenantStore(EdgeStore(tmp_path / "t"))
    shared.ensure_collection("kb", model="m", dimension=DIM)
    assert shared.sidecar("kb", "notes.db") is None
    remote = QdrantStore(":memory:")
    remote.ensure_collection("kb", model="m", dimension=DIM)
    assert remote.sidecar("kb", "notes.db") is None
    shared.close()
    remote.close()


def test_model_identity_is_enforced(store: VectorStore) -> None:
    store.ensure_collection("kb", model="all-MiniLM-L6-v2", dimension=DIM)
    store.ensure_collection("kb", model="all-MiniLM-L6-v2", dimension=DIM)
    assert store.collection_model("kb") == ("all-MiniLM-L6-v2", DIM)
    assert store.collection_model("absent") is None
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2") as err:
        store.ensure_collection("kb", model="nomic-embed-text", dimension=768)
    assert "new knowledge id" in str(err.value)


def test_collections_list_and_delete(store: VectorStore) -> None:
    assert store.collection_info("nope") is None
    store.ensure_collection("a", model="m", dimension=DIM)
    store.ensure_collection("file-123", model="m", dimension=DIM)
    assert store.list_collections() == ["a", "file-123"]
    assert store.delete_collection("a") is True
    assert store.delete_collection("a") is False
    assert store.list_collections() == ["file-123"]


def test_bad_names_are_refused(store: VectorStore) -> None:
    for name in ("../etc", "a/b", "", "x y"):
        with pytest.raises(ConfigError):
            store.ensure_collection(name, model="m", dimension=DIM)


def test_edge_store_persists_across_reopen(tmp_path: Path) -> None:
    points = make_points(20)
    store = EdgeStore(tmp_path)
    store.ensure_collection("kb", model="m", dimension=DIM)
    store.upsert("kb", points)
    store.close()
    reopened = EdgeStore(tmp_path)
    assert reopened.count("kb") == 20
    assert reopened.search("kb", dense=points[5].vector, limit=1)[0].id == points[5].id
    reopened.close()


def test_missing_collection_is_a_store_error(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        store.count("ghost")


@pytest.mark.parametrize("fusion", ["dbsf", "rrf"])
def test_hybrid_fusions_agree_across_engines(
    both: tuple[VectorStore, VectorStore], fusion: str
) -> None:
    edge, client = both
    rng = np.random.default_rng(3)
    points = make_points()
    agree = 0
    for i in range(10):
        q = rng.normal(size=DIM).astype(np.float32)
        sparse = points[i * 7].sparse
        a = edge.search("kb", dense=q, sparse=sparse, limit=5, mode="hybrid", fusion=fusion)
        b = client.search("kb", dense=q, sparse=sparse, limit=5, mode="hybrid", fusion=fusion)
        assert len(a) == len(b) == 5
        agree += a[0].id == b[0].id
    # The engines may break exact ties differently; the winners must still agree.
    assert agree >= 9
