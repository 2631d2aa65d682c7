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
        assert pipeline.embedder._model is None
        pipeline.warm_up()
        assert pipeline.embedder._model is not None


def test_warm_up_leaves_remote_embedders_alone(tmp_path: Path) -> None:
    # Nothing listens on port 9: a request would raise, so returning proves none was sent.
    settings = Settings(
        data_dir=tmp_path, embedder="ollama", embedding_base_url="http://127.0.0.1:9"
    )
    with Pipeline(settings) as pipeline:
        pipeline.warm_up()
