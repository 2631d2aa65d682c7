"""EdgeStore: a bounded set of open shards, reopened on demand, never closed while in use."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline.errors import StoreError
from rag_pipeline.store import EdgeStore

from .test_congruence import DIM, make_points


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_least_recently_used_shards_are_closed_and_reopened(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path, max_open=3)
    points = make_points(20)
    for i in range(8):
        store.ensure_collection(f"file-{i}", model="m", dimension=DIM)
        store.upsert(f"file-{i}", points[i * 2 : i * 2 + 2])
    assert store.open_collections == ["file-5", "file-6", "file-7"]
    # A closed collection opens again with everything it held.
    assert store.count("file-0") == 2
    hits = store.search("file-0", dense=np.asarray(points[0].vector), limit=1)
    assert hits[0].id == points[0].id
    assert store.open_collections == ["file-6", "file-7", "file-0"]
    store.close()
    # And from a new process's view, too.
    again = EdgeStore(tmp_path, max_open=2)
    assert sum(again.count(f"file-{i}") for i in range(8)) == 16
    assert len(again.open_collections) == 2
    again.close()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_open_shards_do_not_pile_up_threads(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path, max_open=4)
    before = _threads()
    points = make_points(60)
    for i in range(30):
        store.ensure_collection(f"file-{i}", model="m", dimension=DIM)
        store.upsert(f"file-{i}", points[i * 2 : i * 2 + 2])
    grown = _threads() - before
    store.close()
    # Each open shard runs a handful of engine threads; 30 open would be well over 100.
    assert grown <= 4 * 12, grown


def test_a_shard_in_use_is_not_closed_under_it(tmp_path: Path) -> None:
    # Searches on "kb" run while other collections are opened and written with room for
    # one open shard: each new one evicts the least recently used, which "kb" often is.
    # Were a shard closed while a search used it, searches would fail or come back empty.
    store = EdgeStore(tmp_path, max_open=1)
    points = make_points(40)
    store.ensure_collection("kb", model="m", dimension=DIM)
    store.upsert("kb", points)
    errors: list[BaseException] = []
    results: list[int] = []
    done = threading.Event()

    def search() -> None:
        try:
            while not done.is_set():
                results.append(len(store.search("kb", dense=points[3].vector, limit=10)))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def churn() -> None:
        try:
            for i in range(12):
                store.ensure_collection(f"other-{i}", model="m", dimension=DIM)
                store.upsert(f"other-{i}", points[:1])
        except BaseException as exc:
            errors.append(exc)

    searchers = [threading.Thread(target=search) for _ in range(3)]
    for thread in searchers:
        thread.start()
    churn()
    done.set()
    for thread in searchers:
        thread.join()
    assert not errors
    assert results and set(results) == {10}
    # The limit held: one shard open at the end, and every collection kept its points.
    assert len(store.open_collections) == 1
    assert [store.count(f"other-{i}") for i in range(12)] == [1] * 12
    assert len(list(store.scroll_payloads("kb", None, with_vectors=True))) == 40
    store.close()


def test_max_open_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="max_open"):
        EdgeStore(tmp_path, max_open=0)


def _big_points(n: int, dimension: int = 384, seed: int = 3) -> list:
    """Points past the engine's indexing threshold (10 MB of vectors: ~6,700 at 384 dims),
    every third without a sparse vector (a chunk of stopwords has none)."""
    from rag_pipeline.store import SparseVector, StoredPoint

    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dimension)).astype(np.float32)
    return [
        StoredPoint(
            id=f"00000000-0000-0000-0000-{i:012d}",
            vector=vectors[i],
            payload={"text": f"chunk {i}", "source": f"f{i % 50}.txt"},
            sparse=None if i % 3 == 0 else SparseVector([i % 97, 500], [1.0, 0.5]),
        )
        for i in range(n)
    ]


def test_points_are_unindexed_until_the_hnsw_index_is_built(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    store.ensure_collection("kb", model="m", dimension=384)
    points = _big_points(8_000)
    store.upsert("kb", points)
    # Nothing builds the graph by itself: every dense vector is searched exactly.
    assert store.unindexed("kb") == 8_000
    store.build_index("kb")
    assert store.unindexed("kb") == 0
    hits = store.search("kb", dense=np.asarray(points[4_321].vector), limit=1)
    assert hits[0].id == points[4_321].id
    # New points wait in an appendable segment until the next build.
    store.upsert("kb", _big_points(8_100, seed=4)[8_000:])
    assert store.unindexed("kb") == 100
    store.close()
    assert EdgeStore(tmp_path).unindexed("kb") == 100  # the engine's own record
