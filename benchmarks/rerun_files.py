"""A re-run that finds nothing changed, over a folder of many files (issue #25: <= 5 s at 100k).

`rag index DIR` run again over the same folder is the re-run users make most: it walks the
folder, fingerprints every file (SHA-256 of its bytes), reads the knowledge base's stored
state and skips every file (prune=True, the CLI's default: files gone from the folder are
removed). This writes `--files` SciFact-like documents as small .txt files (copy n of
document d is `{n}/{d}.txt`, ~1.5 KB, as in scale_curve.py), indexes them once into one
knowledge base on the embedded store (qdrant-edge), then times `Pipeline.index(folder, kb)`
again `--reruns` times in this process (the first re-run may read the files from disk, the
later ones from the page cache; both are reported), then `--fresh` times in a new process,
as `rag index DIR` is re-run: its wall time from start to exit and the index call alone.
After the first index the HNSW index is built, as `rag index` does past RAG_HNSW_BUILD_AT
chunks (`--no-build-index`: not; `unindexed` in the results says which a run measured).
`--profile FILE` writes a cProfile of the last in-process re-run. `--work-dir DIR --reuse`
re-runs over a folder and data dir a previous run left there (no writing, no first index).

Since the quick check (a file whose size, times and inode are as stored is not read:
`SourceItem.quick_key`), `--checksum` times the re-runs that read every file, as before it.
Since the ledger (`ingest.ledger`: one row per file beside the collection), a re-run reads
that instead of every chunk's payload; the first re-run after an upgrade writes it.

The embedder costs nothing (scale_curve.FreeEmbedder): a re-run embeds nothing anyway, and
the first index is not what this measures.

Run:  .venv/bin/python benchmarks/rerun_files.py --files 100000 --fresh 2 [--profile F]
Smoke: .venv/bin/python benchmarks/rerun_files.py --files 2000
Writes benchmarks/results/rerun_files.json (`--out` moves it).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scale_curve import FreeEmbedder, load_corpus, memory

from rag_pipeline import Pipeline, Settings

ROOT = Path(__file__).resolve().parents[1]
KB = "rerun"


def write_files(folder: Path, count: int) -> int:
    """Write ``count`` distinct .txt files under ``folder``; return their bytes."""
    corpus = load_corpus()
    written = 0
    for n in range(count):
        copy, (doc_id, title, text) = divmod(n, len(corpus))[0], corpus[n % len(corpus)]
        path = folder / str(copy) / f"{doc_id}.txt"
        if n % len(corpus) == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        body = f"{title}\n\n{text} (copy {copy})\n".encode()
        path.write_bytes(body)
        written += len(body)
    return written


CHILD = """
import json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from scale_curve import FreeEmbedder
from rag_pipeline import Pipeline, Settings
imported = time.perf_counter()
with Pipeline(Settings(data_dir=sys.argv[2]), embedder=FreeEmbedder()) as pipeline:
    opened = time.perf_counter()
    report = pipeline.index(sys.argv[3], sys.argv[4], checksum=sys.argv[5] == "1")
    indexed = time.perf_counter()
    # As `rag index` ends: due only past the setting (not with --no-build-index).
    built = pipeline.build_index(sys.argv[4]) if sys.argv[6] == "1" else None
    checked = time.perf_counter()
print(json.dumps({"import_s": imported - started, "open_s": opened - imported,
                  "index_s": indexed - opened, "build_check_s": checked - indexed,
                  "built": built is not None, "skipped": len(report.skipped),
                  "changed": len(report.added) + len(report.updated) + len(report.deleted)}))
