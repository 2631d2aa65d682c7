"""Incremental indexing through the real loaders, chunker, model and embedded store."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_pipeline import ModelMismatchError, Pipeline, Settings
from rag_pipeline.embedding import LocalEmbedder
from tests.wrapped import Wrapped


class CountingEmbedder(Wrapped):
    """Wraps the real model and counts what it is asked to embed."""

    def __init__(self, inner: LocalEmbedder) -> None:
        super().__init__(inner)
        self.embedded = 0

    def embed_documents(self, texts):
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "refunds.md").write_text(
        "# Refunds\n\nRefunds go back to the original card within 7 business days.\n",
        encoding="utf-8",
    )
    (folder / "tents.txt").write_text("Dry a tent fully before you pack it away.\n")
    (folder / "sub" / "boots.html").write_text(
        "<html><body><h1>Boots</h1><p>Wax leather boots twice a year.</p></body></html>"
    )
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not really a pdf")
    (folder / ".hidden.txt").write_text("never indexed")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n")
    return folder


@pytest.fixture
def pipeline(tmp_path: Path, local_embedder: LocalEmbedder) -> Iterator[Pipeline]:
    settings = Settings(data_dir=tmp_path / "data")
    with Pipeline(settings, embedder=CountingEmbedder(local_embedder)) as p:
        yield p


def test_index_then_skip_then_update_then_delete(pipeline: Pipeline, docs: Path) -> None:
    counter = pipeline.embedder
    first = pipeline.index(docs, "kb")
    assert sorted(first.added) == ["refunds.md", "sub/boots.html", "tents.txt"]
    # A broken image is no longer skipped without a word: it is read (OCR) and fails.
    assert [e["path"] for e in first.errors] == ["broken.pdf", "photo.png"]
    assert "pdf" in first.errors[0]["error"].lower()
    assert first.errors[1]["error"].startswith("corrupt or unreadable image")
    assert not first.ok
    embedded_first = counter.embedded
    assert embedded_first == first.chunks_added > 0

    second = pipeline.index(docs, "kb")
    assert sorted(second.skipped) == ["refunds.md", "sub/boots.html", "tents.txt"]
    assert second.added == second.updated == second.deleted == []
    assert counter.embedded == embedded_first  # nothing re-embedded

    (docs / "tents.txt").write_text("Pitch the tent on level ground, away from rivers.\n")
    third = pipeline.index(docs, "kb")
    assert third.updated == ["tents.txt"]
    assert sorted(third.skipped) == ["refunds.md", "sub/boots.html"]
    assert counter.embedded == embedded_first + third.chunks_added
    texts = [h.text for h in pipeline.query("tent", "kb", top_k=10)]
    assert any("level ground" in t for t in texts)
    assert not any("Dry a tent" in t for t in texts)

    os.remove(docs / "sub" / "boots.html")
    fourth = pipeline.index(docs, "kb")
    assert fourth.deleted == ["sub/boots.html"]
    assert fourth.chunks_deleted >= 1
    sources = {h.source for h in pipeline.query("boots wax", "kb", top_k=10)}
    assert "sub/boots.html" not in sources

    report = fourth.to_dict()
    assert set(report) == {
        "knowledge_id",
        "files",
        "chunks",
        "pages_ocr",
        "errors",
        "interrupted",
        "seconds",
    }
    assert report["pages_ocr"] == 0
    assert report["files"] == {"added": 0, "updated": 0, "skipped": 2, "deleted": 1, "failed": 2}


def test_a_failed_file_does_not_damage_what_is_stored(pipeline: Pipeline, docs: Path) -> None:
    pipeline.index(docs, "kb")
    before = pipeline.store.count("kb")
    (docs / "refunds.md").write_bytes(b"")  # now empty: a load error
    report = pipeline.index(docs, "kb")
    assert {e["path"]: e["error"] for e in report.errors}["refunds.md"] == "empty file"
    # The old chunks of the file that failed are kept, not deleted.
    assert pipeline.store.count("kb") == before
    assert pipeline.query("refund card", "kb", top_k=1)[0].source == "refunds.md"


def test_interrupted_file_is_redone(pipeline: Pipeline, docs: Path) -> None:
    (docs / "long.txt").write_text("Lanterns need fresh batteries each season. " * 200)
    pipeline.index(docs, "kb")
    before = pipeline.store.count("kb")
    hits = [h for h in pipeline.query("lantern batteries", "kb", top_k=5) if h.source == "long.txt"]
    pipeline.store.delete_points("kb", [hits[0].id])  # as if a crash lost a chunk
    report = pipeline.index(docs, "kb")
    assert report.updated == ["long.txt"]
    assert pipeline.store.count("kb") == before


def test_other_model_is_refused(pipeline: Pipeline, docs: Path, tmp_path: Path) -> None:
    pipeline.index(docs / "tents.txt", "kb")

    class OtherModel(CountingEmbedder):
        @property
        def model_name(self) -> str:
            return "other-model"

    other = Pipeline(
        pipeline.settings, embedder=OtherModel(pipeline.embedder.inner), store=pipeline.store
    )
    with pytest.raises(ModelMismatchError, match="new knowledge id"):
        other.index(docs, "kb")
    with pytest.raises(ModelMismatchError):
        other.query("tent", "kb")


def test_single_file_and_separate_roots_do_not_prune_each_other(
    pipeline: Pipeline, docs: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(docs / "tents.txt", other / "camping.txt")
    pipeline.index(docs, "kb")
    report = pipeline.index(other, "kb")
    assert report.added == ["camping.txt"] and report.deleted == []
    assert {h.source for h in pipeline.query("tent", "kb", top_k=10)} >= {
        "tents.txt",
        "camping.txt",
    }


def test_payload_numbers_chunks_and_maps_sources(pipeline: Pipeline, docs: Path) -> None:
    pipeline.index(docs, "kb")
    payload = pipeline.payload("how fast are refunds?", "kb", model="llama3.1", top_k=3)
    body = payload.to_dict()
    assert body["model"] == "llama3.1"
    assert body["messages"][-1]["role"] == "user"
    content = body["messages"][-1]["content"]
    assert content.endswith("how fast are refunds?")
    assert [s["id"] for s in body["sources"]] == list(range(1, len(body["sources"]) + 1))
    assert body["sources"][0]["file"] == "refunds.md"
    for source in body["sources"]:
        assert f'<source id="{source["id"]}"' in content
