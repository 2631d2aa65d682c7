"""`rag migrate`: collections copied to another store as they are, resumable after a stop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag_pipeline.cli import app
from rag_pipeline.errors import ModelMismatchError
from rag_pipeline.store import EdgeStore, QdrantStore, TenantStore, VectorStore
from rag_pipeline.store.migrate import migrate

from .test_congruence import DIM, LAYOUTS, make_points


def fill(store: VectorStore) -> None:
    store.ensure_collection("kb", model="m", dimension=DIM)
    store.upsert("kb", make_points(450))
    store.ensure_collection("notes", model="other", dimension=DIM)
    store.upsert("notes", make_points(30, seed=3))


def assert_same_points(a: VectorStore, b: VectorStore) -> None:
    assert a.list_collections() == b.list_collections()
    for name in a.list_collections():
        assert a.collection_model(name) == b.collection_model(name)
        left = {i: (p, v) for i, p, v in a.scroll_payloads(name, with_vectors=True)}
        right = {i: (p, v) for i, p, v in b.scroll_payloads(name, with_vectors=True)}
        assert left.keys() == right.keys()
        for point_id, (payload, vectors) in left.items():
            other_payload, other = right[point_id]
            assert payload == other_payload
            assert np.allclose(vectors["dense"], other["dense"], rtol=0, atol=1e-6)
            assert vectors["sparse"] == other["sparse"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_interrupted_migration_resumes_and_ends_identical(tmp_path: Path, layout: str) -> None:
    source = EdgeStore(tmp_path / "edge")
    fill(source)
    target_path = str(tmp_path / "server")
    target: VectorStore = QdrantStore(path=target_path)
    if layout == "tenants":
        target = TenantStore(target)
    first = migrate(source, target, limit=200, batch=128)
    assert first.interrupted and not first.complete
    assert [(c.name, c.copied) for c in first.collections] == [("kb", 200)]
    assert target.count("kb") == 200
    # Stopped here; a new process takes over the same target.
    target.close()
    target = QdrantStore(path=target_path)
    if layout == "tenants":
        target = TenantStore(target)
    second = migrate(source, target, limit=300, batch=128)
    kb, notes = second.collections
    assert (kb.copied, kb.already_there, kb.complete) == (250, 200, True)
    assert (notes.copied, notes.complete) == (30, True)
    assert second.complete
    assert_same_points(source, target)
    # Nothing is left to copy: a third run writes nothing.
    third = migrate(source, target)
    assert [c.copied for c in third.collections] == [0, 0]
    assert third.complete
    source.close()
    target.close()


def test_a_target_with_another_model_is_refused(tmp_path: Path) -> None:
    source = EdgeStore(tmp_path)
    fill(source)
    target = QdrantStore(":memory:")
    target.ensure_collection("kb", model="not-m", dimension=DIM)
    with pytest.raises(ModelMismatchError):
        migrate(source, target, names=["kb"])
    source.close()


def test_rag_migrate_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    source = EdgeStore(tmp_path / "data" / "qdrant-edge")
    fill(source)
    source.close()
    target = str(tmp_path / "server")
    runner = CliRunner()
    stopped = runner.invoke(app, ["migrate", "--to", target, "--limit", "100", "--json"])
    assert stopped.exit_code == 130, stopped.output
    assert json.loads(stopped.stdout)["interrupted"] is True
    done = runner.invoke(app, ["migrate", "--to", target, "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["complete"] is True
    assert [(c["name"], c["already_there"], c["target_points"]) for c in report["collections"]] == [
        ("kb", 100, 450),
        ("notes", 0, 30),
    ]
    a, b = EdgeStore(tmp_path / "data" / "qdrant-edge"), QdrantStore(path=target)
    assert_same_points(a, b)
    a.close()
    b.close()
