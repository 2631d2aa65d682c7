"""What ``/v1/rerank`` does: the configured reranker, or our own signals when there is none
or when it fails (Open WebUI drops to plain vector search on any reranker error)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rag_pipeline.errors import RerankError
from rag_pipeline.retrieval.rerank import Reranker

log = logging.getLogger(__name__)


class RerankService:
    """Scores documents for a query with the server's reranker."""

    def __init__(self, configured: Reranker | None, signals: Reranker) -> None:
        """``configured``: RAG_RERANKER's model (None: none); ``signals``: ours, the
        fallback."""
        self.configured = configured
        self.signals = signals

    @property
    def model_name(self) -> str:
        """The reranking model clients name (and ``/v1/models`` lists)."""
        return (self.configured or self.signals).model_name

    def score(self, query: str, documents: Sequence[str]) -> tuple[np.ndarray, str]:
        """One score per document and the name of the model that gave them."""
        if self.configured is not None:
            try:
                return self.configured.score(query, documents), self.configured.model_name
            except RerankError as exc:
                # An error answer would cost the client its whole second stage; ours is a
                # weaker ranking on the same 0..1 scale, and the answer's model says so.
                log.warning("reranker %s failed, scored by signals: %s", self.model_name, exc)
        return self.signals.score(query, documents), self.signals.model_name
