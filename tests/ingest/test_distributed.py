"""Indexing on a local Ray cluster leaves what a local run leaves, and reports it the same way."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from click.testing import Result
from typer.testing import CliRunner

from rag_pipeline import Pipeline, Settings, SourceItem
from rag_pipeline.cli import app
from rag_pipeline.embedding.e5_onnx import E5_ONNX_MODEL
from rag_pipeline.ingest.distributed import RayIndexer
from rag_pipeline.ingest.sources import RACY_NS
from tests.conftest import SAMPLE_DOCS

SAMPLES = ["faq.txt", "handbook.md", "onboarding.docx", "safety-report.pdf"]
MIXED = ["ideas-page.html", "stanley-cups.csv", "eml/family-day.eml", "pdf/fake-memo.pdf"]


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    """One local two-CPU Ray cluster for the module; runs join it instead of starting one."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture
def docs(tmp_path: Path, shared_data: Path) -> Path:
    """A few sample documents and, in a subfolder, some of the mixed formats."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in SAMPLES:
        shutil.copy(SAMPLE_DOCS / name, folder / name)
    for name in MIXED:
        target = folder / "mixed" / Path(name).name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(shared_data / "mixed_docs" / name, target)
    return folder


def points(pipeline: Pipeline, knowledge_id: str) -> dict[str, dict[str, Any]]:
    """Every point of a collection by id: payload, dense vector and sparse vector."""
    out = {}
    for point_id, payload, vectors in pipeline.store.scroll_payloads(
        knowledge_id, None, with_vectors=True
    ):
        sparse = vectors.get("sparse")
        out[point_id] = {
            # A file's quick key is stored once the file is 2 s old: it depends on timing.
            "stat": payload.pop("file_stat", None),
            "payload": payload,
            "dense": np.asarray(vectors["dense"], dtype=np.float32),
            "sparse": None if sparse is None else (list(sparse.indices), list(sparse.values)),
        }
    return out


def assert_same_points(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> None:
    assert a.keys() == b.keys()
    for point_id, left in a.items():
        right = b[point_id]
        assert left["payload"] == right["payload"], point_id
        assert left["sparse"] == right["sparse"], point_id
        # Batches are grouped differently across the two runs: padding may move the last bits.
        np.testing.assert_allclose(left["dense"], right["dense"], atol=1e-5)


def summary(report: Any) -> dict[str, Any]:
    """A report without its timing."""
    data = report.to_dict()
    data.pop("seconds")
    return {**data, "added": report.added, "updated": report.updated, "deleted": report.deleted}


def test_a_ray_run_stores_what_a_local_run_stores_and_reports_a_corrupt_file(
    tmp_path: Path, docs: Path
) -> None:
    from tests.scanned_pages import page

    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 not a pdf")
    page("en").save(docs / "scan.png")  # read by OCR inside a Ray task
    with Pipeline(Settings(data_dir=tmp_path / "local")) as local:
        local_report = local.index(docs, "kb")
        local_points = points(local, "kb")
    heard: list[tuple[str, str]] = []
    totals: list[int] = []
    started = time.time_ns()
    with Pipeline(Settings(data_dir=tmp_path / "ray")) as pipeline:
        report = pipeline.index(
            docs,
            "kb",
            progress=lambda source, status: heard.append((source, status)),
            on_total=totals.append,
            indexer=RayIndexer,
        )
        ray_points = points(pipeline, "kb")
    names = sorted([*SAMPLES, *(f"mixed/{Path(n).name}" for n in MIXED), "scan.png"])
    assert report.added == names
    assert report.pages_ocr == local_report.pages_ocr == 1
    assert [e["path"] for e in report.errors] == ["broken.pdf"]
    assert report.errors[0]["error"]  # with its reason
    assert summary(report) == summary(local_report)
    assert report.chunks_added == len(ray_points) > len(names)
    assert_same_points(ray_points, local_points)
    # The writer stores each file's quick key, as a local run's does, where it is due: a
    # file last changed 2 s before the run began must carry it.
    for point in ray_points.values():
        source = point["payload"]["source"]
        item = SourceItem.from_file(docs / source, source)
        info = (docs / source).stat()
        if max(info.st_mtime_ns, info.st_ctime_ns) < started - RACY_NS:
            assert point["stat"] == item.quick_key(), source
        assert point["stat"] in (None, item.quick_key()), source
    # The progress heard every file once, as its outcome came back to the driver.
    assert totals == [len(names) + 1]
    outcomes = [(source, status) for source, status in heard if not status.startswith("ocr_")]
    assert sorted(outcomes) == sorted([*((n, "added") for n in names), ("broken.pdf", "failed")])
    assert ("scan.png", "ocr_page") in heard


def test_auto_chooses_the_multilingual_model_on_ray_as_a_local_run_does(tmp_path: Path) -> None:
    folder = tmp_path / "ko"
    folder.mkdir()
    for name in ("remote-work-ko.txt", "benefits-ko.docx", "faq.txt"):
        shutil.copy(SAMPLE_DOCS / name, folder / name)
    with Pipeline(Settings(data_dir=tmp_path / "local")) as local:
        local.index(folder, "kb")
        assert local.store.collection_model("kb")[0] == E5_ONNX_MODEL
        expected = points(local, "kb")
    with Pipeline(Settings(data_dir=tmp_path / "ray")) as distributed:
        report = distributed.index(folder, "kb", indexer=RayIndexer)
        assert report.errors == [] and len(report.added) == 3
        assert distributed.store.collection_model("kb")[0] == E5_ONNX_MODEL
        assert_same_points(points(distributed, "kb"), expected)


def test_ray_reruns_skip_reembed_and_prune_like_a_local_run(tmp_path: Path, docs: Path) -> None:
    with Pipeline(Settings(data_dir=tmp_path / "ray")) as pipeline:
        first = pipeline.index(docs, "kb", indexer=RayIndexer)
        statuses: list[str] = []
        again = pipeline.index(
            docs, "kb", progress=lambda source, status: statuses.append(status), indexer=RayIndexer
        )
        assert again.skipped == first.added and again.chunks_added == 0
        assert set(statuses) == {"skipped"} and len(statuses) == len(first.added)
        assert again.chunks_deleted == 0 and not again.errors

        (docs / "faq.txt").write_text("Refunds take five working days.\n", encoding="utf-8")
        (docs / "handbook.md").unlink()
        shutil.copy(SAMPLE_DOCS / "product-care.html", docs / "product-care.html")
        changed = pipeline.index(docs, "kb", indexer=RayIndexer)
        after = points(pipeline, "kb")
    assert changed.updated == ["faq.txt"]
    assert changed.deleted == ["handbook.md"]
    assert changed.added == ["product-care.html"]
    assert len(changed.skipped) == len(first.added) - 2
    assert changed.chunks_deleted > 0 and not changed.errors
    # What is stored now is what a fresh local run of the folder as it is now stores.
    with Pipeline(Settings(data_dir=tmp_path / "local")) as local:
        local.index(docs, "kb")
        assert_same_points(after, points(local, "kb"))


def rag(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_cli_ray_json_has_the_local_shape_and_exit_code(
    tmp_path: Path, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 not a pdf")
    outputs = {}
    for run, flags in (("local", []), ("ray", ["--ray"])):
        monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / run))
        result = rag("index", str(docs), "-k", "kb", "--json", *flags)
        assert result.exit_code == 1, result.output  # one file failed, the rest is indexed
        outputs[run] = json.loads(result.stdout)
    assert outputs["ray"].keys() == outputs["local"].keys()
    outputs["ray"].pop("seconds"), outputs["local"].pop("seconds")
    assert outputs["ray"] == outputs["local"]
    assert outputs["ray"]["files"]["failed"] == 1
    assert outputs["ray"]["errors"][0]["path"] == "broken.pdf"


def test_cli_without_ray_says_what_to_install(tmp_path: Path, docs: Path) -> None:
    # A fresh process in which `import ray` fails, as it does without the extra.
    script = (
        "import sys; sys.modules['ray'] = None\n"
        "from rag_pipeline.cli import main\n"
        f"sys.argv = ['rag', 'index', {str(docs)!r}, '-k', 'kb', '--ray']\n"
        "main()\n"
    )
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 2, out.stderr
    assert "pip install 'rag-pipeline[ray]'" in out.stderr
    assert not (tmp_path / "data").exists()  # nothing was opened or stored


@pytest.mark.skipif(
    not os.environ.get("RAG_TEST_QDRANT_URL"),
    reason="needs a Qdrant server: set RAG_TEST_QDRANT_URL (e.g. http://localhost:6333)",
)
def test_workers_write_to_a_qdrant_server(tmp_path: Path, docs: Path) -> None:
    url = os.environ["RAG_TEST_QDRANT_URL"]
    knowledge = f"ray-{os.getpid()}"
    with Pipeline(Settings(data_dir=tmp_path / "local")) as local:
        local.index(docs, "kb")
        expected = points(local, "kb")
    with Pipeline(Settings(data_dir=tmp_path / "ray", qdrant_url=url)) as pipeline:
        try:
            report = pipeline.index(docs, knowledge, indexer=RayIndexer)
            assert report.chunks_added == len(expected) and not report.errors
            assert_same_points(points(pipeline, knowledge), expected)
            (docs / "faq.txt").unlink()
            pruned = pipeline.index(docs, knowledge, indexer=RayIndexer)
            assert pruned.deleted == ["faq.txt"] and pruned.chunks_added == 0
        finally:
            pipeline.delete(knowledge)
