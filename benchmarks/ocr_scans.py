"""Scanned documents through the whole `rag` CLI: pages/s, CPU per page, retrieval vs text.

For each language of ../shared/data/scans (ko, ja, en: image-only PDFs, PNG, JPEG and TIFF
at 200 dpi, degraded), in a fresh data dir with a warm model cache:

1. `rag index scans/L/docs --json`: files read and failed, pages OCR'd, wall seconds, and the
   CPU seconds of the whole process tree (main, forkserver, workers; sampled every 0.2 s
   with psutil, so a process's last fraction of a second can be missed);
2. the same again: a re-run that must OCR nothing;
3. `rag index scans/L/text` into another knowledge base, then `rag eval --knowledge … --mode
   hybrid` on both (qrels.tsv judges the scans, qrels_text.tsv the text versions): the
   ratio of their nDCG@10 is what OCR costs retrieval;
4. with --cer: the character error rate of our loader's text against text/ (NFKC, no
   whitespace, lower case; Levenshtein distance / reference length), per file, in process.

--workers 1 2 repeats step 1 per worker count (pages/s as the cores grow), and reads every
page of the same set in process with 1 and 2 threads (OCR alone); --real indexes
../shared/data/scans/real and asks for a phrase of each file (found in the top 3?);
--mixed-base DIR times `rag index mixed_docs` with the code in DIR (an older checkout) and
with this one, alternating.

    python benchmarks/ocr_scans.py --cer --real --workers 1 2 \\
        --out benchmarks/results/ocr_scans.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCANS = REPO.parent / "shared" / "data" / "scans"
MIXED = REPO.parent / "shared" / "data" / "mixed_docs"
RAG = [sys.executable, "-m", "rag_pipeline.cli"]
# A phrase printed on each real scan or photo (read off the images), and the file it is on.
REAL_PHRASES = {
    "DA-1p.png": "tracking the maleficar for days",
    "layout-parser-paper-fast.jpg": "a unified toolkit for deep learning based document image",
    "double-column-A.jpg": "positions and employees affected by the rules in this subchapter",
    "embedded-images-tables.jpg": "anodic and cathodic polarization curve of stainless steel",
    "table-multi-row-column-cells.png": "low vision dexterity mobility",
    "chi_sim_image.jpeg": "新鲜甘草黄酮养分",
    "pdf-with-ocr-text.pdf": "keep you posted on the progress of the Foundation",
}


def run_measured(command: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float, float]:
    """Run a `rag … --json` command: its JSON, wall seconds, CPU seconds of its process tree."""
    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        times = proc.cpu_times()
                        cpu[proc.pid] = times.user + times.system
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    if process.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} failed: {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1]), wall, sum(cpu.values())


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RAG_DATA_DIR=str(data_dir),
        RAG_MODEL_CACHE_DIR=str(Path(tempfile.gettempdir()) / "rag-bench-models"),
        HF_HUB_OFFLINE="1",
        **extra,
    )
    return env


def index(folder: Path, data_dir: Path, knowledge: str, **extra: str) -> dict[str, Any]:
    report, wall, cpu = run_measured(
        [*RAG, "index", str(folder), "--knowledge", knowledge, "--json"], env_for(data_dir, **extra)
    )
    pages = report.get("pages_ocr", 0)
    return {
        "files": report["files"],
        "errors": report["errors"],
        "pages_ocr": pages,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 1),
        "pages_per_s": round(pages / wall, 3) if pages else None,
        "cpu_s_per_page": round(cpu / pages, 2) if pages else None,
    }


def ndcg(data_dir: Path, knowledge: str, queries: Path, qrels: Path) -> float:
    command = [*RAG, "eval", "--knowledge", knowledge, "--queries", str(queries)]
    command += ["--qrels", str(qrels), "--mode", "hybrid", "--json"]
    report, _, _ = run_measured(command, env_for(data_dir))
    return float(report["runs"][0]["metrics"]["ndcg@10"])


def normalise(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def cer(language: str) -> dict[str, Any]:
    """Character error rate of load_file's text against the reference, per file, in process."""
    from rapidfuzz.distance import Levenshtein

    from rag_pipeline.loaders import load_file

    rates, cpu, pages = [], 0.0, 0
    for path in sorted((SCANS / language / "docs").iterdir()):
        reference = normalise((SCANS / language / "text" / f"{path.stem}.txt").read_text())
        started = time.process_time()
        documents = load_file(path)
        cpu += time.process_time() - started
        pages += len(documents)
        read = normalise("\n".join(d.text for d in documents))
        rates.append(Levenshtein.distance(read, reference) / max(1, len(reference)))
    return {
        "files": len(rates),
        "pages": pages,
        "cer_mean": round(statistics.mean(rates), 4),
        "cer_median": round(statistics.median(rates), 4),
        "cer_worst": round(max(rates), 4),
        "cpu_s_per_page_in_process": round(cpu / max(1, pages), 2),
    }


