"""Find the chunks that answer a query in one or more collections."""

from __future__ import annotations

from collections.abc import Sequence

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.embedding.sparse import SparseEncoder
from rag_pipeline.errors import ConfigError, NotFoundError
from rag_pipeline.store.base import (
    Fusion,
    SearchMode,
    VectorStore,
    check_model,
)
from rag_pipeline.types import Hit, SearchScope


class Retriever:
    """Embed a query and search collections in the store."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        sparse_encoder: SparseEncoder | None = None,
        mode: SearchMode = "dense",
        fusion: Fusion = "dbsf",
        candidates: int = 100,
        min_similarity: float | None = None,
    ) -> None:
        if mode not in ("dense", "sparse", "hybrid"):
            raise ConfigError(f"unknown search mode {mode!r}: use dense, sparse or hybrid")
        self.store = store
        self.embedder = embedder
        self.mode = mode
        self.fusion = fusion
        self.candidates = candidates
        # Cosine similarity, not ``Hit.score``: fused scores are normalised per query, so
        # only the similarity can tell an off-topic query (benchmarks/threshold_topk.py).
        self.min_similarity = min_similarity or None
        self.sparse_encoder = sparse_encoder

    def search(
        self,
        query: str,
        collections: Sequence[str | SearchScope],
        *,
        top_k: int = 5,
        mode: SearchMode | None = None,
    ) -> list[Hit]:
        """Return the best ``top_k`` chunks over all ``collections``, embedding the query once."""
        groups = self.search_each(query, collections, top_k=top_k, mode=mode)
        hits = [hit for group in groups for hit in group]
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:top_k]

    def search_each(
        self,
        query: str,
        collections: Sequence[str | SearchScope],
        *,
        top_k: int = 5,
        mode: SearchMode | None = None,
    ) -> list[list[Hit]]:
        """Return the best ``top_k`` chunks of each collection or scope, in order, for one query.

        The query is embedded once and each collection's model checked once, however many
        scopes there are (a chat naming N files used to embed its question N times).
        """
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        mode = mode or self.mode
        scopes = [c if isinstance(c, SearchScope) else SearchScope(c) for c in collections]
        for name in dict.fromkeys(scope.collection for scope in scopes):
            # Model and dimension only: an exact count here cost ~1 ms a query.
            described = self.store.collection_model(name)
            if described is None:
                raise NotFoundError(f"knowledge {name!r} does not exist (index something into it)")
            check_model(name, described, self.embedder.model_name, self.embedder.dimension)
        dense = self.embedder.embed_query(query) if mode != "sparse" else None
        sparse = None
        if mode != "dense":
            if self.sparse_encoder is None:
                raise ConfigError(f"search mode {mode!r} needs a sparse encoder")
            sparse = self.sparse_encoder.embed_query(query)
        groups: list[list[Hit]] = []
        for scope in scopes:
            hits = self.store.search(
                scope.collection,
                dense=dense,
                sparse=sparse,
                limit=top_k,
                mode=mode,
                where=scope.where,
                candidates=max(self.candidates, top_k),
                fusion=self.fusion,
            )
            for hit in hits:
                hit.metadata.setdefault("knowledge_id", scope.collection)
            if self.min_similarity is not None:
                # Sparse-only hits carry no similarity; the threshold does not judge them.
                hits = [
                    h for h in hits if h.similarity is None or h.similarity >= self.min_similarity
                ]
            groups.append(hits)
        return groups
