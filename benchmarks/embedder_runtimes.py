"""Time all-MiniLM-L6-v2 on SciFact chunks: sentence-transformers vs ONNX Runtime vs fastembed.

Run: .venv/bin/python benchmarks/embedder_runtimes.py [--docs 600] [--repeats 2]
fastembed is optional; it conflicts with this venv's huggingface_hub, so install it aside:
    .venv/bin/pip install --target /tmp/fastembed-site --no-deps fastembed loguru mmh3 \\
        py_rust_stemmers
and pass --fastembed-path /tmp/fastembed-site.
Writes benchmarks/results/embedder_runtimes.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag_pipeline.embedding.local import LocalEmbedder
from rag_pipeline.embedding.onnx import OnnxEmbedder, Precision

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
RESULTS = REPO / "benchmarks" / "results" / "embedder_runtimes.json"
FASTEMBED_NAME = "local/all-MiniLM-L6-v2-onnx"
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")


def load_chunks(count: int) -> list[str]:
    """Return the first ``count`` SciFact documents as title + blank line + text."""
    texts = []
    with CORPUS.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            texts.append(record["title"] + "\n\n" + record["text"])
            if len(texts) == count:
                break
    return texts


def cpu_name() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def timed(
    embed: Callable[[list[str]], np.ndarray], texts: list[str], repeats: int
) -> dict[str, Any]:
    """Warm up, then run ``embed`` ``repeats`` times; keep the best wall time and its CPU time."""
    embed(texts[:16])
    best: dict[str, Any] = {}
    walls = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        vectors = embed(texts)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        walls.append(round(wall, 2))
        if not best or wall < best["wall_s"]:
            best = {"wall_s": wall, "cpu_s": cpu, "vectors": vectors}
    best["all_wall_s"] = walls
    return best


def fidelity(vectors: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Return min and mean row cosine of ``vectors`` to ``reference``."""
    cosines = (vectors * reference).sum(axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
    )
    return {"cos_min": float(cosines.min()), "cos_mean": float(cosines.mean())}


def fastembed_folder(onnx_file: Path, embedder: OnnxEmbedder, target: Path) -> Path:
    """Lay out a folder fastembed can load offline: our graph plus the tokenizer files."""
    source = embedder._model_spec().transformer_dir
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.onnx").unlink(missing_ok=True)
    (target / "model.onnx").symlink_to(onnx_file)
    for name in ("tokenizer.json", "config.json", "special_tokens_map.json"):
        shutil.copy(source / name, target / name)
    config = json.loads((source / "tokenizer_config.json").read_text())
    # fastembed truncates at model_max_length (512 here), sentence-transformers at 256.
    config["model_max_length"] = embedder.max_seq_length
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    return target


