"""One evaluation from start to end: load the test set, index it, run each mode, report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from rag_pipeline.errors import ConfigError
from rag_pipeline.evaluation.dataset import Dataset, load_beir, load_knowledge_queries
from rag_pipeline.evaluation.report import results_dict, write_report
from rag_pipeline.evaluation.runner import MODES, EvalRun, evaluate_modes, index_dataset
from rag_pipeline.ingest import IndexReport
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.retrieval.fusion import HybridFusion
from rag_pipeline.settings import Settings
from rag_pipeline.types import SearchMode


@dataclass
class EvalResult:
    """What ``run_evaluation`` measured, and what it cost to index the corpus (if it did)."""

    dataset: Dataset
    runs: list[EvalRun]
    # For a BEIR corpus: documents, chunks stored, chunks added now and seconds spent.
    index: dict[str, Any] | None = None
    index_report: IndexReport | None = None
    report_paths: list[Path] = field(default_factory=list)

    @property
    def failed_documents(self) -> int:
        """How many corpus documents could not be indexed."""
        return len(self.index_report.errors) if self.index_report is not None else 0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape printed by ``rag eval --json``."""
        return results_dict(self.dataset, self.runs, self.index)


def load_eval_dataset(
    dataset: str | Path | None = None,
    *,
    split: str = "test",
    knowledge_id: str | None = None,
    queries: str | Path | None = None,
    qrels: str | Path | None = None,
    sample: int | None = None,
    distractors: int = 500,
) -> Dataset:
    """Load a BEIR folder (optionally its first ``sample`` queries), or a knowledge base's set.

    With ``knowledge_id``, ``queries`` and ``qrels`` judge that knowledge base and
    ``dataset`` is ignored.
    """
    if knowledge_id:
        if not (queries and qrels):
            raise ConfigError("evaluating a knowledge base needs queries and qrels files")
        return load_knowledge_queries(queries, qrels, knowledge_id)
    if dataset is None:
        raise ConfigError("give a BEIR dataset folder, or a knowledge id with queries and qrels")
    data = load_beir(dataset, split)
    return data.subset(sample, distractors) if sample else data


def run_evaluation(
    pipeline: Pipeline,
    dataset: str | Path | None = None,
    *,
    split: str = "test",
    knowledge_id: str | None = None,
    queries: str | Path | None = None,
    qrels: str | Path | None = None,
    sample: int | None = None,
    distractors: int = 500,
    modes: Sequence[str] | None = None,
    top_k: int = 100,
    report: str | Path | None = None,
    fusions: Sequence[str] = (),
    label: str = "",
    rerankers: Sequence[str] = (),
) -> EvalResult:
    """Measure retrieval quality per search mode (hybrid fusion, reranker), as ``rag eval`` does.

    A BEIR corpus is indexed into its own collection first (reused when nothing changed);
    a knowledge base is searched as it is. With ``report``, results.json, results.md and
    recall.png are written into that folder. Raises ConfigError for a bad test set or mode,
    StoreError for a knowledge base that does not exist.
    """
    data = load_eval_dataset(
        dataset,
        split=split,
        knowledge_id=knowledge_id,
        queries=queries,
        qrels=qrels,
        sample=sample,
        distractors=distractors,
    )
    index_info = index_report = None
    if not knowledge_id:
        collection, index_report = index_dataset(pipeline, data)
        index_info = {
            "documents": len(data.corpus),
            "chunks": pipeline.store.count(collection),
            "chunks_added": index_report.chunks_added,
            "seconds": round(index_report.seconds, 1),
        }
    runs = evaluate_modes(
        pipeline,
        data,
        cast(Sequence[SearchMode], modes or MODES),  # evaluate_modes checks each name
        top_k=top_k,
        knowledge_id=knowledge_id,
        fusions=cast(Sequence[HybridFusion], fusions),  # evaluate_modes checks each name
        label=label,
        rerankers=rerankers,
    )
    result = EvalResult(data, runs, index_info, index_report)
    if report is not None:
        result.report_paths = write_report(report, data, runs, index_info)
    return result


def compare_embedders(
    settings: Sequence[Settings],
    dataset: str | Path | None = None,
    *,
    report: str | Path | None = None,
    **options: Any,
) -> EvalResult:
    """Run ``run_evaluation`` once per embedder setting and merge them into one result.

    Each embedder indexes its own collection, with its pipeline open only for its own
    run (an embedded store opens one data folder once); rows are prefixed with the
    embedder's name when more than one is compared, so one table and one plot show all.
    """
    if not settings:
        raise ConfigError("give at least one embedder to evaluate")
    names = [s.embedder for s in settings]
    results = []
    for one in settings:
        with Pipeline(one) as pipeline:
            label = one.embedder if len(settings) > 1 else ""
            results.append(run_evaluation(pipeline, dataset, label=label, **options))
    first = results[0]
    indexes = {name: r.index for name, r in zip(names, results, strict=True) if r.index}
    merged = EvalResult(
        first.dataset,
        [run for result in results for run in result.runs],
        first.index if len(results) == 1 else (indexes or None),
        first.index_report,
    )
    if report is not None:
        merged.report_paths = write_report(report, merged.dataset, merged.runs, merged.index)
    return merged
