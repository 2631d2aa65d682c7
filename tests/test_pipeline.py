"""Pipeline: lazy parts built once, even under concurrent first use."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from rag_pipeline import Settings
from rag_pipeline.embedding import Embedder
from rag_pipeline.embedding.e5_onnx import E5_ONNX_MODEL
from rag_pipeline.embedding.registry import make_embedder
from rag_pipeline.pipeline import Pipeline
from tests.wrapped import Wrapped

from .conftest import FakeEmbedServer


class RecordingEmbedder(Wrapped):
    """Wraps a real embedder and records the queries it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner)
        self.queries: list[str] = []

    def embed_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return self.inner.embed_query(text)


def embedders_seen_by_racing_threads(pipeline: Pipeline, count: int = 8) -> list[Embedder]:
    """Touch ``pipeline.embedder`` from ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)
    seen: list[Embedder] = []

    def touch() -> None:
        barrier.wait()
        seen.append(pipeline.embedder)

    threads = [threading.Thread(target=touch) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seen


def test_concurrent_first_use_builds_one_embedder(
    tmp_path: Path, embed_server: FakeEmbedServer
) -> None:
    # An HTTP embedder takes milliseconds to build (its client): a wide enough window for
    # racing threads to each build one if the first use were not guarded.
    settings = Settings(data_dir=tmp_path, embedder="ollama", embedding_base_url=embed_server.url)
    for _ in range(3):
        with Pipeline(settings) as pipeline:
            seen = embedders_seen_by_racing_threads(pipeline)
            assert len(seen) == 8
            assert all(e is pipeline.embedder for e in seen)
    assert embed_server.requests == []  # building an embedder sends nothing


def test_warm_up_embeds_with_an_in_process_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    recording = RecordingEmbedder(make_embedder(settings))
    with Pipeline(settings, embedder=recording) as pipeline:
        assert recording.queries == []
        pipeline.warm_up()
        assert len(recording.queries) == 1


def test_warm_up_leaves_remote_embedders_alone(
    tmp_path: Path, embed_server: FakeEmbedServer
) -> None:
    settings = Settings(data_dir=tmp_path, embedder="ollama", embedding_base_url=embed_server.url)
    with Pipeline(settings) as pipeline:
        pipeline.warm_up()
        assert embed_server.requests == []
        # The server is reachable and counts requests: a real embedding call shows up.
        pipeline.embedder.embed_query("anything")
        assert [r["path"] for r in embed_server.requests] == ["/api/embed"]


def test_index_documents_indexes_extracted_text_once(tmp_path: Path) -> None:
    from rag_pipeline.types import Document

    def doc(source: str, text: str) -> tuple[str, list[Document]]:
        meta = {"source": source, "title": source, "content_type": "text/plain"}
        return source, [Document(text=text, metadata=meta)]

    items = [
        doc("otters.txt", "Sea otters hold hands while they sleep so they do not drift apart."),
        doc("kilns.txt", "A pottery kiln reaches about 1200 degrees Celsius for stoneware."),
    ]
    with Pipeline(Settings(data_dir=tmp_path)) as pipeline:
        first = pipeline.index(items, "notes", extra_payload={"batch": "one"})
        assert sorted(first.added) == ["kilns.txt", "otters.txt"]
        hits = pipeline.query("how hot does a kiln get?", "notes", top_k=1)
        assert hits[0].source == "kilns.txt"
        assert hits[0].metadata["batch"] == "one"
        again = pipeline.index(items, "notes")
        assert sorted(again.skipped) == ["kilns.txt", "otters.txt"]
        assert again.chunks_added == 0


def test_int8_precision_is_its_own_model_identity(tmp_path: Path) -> None:
    from rag_pipeline import ModelMismatchError
    from rag_pipeline.embedding.onnx import OnnxEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tents.txt").write_text("Dry a tent fully before you pack it away.\n")
    int8 = Settings(data_dir=tmp_path / "data", embedding_precision="int8")
    with Pipeline(int8) as pipeline:
        assert isinstance(pipeline.embedder, OnnxEmbedder)
        assert pipeline.embedder.model_name == "all-MiniLM-L6-v2@int8"
        pipeline.index(docs, "kb")
        assert pipeline.store.collection_model("kb") == ("all-MiniLM-L6-v2@int8", 384)
        assert pipeline.query("tent", "kb")[0].source == "tents.txt"
    with (
        Pipeline(Settings(data_dir=tmp_path / "data")) as fp32,
        pytest.raises(ModelMismatchError, match="@int8"),
    ):
        fp32.query("tent", "kb")


def test_parts_given_to_the_pipeline_are_the_ones_it_uses(tmp_path, local_embedder) -> None:
    from rag_pipeline import Chunker, PromptBuilder, Retriever
    from rag_pipeline.errors import ConfigError

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(" ".join(f"Sentence {i} is about otters." for i in range(60)))
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    template = "CONTEXT:\n{context}\nQUESTION: {query}"
    with Pipeline(
        settings,
        embedder=local_embedder,
        chunker=Chunker(48, 8),
        prompt_builder=PromptBuilder(template, context_tokens=200),
    ) as pipeline:
        report = pipeline.index(docs, "kb")
        # 60 sentences of ~7 tokens in chunks of 48: many chunks, not the default's two.
        assert report.chunks_added >= 8
        payload = pipeline.payload("otters?", "kb", model="m")
        assert payload.messages[-1]["content"].startswith("CONTEXT:\n")
        retriever = Retriever(
            pipeline.store, pipeline.embedder, sparse_encoder=pipeline.sparse_encoder, mode="dense"
        )
    with Pipeline(settings, retriever=retriever) as again:
        assert again.retriever() is retriever
        assert again.retriever("sparse").mode == "sparse"
        assert again.query("otters", "kb", top_k=2)[0].source == "a.txt"
    with pytest.raises(ConfigError, match="another store"):
        Pipeline(settings, store=object(), retriever=retriever)  # type: ignore[arg-type]


def test_a_first_index_on_an_empty_model_cache_reads_every_japanese_file(tmp_path: Path) -> None:
    # auto mode on a fresh data dir: the default model preloads while the first batches
    # export the multilingual one (both exports used to collide: 110 of 119 files failed).
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(24):
        (docs / f"note-{n}.txt").write_text(
            f"第{n}章。港町の朝は霧が深く、漁師たちは{n}隻の船を数えた。\n", encoding="utf-8"
        )
    settings = Settings(data_dir=tmp_path / "data", model_cache_dir=tmp_path / "models")
    with Pipeline(settings) as pipeline:
        report = pipeline.index(docs, "japanese")
        assert report.errors == []
        assert len(report.added) == 24
        assert pipeline.store.collection_model("japanese")[0] == E5_ONNX_MODEL


def test_build_index_waits_for_its_threshold(tmp_path: Path) -> None:
    from rag_pipeline.types import Document

    settings = Settings(data_dir=tmp_path, embedder="local")
    with Pipeline(settings) as pipeline:
        assert pipeline.build_index("kb") is None  # no such collection yet
        pipeline.index([("a.txt", [Document(text="Sea otters sleep holding hands.")])], "kb")
        points = pipeline.store.count("kb")
        assert pipeline.store.unindexed("kb") == points
        assert pipeline.build_index("kb") is None  # 1 point < 20,000
        assert pipeline.build_index("kb", at=0) is None  # 0: never
        built = pipeline.build_index("kb", at=points)
        assert built is not None and built.collection == "kb"
        assert built.unindexed_before == points
        # The engine does not index a segment below its own threshold (~6,700 vectors of
        # 384 dims): a build of one point leaves it searched exactly, and says so.
        assert built.unindexed_after == points
        assert built.seconds >= 0