def load_fastembed(path: str | None) -> tuple[Any, str | None]:
    """Import fastembed (from ``path`` if given); return (module, why-not)."""
    if path:
        sys.path.insert(0, path)
    try:
        import fastembed
        from fastembed.common.model_description import ModelSource, PoolingType

        fastembed.TextEmbedding.add_custom_model(
            model=FASTEMBED_NAME,
            pooling=PoolingType.DISABLED,
            normalization=True,
            sources=ModelSource(hf=FASTEMBED_NAME),
            dim=384,
            model_file="model.onnx",
            output_name="sentence_embedding",
        )
        return fastembed, None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--fastembed-path", default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    texts = load_chunks(args.docs)
    work = Path(tempfile.mkdtemp(prefix="embedder-runtimes-"))
    cache = args.cache_dir or work / "cache"
    runs: list[dict[str, Any]] = []
    meta: dict[str, Any] = {
        "docs": len(texts),
        "repeats": args.repeats,
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "loadavg_start": os.getloadavg(),
        "python": platform.python_version(),
    }
    for package in ("onnxruntime", "torch", "sentence_transformers", "tokenizers"):
        meta[package] = __import__(package).__version__

    def record(
        runtime: str, precision: str, batch: int, spinning: bool | None, result: dict[str, Any]
    ) -> np.ndarray:
        vectors = result.pop("vectors")
        row = {
            "runtime": runtime,
            "precision": precision,
            "batch_size": batch,
            "spinning": spinning,
            "wall_s": round(result["wall_s"], 2),
            "cpu_s": round(result["cpu_s"], 2),
            "docs_per_s": round(len(texts) / result["wall_s"], 1),
            "all_wall_s": result["all_wall_s"],
        }
        row.update({k: round(v, 5) for k, v in fidelity(vectors, reference).items()})
        runs.append(row)
        print(json.dumps(row), flush=True)
        return vectors

    torch_embedder = LocalEmbedder(batch_size=8)
    result = timed(torch_embedder.embed_documents, texts, args.repeats)
    reference = result["vectors"]
    record("sentence-transformers", "fp32", 8, None, result)

    for precision in PRECISIONS:
        started = time.perf_counter()
        OnnxEmbedder(cache_dir=cache, precision=precision).embed_query("export")
        meta[f"export_{precision}_s"] = round(time.perf_counter() - started, 1)
        for batch in args.batch_sizes:
            for spinning in (False, True):
                embedder = OnnxEmbedder(
                    cache_dir=cache,
                    precision=precision,
                    batch_size=batch,
                    allow_spinning=spinning,
                )
                record(
                    "onnxruntime",
                    precision,
                    batch,
                    spinning,
                    timed(embedder.embed_documents, texts, args.repeats),
                )

    # int8 without the offline fusion, as quantize_dynamic alone makes it.
    from rag_pipeline.embedding._onnx_export import quantize_int8

    fp32_path = OnnxEmbedder(cache_dir=cache).onnx_path
    plain_cache = work / "plain-int8"
    plain_folder = plain_cache / fp32_path.parent.name
    plain_folder.mkdir(parents=True)
    quantize_int8(
        OnnxEmbedder(cache_dir=cache)._model_spec(),
        fp32_path,
        plain_folder / "model-int8.onnx",
        fuse=False,
    )
    plain = OnnxEmbedder(cache_dir=plain_cache, precision="int8", batch_size=8)
    record(
        "onnxruntime (int8 unfused)",
        "int8",
        8,
        False,
        timed(plain.embed_documents, texts, args.repeats),
    )

    fastembed, why_not = load_fastembed(args.fastembed_path)
    meta["fastembed"] = getattr(fastembed, "__version__", None) if fastembed else why_not
    if fastembed is not None:
        for precision in PRECISIONS:
            embedder = OnnxEmbedder(cache_dir=cache, precision=precision)
            folder = fastembed_folder(embedder.onnx_path, embedder, work / f"fastembed-{precision}")
            model = fastembed.TextEmbedding(
                FASTEMBED_NAME,
                specific_model_path=str(folder),
                cache_dir=str(work / "fastembed-cache"),
                threads=meta["cores"],
                local_files_only=True,
            )
            for batch in (8, 256) if precision == "fp32" else (8,):

                def embed(items: list[str], size: int = batch, m: Any = model) -> np.ndarray:
                    return np.array(list(m.embed(items, batch_size=size)), dtype=np.float32)

                record("fastembed", precision, batch, True, timed(embed, texts, args.repeats))

    meta["loadavg_end"] = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")

    print(
        f"\n{meta['docs']} SciFact chunks, {meta['cores']} cores ({meta['cpu']}), "
        f"best of {args.repeats}\n"
    )
    print(
        "| runtime | precision | batch | spinning | wall s | CPU s | docs/s | cos min | cos mean |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in runs:
        spin = "-" if row["spinning"] is None else ("on" if row["spinning"] else "off")
        print(
            f"| {row['runtime']} | {row['precision']} | {row['batch_size']} | {spin} | "
            f"{row['wall_s']} | {row['cpu_s']} | {row['docs_per_s']} | "
            f"{row['cos_min']:.4f} | {row['cos_mean']:.4f} |"
        )
    print(
        f"\nexport: fp32 {meta['export_fp32_s']} s, int8 {meta['export_int8_s']} s; "
        "cosines are to sentence-transformers"
    )


if __name__ == "__main__":
    main()
