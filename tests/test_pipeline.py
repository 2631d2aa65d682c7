"""Pipeline: lazy parts built once, even under concurrent first use."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rag_pipeline import Settings
from rag_pipeline import pipeline as pipeline_module
from rag_pipeline.pipeline import Pipeline


def test_concurrent_first_use_builds_one_embedder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pipeline_module.make_embedder
    built = []

    def slow_make_embedder(settings: Settings):
        time.sleep(0.05)  # widen the race window between check and assignment
        embedder = real(settings)
        built.append(embedder)
        return embedder

    monkeypatch.setattr(pipeline_module, "make_embedder", slow_make_embedder)
    pipeline = Pipeline(Settings(data_dir=tmp_path))
    barrier = threading.Barrier(6)
    seen = []

    def touch() -> None:
        barrier.wait()
        seen.append(pipeline.embedder)

    threads = [threading.Thread(target=touch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert all(e is built[0] for e in seen)


def test_warm_up_loads_an_in_process_model(tmp_path: Path) -> None:
    with Pipeline(Settings(data_dir=tmp_path)) as pipeline:
        assert pipeline.embedder._session is None  # the default ONNX runtime, not loaded yet
        pipeline.warm_up()
        assert pipeline.embedder._session is not None


def test_warm_up_leaves_remote_embedders_alone(tmp_path: Path) -> None:
    # Nothing listens on port 9: a request would raise, so returning proves none was sent.
    settings = Settings(
        data_dir=tmp_path, embedder="ollama", embedding_base_url="http://127.0.0.1:9"
    )
    with Pipeline(settings) as pipeline:
        pipeline.warm_up()


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
        first = pipeline.index_documents(items, "notes", extra_payload={"batch": "one"})
        assert sorted(first.added) == ["kilns.txt", "otters.txt"]
        hits = pipeline.query("how hot does a kiln get?", "notes", top_k=1)
        assert hits[0].source == "kilns.txt"
        assert hits[0].metadata["batch"] == "one"
        again = pipeline.index_documents(items, "notes")
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
