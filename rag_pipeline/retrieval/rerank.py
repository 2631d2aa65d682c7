"""The second retrieval stage: a reranker reorders the first stage's candidates.

Every reranker answers one score per document on one absolute scale (higher is better):
scores of several requests, or of several collections, are compared as they are (Open WebUI
merges collections by the raw score and cuts them at ``RAG_RELEVANCE_THRESHOLD``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from rag_pipeline.errors import ConfigError, RerankError
from rag_pipeline.types import Hit

if TYPE_CHECKING:
    from rag_pipeline.embedding.base import Embedder
    from rag_pipeline.embedding.sparse import SparseEncoder
    from rag_pipeline.settings import Settings


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, document) pairs; a cross-encoder, a reranking server, or our signals."""

    @property
    def model_name(self) -> str:
        """The model's name, as answers and ``/v1/models`` report it."""
        ...

    def score(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """Return one float32 score per document, in order, on the model's absolute scale."""
        ...


def rerank(reranker: Reranker, query: str, hits: Sequence[Hit], top_k: int) -> list[Hit]:
    """Return the best ``top_k`` of ``hits`` by ``reranker``'s score, best first.

    Each hit's ``score`` becomes the reranker's; the first stage's is kept in its metadata
    as ``retrieval_score``. Hits of equal score keep their first-stage order.
    """
    if not hits:
        return []
    scores = np.asarray(reranker.score(query, [hit.text for hit in hits]), dtype=np.float32)
    if scores.shape != (len(hits),) or not np.isfinite(scores).all():
        raise RerankError(
            f"reranker {reranker.model_name!r} returned {scores.shape[0] if scores.ndim else 0} "
            f"scores (or non-finite ones) for {len(hits)} documents"
        )
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [
        replace(
            hits[i],
            score=float(scores[i]),
            metadata={**hits[i].metadata, "retrieval_score": hits[i].score},
        )
        for i in order
    ]


# The one list of rerankers (RAG_RERANKER): settings validate against it, make_reranker
# builds from it.
RERANKER_NAMES = ("none", "signals", "local", "http")


def make_reranker(
    settings: Settings,
    kind: str | None = None,
    *,
    embedder: Embedder | None = None,
    multilingual: Embedder | Callable[[], Embedder] | None = None,
    sparse: SparseEncoder | None = None,
) -> Reranker | None:
    """The reranker ``kind`` (default: the one ``settings`` name), None for "none".

    "signals" scores with ``embedder`` (and ``multilingual`` for text it cannot read) and
    ``sparse``; "local" and "http" read their model and URL from ``settings``.
    """
    kind = kind or settings.reranker
    if kind == "none":
        return None
    if kind == "http":
        from rag_pipeline.retrieval.http_rerank import HTTPReranker

        if not settings.reranker_url:
            raise ConfigError("reranker 'http' needs RAG_RERANKER_URL")
        return HTTPReranker(
            settings.reranker_url,
            settings.reranker_model or "",
            api=settings.reranker_api,
            api_key=settings.reranker_api_key,
            timeout=settings.reranker_timeout,
        )
    if kind == "local":
        from rag_pipeline.retrieval.local_rerank import LocalReranker

        if not settings.reranker_model:
            raise ConfigError("reranker 'local' needs RAG_RERANKER_MODEL (a cross-encoder)")
        return LocalReranker(
            settings.reranker_model,
            cache_dir=settings.model_cache_dir or settings.data_dir / "models",
            precision=settings.reranker_precision,
            threads=settings.embedding_threads,
        )
    if kind == "signals":
        from rag_pipeline.retrieval.signals import SignalReranker

        if embedder is None or sparse is None:
            raise ConfigError("the signals reranker needs an embedder and a sparse encoder")
        return SignalReranker(embedder, sparse, multilingual=multilingual)
    raise ConfigError(f"unknown reranker {kind!r}: use {', '.join(RERANKER_NAMES)}")
