"""Reports of evaluation runs: a terminal table, JSON, Markdown and a recall@k plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_pipeline.evaluation.dataset import Dataset
from rag_pipeline.evaluation.metrics import METRICS
from rag_pipeline.evaluation.runner import EvalRun


def results_dict(
    dataset: Dataset, runs: Sequence[EvalRun], index: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return the JSON shape of ``rag eval --json`` (``index``: what indexing cost, if run)."""
    data: dict[str, Any] = {"dataset": dataset.name, "split": dataset.split}
    if index is not None:
        data["index"] = index
    data["runs"] = [run.to_dict() for run in runs]
    return data


def markdown_table(runs: Sequence[EvalRun]) -> str:
    """Return one row per run with every metric, the best value of each in bold."""
    best = {m: max(r.metrics[m] for r in runs) for m in METRICS}
    header = "| run | " + " | ".join(METRICS) + " | query p50 ms |"
    lines = [header, "|" + "---|" * (len(METRICS) + 2)]
    for run in runs:
        cells = []
        for metric in METRICS:
            value = f"{run.metrics[metric]:.4f}"
            cells.append(
                f"**{value}**" if len(runs) > 1 and run.metrics[metric] == best[metric] else value
            )
        lines.append(f"| {run.name} | " + " | ".join(cells) + f" | {run.latency_ms_p50:.1f} |")
    return "\n".join(lines)


def print_table(dataset: Dataset, runs: Sequence[EvalRun]) -> None:
    """Print the comparison table to the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{dataset.name} ({dataset.split}, {runs[0].queries} queries)")
    table.add_column("run", no_wrap=True)
    for metric in METRICS:
        table.add_column(metric, justify="right")
    table.add_column("p50 ms", justify="right")
    best = {m: max(r.metrics[m] for r in runs) for m in METRICS}
    for run in runs:
        cells = [
            f"[bold green]{run.metrics[m]:.4f}[/]"
            if run.metrics[m] == best[m] and len(runs) > 1
            else f"{run.metrics[m]:.4f}"
            for m in METRICS
        ]
        table.add_row(run.name, *cells, f"{run.latency_ms_p50:.1f}")
    Console().print(table)


def write_report(
    folder: str | Path,
    dataset: Dataset,
    runs: Sequence[EvalRun],
    index: dict[str, Any] | None = None,
) -> list[Path]:
    """Write results.json, results.md and recall.png into ``folder``; return the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    data = results_dict(dataset, runs, index)
    json_path = out / "results.json"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path = out / "results.md"
    settings = runs[0].settings
    models = ", ".join(f"`{m}`" for m in dict.fromkeys(r.settings.get("model") for r in runs))
    fusions = dict.fromkeys(r.settings["fusion"] for r in runs if "fusion" in r.settings)
    fusion = "/".join(f.upper() for f in fusions)
    md_path.write_text(
        f"# Retrieval evaluation: {dataset.name} ({dataset.split})\n\n"
        f"{runs[0].queries} queries, {len(dataset.corpus) or 'knowledge base'} documents; "
        f"model {models}, chunks {settings.get('chunk_size')}/"
        f"{settings.get('chunk_overlap')} tokens"
        + (f"; hybrid fusion {fusion}" if fusion else "")
        + ".\n\n"
        + _index_line(index)
        + markdown_table(runs)
        + "\n\n![recall@k](recall.png)\n",
        encoding="utf-8",
    )
    png_path = out / "recall.png"
    plot_recall(runs, png_path, title=f"{dataset.name} ({dataset.split})")
    return [json_path, md_path, png_path]


def _index_line(index: dict[str, Any] | None) -> str:
    if not index:
        return ""
    if "chunks_added" not in index:  # several embedders: one line each
        return "".join(f"{name}: " + _index_line(info) for name, info in index.items() if info)
    if index["chunks_added"] == 0:
        return f"Index reused: {index['chunks']} chunks already stored.\n\n"
    return (
        f"Indexing: {index['documents']} documents → {index['chunks_added']} chunks in "
        f"{index['seconds']:.0f} s ({index['documents'] / max(index['seconds'], 1e-9):.1f} "
        "documents/s).\n\n"
    )


def plot_recall(runs: Sequence[EvalRun], path: Path, title: str) -> None:
    """Draw recall@k against k (log scale) with one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for run in runs:
        ks = sorted(run.recall_curve)
        label = f"{run.name} (nDCG@10 {run.metrics['ndcg@10']:.3f})"
        ax.plot(ks, [run.recall_curve[k] for k in ks], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xticks(sorted(runs[0].recall_curve))
    ax.set_xticklabels([str(k) for k in sorted(runs[0].recall_curve)])
    ax.set_xlabel("k (documents retrieved)")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