def ocr_scaling(language: str, threads: list[int]) -> dict[str, Any]:
    """OCR alone, in process: every page of the language's scans read by 1, 2… threads
    (Tesseract releases the GIL), without extraction workers, embedding or writes."""
    from rag_pipeline.loaders import LoadLimits, extract, read_pages

    pages = []
    for path in sorted((SCANS / language / "docs").iterdir()):
        pages.extend(extract(path, limits=LoadLimits()).pages)
    read_pages(tuple(pages[:2]), LoadLimits().ocr, 1)  # models loaded before timing
    out: dict[str, Any] = {}
    for count in threads:
        started = time.perf_counter()
        read_pages(tuple(pages), LoadLimits().ocr, count)
        wall = time.perf_counter() - started
        out[str(count)] = {"pages": len(pages), "wall_s": round(wall, 2)}
        out[str(count)]["pages_per_s"] = round(len(pages) / wall, 3)
    return out


def warm_models(work: Path) -> None:
    """Export the multilingual model once (first use takes ~20 s), outside the timings."""
    folder = work / "warm"
    folder.mkdir()
    (folder / "ko.txt").write_text("도서관 이용 안내와 환불 정책\n", encoding="utf-8")
    (folder / "en.txt").write_text("The refund policy of the library\n", encoding="utf-8")
    for name in ("ko.txt", "en.txt"):
        index(folder / name, work / f"warm-{name}", "warm")


def language_run(language: str, work: Path, with_cer: bool) -> dict[str, Any]:
    base = SCANS / language
    data = work / f"data-{language}"
    result: dict[str, Any] = {"scans": index(base / "docs", data, "scans")}
    result["rerun"] = index(base / "docs", data, "scans")
    result["text"] = index(base / "text", data, "text")
    result["ndcg_scans"] = ndcg(data, "scans", base / "queries.jsonl", base / "qrels.tsv")
    result["ndcg_text"] = ndcg(data, "text", base / "queries.jsonl", base / "qrels_text.tsv")
    result["ndcg_ratio"] = round(result["ndcg_scans"] / result["ndcg_text"], 4)
    if with_cer:
        result["cer"] = cer(language)
    return result


def real_run(work: Path) -> dict[str, Any]:
    data = work / "data-real"
    report = index(SCANS / "real", data, "real")
    found = {}
    for name, phrase in REAL_PHRASES.items():
        command = [*RAG, "query", phrase, "--knowledge", "real", "--top-k", "3", "--json"]
        hits, _, _ = run_measured(command, env_for(data))
        sources = [hit["source"] for hit in hits["hits"]] if isinstance(hits, dict) else []
        found[name] = name in sources
    return {"index": report, "phrase_in_top3": found}


def mixed_run(base: Path, rounds: int, work: Path) -> dict[str, Any]:
    """`rag index mixed_docs` with an older checkout and with this code, alternating."""
    times: dict[str, list[float]] = {"base": [], "now": []}
    for round_ in range(rounds):
        for label, code in (("base", base), ("now", REPO)):
            env = env_for(work / f"mixed-{label}-{round_}", PYTHONPATH=str(code))
            command = [sys.executable, "-m", "rag_pipeline.cli", "index", str(MIXED)]
            command += ["--knowledge", "m", "--json"]
            _, wall, _ = run_measured(command, env)
            times[label].append(round(wall, 2))
    return {
        "seconds": times,
        "best_ratio_now_over_base": round(min(times["now"]) / min(times["base"]), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", nargs="+", default=["ko", "ja", "en"])
    parser.add_argument("--cer", action="store_true")
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--workers", nargs="*", type=int, default=[])
    parser.add_argument("--workers-lang", default="ja")
    parser.add_argument("--mixed-base", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "languages": {}}
    with tempfile.TemporaryDirectory(prefix="ocr-bench-") as tmp:
        work = Path(tmp)
        warm_models(work)
        for language in args.langs:
            results["languages"][language] = language_run(language, work, args.cer)
            print(language, json.dumps(results["languages"][language]), flush=True)
        if args.workers:
            results["ocr_threads"] = ocr_scaling(args.workers_lang, args.workers)
            print("ocr threads", json.dumps(results["ocr_threads"]), flush=True)
        for workers in args.workers:
            folder = SCANS / args.workers_lang / "docs"
            run = index(folder, work / f"data-w{workers}", "w", RAG_WORKERS=str(workers))
            results.setdefault("workers", {})[str(workers)] = run
            print("workers", workers, json.dumps(run), flush=True)
        if args.real:
            results["real"] = real_run(work)
            print("real", json.dumps(results["real"]), flush=True)
        if args.mixed_base:
            results["mixed_docs"] = mixed_run(args.mixed_base, args.rounds, work)
            print("mixed_docs", json.dumps(results["mixed_docs"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
