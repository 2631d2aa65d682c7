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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class Config:
    """One embedder setting to time, and what it measured."""

    runtime: str
    precision: str
    batch_size: int
    spinning: bool | None
    embed: Callable[[list[str]], np.ndarray]
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    vectors: np.ndarray | None = None

    def run(self, texts: list[str]) -> None:
        """Embed ``texts`` once, recording wall and process CPU time."""
        wall, cpu = time.perf_counter(), time.process_time()
        self.vectors = self.embed(texts)
        self.walls.append(time.perf_counter() - wall)
        self.cpus.append(time.process_time() - cpu)


def quantize_fused(source: Path, target: Path) -> None:
    """Fuse attention, LayerNorm and GELU for BERT, then quantise to int8 (QAttention)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = target.with_name("fused-fp32.onnx")
    optimize_model(
        str(source), model_type="bert", num_heads=12, hidden_size=384, opt_level=0
    ).save_model_to_file(str(fused))
    quantize_dynamic(
        fused,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        # Shape inference cannot type the outputs of the fused contrib ops.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    fused.unlink()


# VmHWM, not ru_maxrss: the latter survives exec and would report the benchmark's own peak.
COLD_START = """
from rag_pipeline.embedding.{module} import {cls}
{cls}({args}).embed_query("how long until I get my money back?")
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(int(status) / 1024)
"""


def cold_start(module: str, cls: str, args: str, repeats: int) -> dict[str, float]:
    """Time a fresh process from start to its first query vector; report its peak RSS."""
    script = COLD_START.format(module=module, cls=cls, args=args)
    best: tuple[float, float] | None = None
    for _ in range(repeats):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
        )
        took, rss = time.perf_counter() - started, float(out.stdout.split()[-1])
        best = (took, rss) if best is None or took < best[0] else best
    assert best is not None
    return {"first_query_s": round(best[0], 2), "peak_rss_mib": round(best[1])}


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
    meta: dict[str, Any] = {
        "docs": len(texts),
        "repeats": args.repeats,
        "cpu": cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }
    for package in ("onnxruntime", "torch", "sentence_transformers", "tokenizers"):
        meta[package] = __import__(package).__version__

    configs = [
        Config(
            "sentence-transformers", "fp32", 8, None, LocalEmbedder(batch_size=8).embed_documents
        )
    ]
    for precision in PRECISIONS:
        started = time.perf_counter()
        OnnxEmbedder(cache_dir=cache, precision=precision).embed_query("export")
        meta[f"export_{precision}_s"] = round(time.perf_counter() - started, 1)
        for batch in args.batch_sizes:
            for spinning in (False, True):
                embedder = OnnxEmbedder(
                    cache_dir=cache, precision=precision, batch_size=batch, allow_spinning=spinning
                )
                configs.append(
                    Config("onnxruntime", precision, batch, spinning, embedder.embed_documents)
                )

    # The alternative int8 recipe: ONNX Runtime's BERT fusions first, then quantisation.
    fp32 = OnnxEmbedder(cache_dir=cache)
    fused_cache = work / "fused-int8"
    fused_folder = fused_cache / fp32.onnx_path.parent.name
    fused_folder.mkdir(parents=True)
    quantize_fused(fp32.onnx_path, fused_folder / "model-int8.onnx")
    for spinning in (False, True):
        fused = OnnxEmbedder(
            cache_dir=fused_cache, precision="int8", batch_size=8, allow_spinning=spinning
        )
        configs.append(
            Config("onnxruntime, fused then int8", "int8", 8, spinning, fused.embed_documents)
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

                # fastembed leaves ONNX Runtime's default, spinning on.
                configs.append(Config("fastembed", precision, batch, True, embed))

    for config in configs:
        config.embed(texts[:16])  # load and warm up
    # Round-robin, so that load from other processes spreads over every config alike.
    for repeat in range(args.repeats):
        for config in configs:
            config.run(texts)
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)

    reference = configs[0].vectors
    assert reference is not None
    runs: list[dict[str, Any]] = []
    for config in configs:
        assert config.vectors is not None
        best = int(np.argmin(config.walls))
        row = {
            "runtime": config.runtime,
            "precision": config.precision,
            "batch_size": config.batch_size,
            "spinning": config.spinning,
            "wall_s": round(config.walls[best], 2),
            "cpu_s": round(config.cpus[best], 2),
            "docs_per_s": round(len(texts) / config.walls[best], 1),
            "all_wall_s": [round(w, 2) for w in config.walls],
        }
        row.update({k: round(v, 5) for k, v in fidelity(config.vectors, reference).items()})
        runs.append(row)

    meta["cold_start"] = {
        "sentence-transformers": cold_start("local", "LocalEmbedder", "", args.repeats),
        "onnxruntime fp32": cold_start(
            "onnx", "OnnxEmbedder", f"cache_dir={str(cache)!r}", args.repeats
        ),
        "onnxruntime int8": cold_start(
            "onnx", "OnnxEmbedder", f"cache_dir={str(cache)!r}, precision='int8'", args.repeats
        ),
    }
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")

    print(
        f"\n{meta['docs']} SciFact chunks, {meta['cores']} cores ({meta['cpu']}), "
        f"best of {args.repeats}\n"
    )
    print(
        "| runtime | precision | batch | spinning | best wall s | CPU s | docs/s | all walls s "
        "| cos min | cos mean |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in runs:
        spin = "-" if row["spinning"] is None else ("on" if row["spinning"] else "off")
        print(
            f"| {row['runtime']} | {row['precision']} | {row['batch_size']} | {spin} | "
            f"{row['wall_s']} | {row['cpu_s']} | {row['docs_per_s']} | "
            f"{' / '.join(str(w) for w in row['all_wall_s'])} | "
            f"{row['cos_min']:.4f} | {row['cos_mean']:.4f} |"
        )
    print(
        f"\nexport: fp32 {meta['export_fp32_s']} s, int8 {meta['export_int8_s']} s; "
        "cosines are to sentence-transformers"
    )
    print("\n| fresh process | start to first query s | peak RSS MiB |\n|---|---|---|")
    for name, cold in meta["cold_start"].items():
        print(f"| {name} | {cold['first_query_s']} | {cold['peak_rss_mib']} |")


if __name__ == "__main__":
    main()