"""


def fresh_rerun(data: Path, folder: Path, checksum: bool, build: bool) -> dict[str, Any]:
    """A re-run in a new process, as `rag index DIR` again: wall time to exit, and parts."""
    started = time.perf_counter()
    out = subprocess.run(
        [
            *(sys.executable, "-c", CHILD, str(ROOT / "benchmarks")),
            *(str(data), str(folder), KB, "1" if checksum else "0", "1" if build else "0"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall = time.perf_counter() - started
    parts = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": round(wall, 3), **{k: round(v, 3) for k, v in parts.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--reruns", type=int, default=2)
    parser.add_argument("--fresh", type=int, default=0, help="re-runs in a new process")
    parser.add_argument("--checksum", action="store_true", help="re-runs read every file")
    parser.add_argument("--reuse", action="store_true", help="reuse --work-dir's folder and data")
    parser.add_argument("--workers", type=int, help="extraction processes (default: settings)")
    parser.add_argument("--work-dir", type=Path, help="default: a temporary dir, removed")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the last re-run")
    parser.add_argument(
        "--change",
        type=int,
        default=0,
        help="then change this many files (a line appended) and time one more re-run",
    )
    parser.add_argument(
        "--no-build-index",
        action="store_true",
        help="after the first index, do not build the HNSW index (`rag index` builds it "
        "past RAG_HNSW_BUILD_AT chunks; an unbuilt collection opens slower)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "rerun_files.json"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rerun-files-")) if args.work_dir is None else args.work_dir
    folder, data = work / "docs", work / "data"
    if data.exists() and not args.reuse:
        raise SystemExit(f"{data} exists: use a new --work-dir, or --reuse it")
    if args.reuse and not data.exists():
        raise SystemExit(f"--reuse: {data} does not exist")
    try:
        started = time.perf_counter()
        size = 0 if args.reuse else write_files(folder, args.files)
        write_s = time.perf_counter() - started
        print(f"wrote {args.files:,} files ({size / 1e6:.0f} MB) in {write_s:.1f} s", flush=True)
        settings = Settings(data_dir=data)
        result: dict[str, Any] = {
            "files": args.files,
            "bytes": size,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "argv": sys.argv[1:],
            "loadavg_start": [round(v, 2) for v in os.getloadavg()],
        }
        result["checksum"] = args.checksum
        with Pipeline(settings, embedder=FreeEmbedder()) as pipeline:
            if not args.reuse:
                started = time.perf_counter()
                report = pipeline.index(folder, KB, workers=args.workers)
                first_s = time.perf_counter() - started
                assert len(report.added) == args.files and report.ok, report.to_dict()["errors"]
                result["first"] = {
                    "s": round(first_s, 2),
                    "chunks": report.chunks_added,
                    "files_per_s": round(args.files / first_s, 1),
                }
                print(f"first index: {report.chunks_added:,} chunks in {first_s:.1f} s")
            if not args.no_build_index:
                built = pipeline.build_index(KB)  # as `rag index` does after a run
                result["index_build"] = built.to_dict() if built is not None else None
                print(f"index build: {result['index_build']}", flush=True)
            result["unindexed"] = pipeline.store.unindexed(KB)
            result["reruns"] = []
            for attempt in range(args.reruns):
                last = attempt == args.reruns - 1
                profiler = cProfile.Profile() if args.profile and last else None
                started = time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                report = pipeline.index(folder, KB, workers=args.workers, checksum=args.checksum)
                if profiler is not None:
                    profiler.disable()
                seconds = time.perf_counter() - started
                changed = len(report.added) + len(report.updated) + len(report.deleted)
                assert len(report.skipped) == args.files and not changed, report.to_dict()
                result["reruns"].append(
                    {
                        "s": round(seconds, 3),
                        "us_per_file": round(seconds / args.files * 1e6, 1),
                        "memory": memory(),
                        "profiled": profiler is not None,
                    }
                )
                print(f"re-run {attempt + 1}: {seconds:.2f} s", flush=True)
                if profiler is not None:
                    profiler.dump_stats(args.profile)
                    text = io.StringIO()
                    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
                    print(text.getvalue(), flush=True)
            if args.change:
                changed_files = sorted(folder.rglob("*.txt"))[: args.change]
                for path in changed_files:
                    with path.open("a", encoding="utf-8") as handle:
                        handle.write(f"A line added at {time.time_ns()}.\n")
                started = time.perf_counter()
                report = pipeline.index(folder, KB, workers=args.workers)
                seconds = time.perf_counter() - started
                assert len(report.updated) == args.change, report.to_dict()["errors"]
                result["changed_rerun"] = {"files": args.change, "s": round(seconds, 3)}
                print(f"re-run after changing {args.change} files: {seconds:.2f} s", flush=True)
        result["fresh"] = []
        for attempt in range(args.fresh):
            fresh = fresh_rerun(data, folder, args.checksum, not args.no_build_index)
            assert fresh["skipped"] == args.files and not fresh["changed"], fresh
            result["fresh"].append(fresh)
            print(f"fresh re-run {attempt + 1}: {fresh}", flush=True)
        result["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["reruns"], indent=2))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
