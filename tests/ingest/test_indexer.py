"""The staged run: worker processes, batched writes, crash safety, the one entry for sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest

from rag_pipeline import EmbeddingError, ModelMismatchError, Pipeline, Settings, SourceItem
from rag_pipeline.ingest import file_sha256
from tests.wrapped import Wrapped

TOPICS = ["tents", "boots", "lanterns", "stoves", "ropes", "maps", "kayaks", "skis"]


def write_corpus(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(
            f"Note {i}.{j}: keep the {topic} of set {i} dry, checked and ready for trip {j}."
            for j in range(12 + i % 5)
        )
        (folder / f"doc{i:03d}.md").write_text(f"# {topic} {i}\n\n{body}\n", encoding="utf-8")
    return folder


def snapshot(pipeline: Pipeline, knowledge_id: str) -> dict[str, tuple]:
    """Every point of a collection: id -> (payload without root, dense vector)."""
    points = {}
    for point_id, payload, vectors in pipeline.store.scroll_payloads(
        knowledge_id, None, with_vectors=True
    ):
        payload.pop("root", None)
        # A file's quick key holds its inode and times, and none at all while the file is
        # under 2 s old: it differs between two copies of a corpus and by timing.
        payload.pop("file_stat", None)
        dense = np.asarray(vectors["dense"], dtype=np.float32)
        points[point_id] = (json.dumps(payload, sort_keys=True), dense)
    return points


def assert_same_points(a: dict[str, tuple], b: dict[str, tuple]) -> None:
    """Two snapshots hold the same points: ids, payloads, and vectors up to float noise
    (a model's rows shift by ~1e-7 with the padding of the batch they ran in)."""
    assert a.keys() == b.keys() and a
    for point_id, (payload, dense) in a.items():
        assert b[point_id][0] == payload
        assert np.allclose(dense, b[point_id][1], atol=1e-6), payload


def test_worker_processes_and_inline_runs_store_the_same_points(
    tmp_path: Path, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 12)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 not a pdf")
    snapshots, reports = [], []
    for workers in (0, 2):
        settings = Settings(data_dir=tmp_path / f"data{workers}", workers=workers)
        with Pipeline(settings, embedder=local_embedder) as pipeline:
            report = pipeline.index(docs, "kb")
            snapshots.append(snapshot(pipeline, "kb"))
            reports.append(report)
    inline, pooled = reports
    assert inline.added == pooled.added == sorted(f"doc{i:03d}.md" for i in range(12))
    assert [e["path"] for e in pooled.errors] == ["broken.pdf"]
    assert inline.errors == pooled.errors
    assert inline.chunks_added == pooled.chunks_added > 12
    assert_same_points(*snapshots)


def test_the_model_loads_while_changed_files_are_extracted_and_not_on_a_re_run(
    tmp_path: Path,
) -> None:
    docs = write_corpus(tmp_path / "docs", 3)
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    with Pipeline(settings) as first:
        first.index(docs, "kb")
    with Pipeline(settings) as again:
        assert again.index(docs, "kb").skipped == sorted(p.name for p in docs.iterdir())
        assert not again.embedder.loaded  # nothing changed: no model
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.pdf").write_bytes(b"%PDF-1.7 not a pdf")
    with Pipeline(settings) as broken:
        report = broken.index(bad, "kb2")
        assert [e["path"] for e in report.errors] == ["broken.pdf"]
        # Nothing was embedded, yet the model was loaded: in the background, as soon as
        # a changed file was planned, while it was being extracted.
        assert broken.embedder.loaded


def test_progress_hears_every_source_once_after_its_chunks_are_stored(
    tmp_path: Path, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 10)
    settings = Settings(data_dir=tmp_path / "data", workers=2)
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        heard: list[tuple[str, str, int]] = []
        totals: list[int] = []

        def progress(source: str, status: str) -> None:
            # When a source is reported, its chunks are already in the store.
            stored = sum(
                1
                for _, p, _ in pipeline.store.scroll_payloads("kb", ["source"])
                if p["source"] == source
            )
            heard.append((source, status, stored))

        pipeline.index(docs, "kb", progress=progress, on_total=totals.append)
        assert totals == [10]
        assert sorted(s for s, _, _ in heard) == sorted(f"doc{i:03d}.md" for i in range(10))
        assert all(status == "added" and stored > 0 for _, status, stored in heard)


class Watching(Wrapped):
    """The real model, noting the thread of each call; the first call waits (up to 60 s)
    for ``later``, which the feeding side sets."""

    def __init__(self, inner, later: threading.Event) -> None:
        super().__init__(inner)
        self.later = later
        self.threads: list[str] = []
        self.waited: list[bool] = []

    def embed_documents(self, texts):
        self.threads.append(threading.current_thread().name)
        if len(self.threads) == 1:
            self.waited.append(self.later.wait(timeout=60))
        return self.inner.embed_documents(texts)


def test_the_model_embeds_on_its_own_thread_while_later_sources_are_prepared(
    tmp_path: Path, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 8)
    items = [SourceItem.from_file(p, p.name) for p in sorted(docs.iterdir())]
    later = threading.Event()

    def plan():
        for number, item in enumerate(items):
            if number == 3:  # a source three batches on is being prepared
                later.set()
            yield item

    embedder = Watching(local_embedder, later)
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    with Pipeline(settings, embedder=embedder) as pipeline:
        indexer = pipeline.indexer(workers=0)
        indexer.embed_group = 1  # a batch per source
        # prune: the items are taken one at a time as they are prepared (a run that
        # names its items reads a window of them ahead, for their stored state).
        report = indexer.run(plan(), "kb", prune=True)
        # The first batch's embedding waited while the calling thread went on preparing:
        # had it embedded the batch itself, the wait would have timed out.
        assert embedder.waited == [True]
        assert set(embedder.threads) == {"rag-index-model"}
        assert len(embedder.threads) == 8
        assert report.added == sorted(p.name for p in docs.iterdir())
        assert pipeline.store.count("kb") == report.chunks_added > 8


class Failing(Watching):
    """The real model, except that a batch holding ``marker`` fails as a remote model's
    call can (an EmbeddingError), or, with ``wrong_size``, comes back 3-dimensional."""

    def __init__(self, inner, marker: str, wrong_size: bool = False) -> None:
        super().__init__(inner, threading.Event())
        self.later.set()
        self.marker, self.wrong_size = marker, wrong_size

    def embed_documents(self, texts):
        if any(self.marker in t for t in texts):
            if self.wrong_size:
                return np.ones((len(texts), 3), dtype=np.float32)
            raise EmbeddingError("the embedding server answered 503")
        return super().embed_documents(texts)


def test_a_batch_the_model_fails_is_reported_by_name_and_the_rest_goes_on(
    tmp_path: Path, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 6)
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    with Pipeline(settings, embedder=Failing(local_embedder, "set 2 ")) as pipeline:
        indexer = pipeline.indexer(workers=0)
        indexer.embed_group = 1
        report = indexer.index(docs, "kb")
        assert report.errors == [{"path": "doc002.md", "error": ANY}]
        assert "503" in report.errors[0]["error"]
        assert report.added == [f"doc{i:03d}.md" for i in (0, 1, 3, 4, 5)]
        assert pipeline.store.count("kb") == report.chunks_added
    # The failed file is tried again by the next run, with a model that works.
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        assert pipeline.index(docs, "kb").added == ["doc002.md"]


def test_vectors_of_another_size_stop_the_run_and_keep_what_was_stored(
    tmp_path: Path, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 6)
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    with Pipeline(settings, embedder=Failing(local_embedder, "set 3 ", True)) as pipeline:
        indexer = pipeline.indexer(workers=0)
        indexer.embed_group = 1
        with pytest.raises(ModelMismatchError, match="3-dimensional"):
            indexer.index(docs, "kb")
        stored = {p["source"] for _, p, _ in pipeline.store.scroll_payloads("kb", ["source"])}
        assert stored <= {"doc000.md", "doc001.md", "doc002.md"}
    # The next run with the right model ends where a clean run does.
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        again = pipeline.index(docs, "kb")
        assert sorted(again.added + again.skipped) == [f"doc{i:03d}.md" for i in range(6)]
        resumed = snapshot(pipeline, "kb")
    clean = Settings(data_dir=tmp_path / "clean", workers=0)
    with Pipeline(clean, embedder=local_embedder) as pipeline:
        pipeline.index(docs, "kb")
        assert_same_points(resumed, snapshot(pipeline, "kb"))


# A run in a process of its own that prints each source's status once it is stored, then
# its counts; argv: folder, data dir, seconds to wait after each source (a slow consumer,
# so that a kill lands mid-run).
KILLABLE_RUN = textwrap.dedent(
    """
    import sys, time
    from rag_pipeline import Pipeline, Settings

    if __name__ == "__main__":
        settings = Settings(data_dir=sys.argv[2], workers=2)
        with Pipeline(settings) as pipeline:
            def progress(source, status):
                print(status, source, flush=True)
                time.sleep(float(sys.argv[3]))
            indexer = pipeline.indexer()
            indexer.embed_group = 16  # many small write batches
            report = indexer.index(sys.argv[1], "kb", progress=progress)
        print("done", len(report.added), len(report.skipped), len(report.updated), flush=True)
    """
)
KILLABLE_ENV = {**os.environ, "RAG_EMBEDDING_BATCH_SIZE": "8"}


def run_killable(runner: Path, docs: Path, data: Path) -> list[str]:
    """Run KILLABLE_RUN to its end: ["done", added, skipped, updated]."""
    out = subprocess.run(
        [sys.executable, str(runner), str(docs), str(data), "0"],
        capture_output=True,
        text=True,
        env=KILLABLE_ENV,
        check=True,
        timeout=600,
    )
    return out.stdout.split()[-4:]


def kill_killable(runner: Path, docs: Path, data: Path, status: str, after: int) -> int:
    """Start KILLABLE_RUN and SIGKILL it, workers included, once ``after`` sources were
    stored with ``status``; return how many it printed."""
    child = subprocess.Popen(
        [sys.executable, str(runner), str(docs), str(data), "0.05"],
        stdout=subprocess.PIPE,
        text=True,
        env=KILLABLE_ENV,
        start_new_session=True,
    )
    assert child.stdout is not None
    written = 0
    for line in child.stdout:
        written += line.startswith(status)
        if written >= after:
            break
    os.killpg(child.pid, signal.SIGKILL)  # the run and its worker processes, mid-run
    child.wait()
    return written


def test_a_killed_run_resumes_to_the_state_of_a_clean_run(tmp_path: Path) -> None:
    docs = write_corpus(tmp_path / "docs", 60)
    runner = tmp_path / "run.py"
    runner.write_text(KILLABLE_RUN)
    crashed = tmp_path / "crashed"
    assert kill_killable(runner, docs, crashed, "added", 3) >= 3

    def run(data: Path) -> list[str]:
        return run_killable(runner, docs, data)

    resumed = run(crashed)
    assert resumed[0] == "done"
    assert 0 < int(resumed[1]) + int(resumed[3]) < 60  # only what the crash left undone
    assert int(resumed[2]) >= 3  # sources written before the kill were not re-embedded
    clean = tmp_path / "clean"
    assert run(clean)[:2] == ["done", "60"]
    with Pipeline(Settings(data_dir=crashed)) as a, Pipeline(Settings(data_dir=clean)) as b:
        after_crash, after_clean = snapshot(a, "kb"), snapshot(b, "kb")
    assert after_crash.keys() == after_clean.keys()
    assert {k: v[0] for k, v in after_crash.items()} == {k: v[0] for k, v in after_clean.items()}


def test_a_script_without_main_guard_still_indexes(tmp_path: Path) -> None:
    # Worker processes re-run such a script and die; the run goes on in its own process.
    docs = write_corpus(tmp_path / "docs", 8)
    script = textwrap.dedent(
        f"""
        from rag_pipeline import Pipeline, Settings
        with Pipeline(Settings(data_dir={str(tmp_path / "data")!r}, workers=2)) as p:
            report = p.index({str(docs)!r}, "kb")
        print("added", len(report.added), "failed", len(report.errors))
        """
    )
    runner = tmp_path / "unguarded.py"
    runner.write_text(script)
    out = subprocess.run(
        [sys.executable, str(runner)], capture_output=True, text=True, timeout=600, check=True
    )
    assert out.stdout.split()[-4:] == ["added", "8", "failed", "0"]


def test_one_entry_for_files_and_extracted_text(tmp_path: Path, local_embedder) -> None:
    docs = write_corpus(tmp_path / "docs", 3)
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        path = docs / "doc000.md"
        digest = file_sha256(path)
        items = [
            SourceItem.from_file(path, "upload.md", fingerprint=digest),
            SourceItem.from_documents("typed.txt", [pipeline_document("Kayaks float.")]),
        ]
        first = pipeline.index(items, "kb")
        assert first.added == ["typed.txt", "upload.md"]
        stored = {p["source"]: p["file_hash"] for _, p, _ in pipeline.store.scroll_payloads("kb")}
        assert stored["upload.md"] == digest  # the fingerprint given is the one stored
        again = pipeline.index(items, "kb")
        assert again.skipped == ["typed.txt", "upload.md"] and again.chunks_added == 0
    with pytest.raises(Exception, match="path or documents"):
        SourceItem(source="nothing")


def test_keyed_items_with_one_name_stay_apart(tmp_path: Path, local_embedder) -> None:
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        doc = [pipeline_document("Kayaks float on calm water.")]
        items = [
            SourceItem("notes.txt", documents=tuple(doc), key=key, payload={"owner": key})
            for key in ("id-1", "id-2")
        ]
        first = pipeline.index(items, "shared")
        assert first.added == ["id-1", "id-2"]
        assert first.chunk_counts == {"id-1": 1, "id-2": 1}
        stored = {p["key"]: p for _, p, _ in pipeline.store.scroll_payloads("shared")}
        assert set(stored) == {"id-1", "id-2"}
        assert {p["source"] for p in stored.values()} == {"notes.txt"}
        assert stored["id-2"]["owner"] == "id-2"
        # A run over one of them reads only its state: the other is neither skipped nor
        # pruned, and a changed text replaces only that key's points.
        changed = SourceItem(
            "notes.txt", documents=(pipeline_document("Skis glide on snow."),), key="id-1"
        )
        again = pipeline.index([changed, items[1]], "shared")
        assert (again.updated, again.skipped) == (["id-1"], ["id-2"])
        assert again.chunk_counts == {"id-1": 1, "id-2": 1}
        texts = {p["key"]: p["text"] for _, p, _ in pipeline.store.scroll_payloads("shared")}
        assert texts == {"id-1": "Skis glide on snow.", "id-2": "Kayaks float on calm water."}


def pipeline_document(text: str):
    from rag_pipeline import Document

    return Document(text=text, metadata={})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifos_devices_and_oversized_files_are_reported_not_read(
    tmp_path: Path, local_embedder
) -> None:
    docs = write_corpus(tmp_path / "docs", 2)
    os.mkfifo(docs / "pipe.txt")  # opening it would block forever
    (docs / "zero.txt").symlink_to("/dev/zero")  # reading it would never end
    (docs / "big.txt").write_text("x" * 5000)
    settings = Settings(data_dir=tmp_path / "data", workers=0, max_file_bytes=4000)
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        report = pipeline.index(docs, "kb")
    reasons = {e["path"]: e["error"] for e in report.errors}
    assert set(reasons) == {"pipe.txt", "zero.txt", "big.txt"}
    assert reasons["pipe.txt"].startswith("not a regular file")
    assert reasons["zero.txt"].startswith("not a regular file")
    assert reasons["big.txt"] == "file too large: more than 4000 bytes"
    assert report.added == ["doc000.md", "doc001.md"]


def test_ctrl_c_stops_cleanly_with_a_partial_report(tmp_path: Path) -> None:
    # Enough files that the run is still embedding (blocked on the writer's short queue)
    # when the signal comes, even if this process reads the child's output seconds late
    # on a loaded machine: with 60, a late reader once found the run already finished.
    docs = write_corpus(tmp_path / "docs", 200)
    script = textwrap.dedent(
        """
        import json, signal, sys, time
        from rag_pipeline import Pipeline, Settings

        if __name__ == "__main__":
            # As a terminal starts it: a test runner that ran Ray may pass on SIGINT
            # blocked or ignored (both survive exec), and the signal would never arrive.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            signal.signal(signal.SIGINT, signal.default_int_handler)
            with Pipeline(Settings(data_dir=sys.argv[2], workers=2)) as pipeline:
                def progress(source, status):
                    print(status, source, flush=True)
                    time.sleep(0.05)
                indexer = pipeline.indexer()
                indexer.embed_group = 16
                report = indexer.index(sys.argv[1], "kb", progress=progress)
            print("report", json.dumps(report.to_dict()), flush=True)
        """
    )
    runner = tmp_path / "run.py"
    runner.write_text(script)
    data = tmp_path / "data"
    env = {**os.environ, "RAG_EMBEDDING_BATCH_SIZE": "8"}
    child = subprocess.Popen(
        [sys.executable, str(runner), str(docs), str(data)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:
        lines.append(line)
        if sum(x.startswith("added") for x in lines) == 3:
            # Ctrl-C in a terminal: the whole process group, workers included, once.
            os.killpg(child.pid, signal.SIGINT)
            break
    rest, _ = child.communicate(timeout=120)
    assert child.returncode == 0  # it stopped by itself, not by the signal
    report = json.loads(rest.strip().splitlines()[-1].removeprefix("report "))
    assert report["interrupted"] is True
    added = report["files"]["added"]
    assert 3 <= added < 200
    # What the report lists is there in full; a second run does only the rest.
    again = subprocess.run(
        [sys.executable, str(runner), str(docs), str(data)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    )
    final = json.loads(again.stdout.strip().splitlines()[-1].removeprefix("report "))
    assert final["interrupted"] is False
    assert final["files"]["skipped"] >= added
    assert final["files"]["skipped"] + final["files"]["added"] + final["files"]["updated"] == 200


def test_scans_are_read_page_by_page_and_never_twice(tmp_path: Path, local_embedder) -> None:
    from rag_pipeline.ingest.indexer import OCR_QUEUED, OCR_READ
    from rag_pipeline.loaders.ocr import find_tessdata
    from tests.scanned_pages import image_pdf, page

    if find_tessdata(None) is None:
        pytest.skip("Tesseract's language data is not installed")
    docs = write_corpus(tmp_path / "docs", 3)
    subjects = ["cranes", "ships", "trains", "trucks", "bicycles"]
    pages = [page("en", [f"This scanned page is about {s} and harbours"]) for s in subjects]
    image_pdf(docs / "scan.pdf", pages[:3])
    pages[3].save(docs / "fax.tiff", save_all=True, append_images=[pages[4]])
    (docs / "notes.xyz").write_text("a format no loader reads")
    snapshots = []
    for workers in (0, 2):
        events: list[tuple[str, str]] = []
        settings = Settings(data_dir=tmp_path / f"data{workers}", workers=workers)
        with Pipeline(settings, embedder=local_embedder) as pipeline:
            report = pipeline.index(docs, "kb", progress=lambda s, st, e=events: e.append((s, st)))
            assert report.pages_ocr == 5
            assert sorted(report.added) == [
                "doc000.md",
                "doc001.md",
                "doc002.md",
                "fax.tiff",
                "scan.pdf",
            ]
            # A file no loader reads is named, with why, not skipped without a word.
            assert report.errors == [{"path": "notes.xyz", "error": "unsupported file type .xyz"}]
            queued = sorted(s for s, st in events if st == OCR_QUEUED)
            assert queued == sorted(s for s, st in events if st == OCR_READ)
            assert queued == ["fax.tiff"] * 2 + ["scan.pdf"] * 3
            snapshots.append(snapshot(pipeline, "kb"))
            scanned = [
                json.loads(payload)
                for payload, _ in snapshots[-1].values()
                if json.loads(payload)["source"] in ("scan.pdf", "fax.tiff")
            ]
            assert sorted((p["source"], p["page"]) for p in scanned) == [
                ("fax.tiff", 1),
                ("fax.tiff", 2),
                ("scan.pdf", 1),
                ("scan.pdf", 2),
                ("scan.pdf", 3),
            ]
            for payload in scanned:
                assert payload["ocr"] is True and payload["ocr_confidence"] > 80
                assert (
                    subjects[payload["page"] - 1 + (3 if payload["source"] == "fax.tiff" else 0)]
                    in payload["text"]
                )
            again = pipeline.index(docs, "kb")
            assert again.pages_ocr == 0
            assert len(again.skipped) == 5 and not again.added
    assert_same_points(*snapshots)


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_a_killed_run_leaves_no_process_behind(tmp_path: Path) -> None:
    # SIGKILL (or the OOM killer) reaches the run only, not its process group: its pool's
    # workers (children of the forkserver), the forkserver and the resource tracker must
    # follow it within seconds, not live on holding their memory.
    docs = write_corpus(tmp_path / "docs", 200)
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data"), "RAG_WORKERS": "2"}
    rag = Path(sys.executable).with_name("rag")
    run = subprocess.Popen(
        [str(rag), "index", str(docs), "--knowledge", "kb", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # until the pool's workers exist (children of the run's children)
            helpers = _children(run.pid)
            workers = [w for h in helpers for w in _children(h)]
            if workers:
                break
            assert run.poll() is None, "the run ended before its workers were seen"
            assert time.monotonic() < deadline, "no worker processes appeared"
            time.sleep(0.05)
        left = helpers + workers
        run.send_signal(signal.SIGKILL)
        run.wait(30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in left) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in left if _alive(pid)] == []
    finally:
        if run.poll() is None:
            run.kill()


def test_a_re_run_over_more_items_than_one_state_filter_holds_finds_them_all(
    tmp_path: Path, local_embedder
) -> None:
    from rag_pipeline.ingest.indexer import _STATE_SLICE

    settings = Settings(data_dir=tmp_path / "data", workers=0)
    count = 2 * _STATE_SLICE + 7  # three slices of names
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        items = [
            SourceItem.from_documents(f"n{i:04d}.txt", [pipeline_document(f"note {i}")])
            for i in range(count)
        ]
        assert len(pipeline.index(items, "many").added) == count
        items[-1] = SourceItem.from_documents("n9999.txt", [pipeline_document("a new one")])
        items[3] = SourceItem.from_documents("n0003.txt", [pipeline_document("changed")])
        again = pipeline.index(items, "many")
        # Every unchanged item's state was read back, in whichever slice it fell.
        assert len(again.skipped) == count - 2 and again.chunks_added == 2
        assert (again.added, again.updated) == (["n9999.txt"], ["n0003.txt"])


def test_a_re_run_reads_state_a_window_at_a_time_and_replaces_changed_items_in_any_window(
    tmp_path: Path, local_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_pipeline.ingest import indexer

    monkeypatch.setattr(indexer, "_STATE_WINDOW", 10)  # 4 windows of 35 items
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    with Pipeline(settings, embedder=local_embedder) as pipeline:
        items = [
            SourceItem.from_documents(f"n{i:02d}.txt", [pipeline_document(f"note {i}")])
            for i in range(35)
        ]
        assert len(pipeline.index(iter(items), "win").added) == 35
        items[27] = SourceItem.from_documents("n27.txt", [pipeline_document("changed text")])
        items[5] = SourceItem.from_documents("n05.txt", [pipeline_document("also changed")])
        again = pipeline.index(iter(items), "win")  # a generator: never listed whole
        assert sorted(again.updated) == ["n05.txt", "n27.txt"] and len(again.skipped) == 33
        # The old chunks of the changed items went: one point per note, as before.
        assert pipeline.store.count("win") == 35
        assert pipeline.store.count("win", where={"source": "n27.txt"}) == 1
        hits = pipeline.query("changed text", "win", top_k=1)
        assert hits[0].source == "n27.txt" and hits[0].text == "changed text"
        third = pipeline.index(iter(items), "win")
        assert len(third.skipped) == 35 and third.chunks_added == 0


def test_a_re_run_trusts_a_file_whose_size_times_and_inode_are_as_stored(
    tmp_path: Path, local_embedder
) -> None:
    """The quick check (SourceItem.quick_key): a file the last run stored the same size,
    times and inode for is not read; a touched one is read, found unchanged and its key
    stored; a changed one whose size and mtime were put back is still found; --checksum
    reads them all."""
    docs = write_corpus(tmp_path / "docs", 3)
    settings = Settings(data_dir=tmp_path / "data", workers=0)
    names = ["doc000.md", "doc001.md", "doc002.md"]

    def stats(pipeline: Pipeline) -> dict[str, set]:
        out: dict[str, set] = {}
        for _, payload, _ in pipeline.store.scroll_payloads("kb", ["source", "file_stat"]):
            out.setdefault(payload["source"], set()).add(payload.get("file_stat"))
        return out

    def key(name: str) -> str | None:
        return SourceItem.from_file(docs / name, name).quick_key()

    with Pipeline(settings, embedder=local_embedder) as pipeline:
        first = pipeline.index(docs, "kb")
        assert first.added == names
        # Written a moment ago: their times cannot vouch for them yet (racy), no key stored.
        assert stats(pipeline) == {name: {None} for name in names}
        time.sleep(2.2)
        again = pipeline.index(docs, "kb")  # read, unchanged: their keys are stored now
        assert again.skipped == names and again.chunks_added == 0
        assert stats(pipeline) == {name: {key(name)} for name in names}
        assert all(key(name) for name in names)
        # The stored fingerprint is trusted without reading the file: a wrong one stands...
        pipeline.store.set_payload_where("kb", {"file_hash": "not-its-hash"}, "source", names[0])
        trusted = pipeline.index(docs, "kb")
        assert trusted.skipped == names
        # ... until every file is read (--checksum), which finds and redoes it.
        checked = pipeline.index(docs, "kb", checksum=True)
        assert (checked.updated, checked.skipped) == ([names[0]], names[1:])
        stored = {p["source"]: p["file_hash"] for _, p, _ in pipeline.store.scroll_payloads("kb")}
        assert stored[names[0]] == file_sha256(docs / names[0])
        # A change that keeps the size and puts the modification time back still changes
        # the inode's change time: found.
        path = docs / names[1]
        before = path.stat()
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("dry", "DRY"), encoding="utf-8")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert path.stat().st_size == before.st_size
        assert path.stat().st_mtime_ns == before.st_mtime_ns
        edited = pipeline.index(docs, "kb")
        assert (edited.updated, edited.skipped) == ([names[1]], [names[0], names[2]])
        texts = " ".join(p["text"] for _, p, _ in pipeline.store.scroll_payloads("kb"))
        assert "DRY" in texts
