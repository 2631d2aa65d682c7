"""Retrieval evaluation: datasets, metrics, runs and reports."""

from __future__ import annotations

from rag_pipeline.evaluation.dataset import Dataset, load_beir, load_knowledge_queries
from rag_pipeline.evaluation.metrics import METRICS, evaluate, recall_curve
from rag_pipeline.evaluation.orchestrate import EvalResult, load_eval_dataset, run_evaluation
from rag_pipeline.evaluation.runner import EvalRun, evaluate_modes, index_dataset

__all__ = [
    "METRICS",
    "Dataset",
    "EvalResult",
    "EvalRun",
    "evaluate",
    "evaluate_modes",
    "index_dataset",
    "load_beir",
    "load_eval_dataset",
    "load_knowledge_queries",
    "recall_curve",
    "run_evaluation",
]
