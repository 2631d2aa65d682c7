"""Find the chunks that answer a query in one or more collections."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
from cachetools import TTLCache

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.embedding.choice import EmbedderChoice
from rag_pipeline.embedding.sparse import SparseEncoder
from rag_pipeline.errors import ConfigError, NotFoundError
from rag_pipeline.languages import model_leads, model_scripts, script_mix, script_of
from rag_pipeline.retrieval.fusion import FUSIONS, HalfWeights, HybridFusion, fusion_weights
from rag_pipeline.retrieval.rerank import Reranker, rerank
from rag_pipeline.store.base import VectorStore, check_model
from rag_pipeline.types import Hit, SearchMode, SearchScope

# A collection's language mix is re-counted at most this often: it changes slowly, and
# counting costs a facet request per query otherwise (an exact count over the whole
# collection: 3–6 ms at 20k chunks, growing with it; benchmarks/scale_curve.py).
_MIX_TTL_SECONDS = 60.0


class MixCache:
    """Each collection's language mix, remembered for a minute (cachetools' TTLCache under a
    lock). A pipeline hands one to every retriever it builds: ``Pipeline.query`` builds a
    retriever per call, so a cache per retriever never answered."""

    def __init__(self, ttl: float = _MIX_TTL_SECONDS, maxsize: int = 4096) -> None:
        self._cache: TTLCache[str, dict[str, float]] = TTLCache(maxsize=maxsize, ttl=ttl)
        self._lock = threading.Lock()

    def get(self, collection: str, count: Callable[[], dict[str, float]]) -> dict[str, float]:
        """The remembered mix of ``collection``, or ``count()`` it and remember it."""
        with self._lock:
            mix = self._cache.get(collection)
        if mix is None:
            mix = count()
            with self._lock:
                self._cache[collection] = mix
        return mix


class Retriever:
    """Embed a query and search collections in the store.

    Given an ``EmbedderChoice`` (RAG_EMBEDDER=auto), each collection is queried with the
    one of its embedders that filled it; a query is embedded once per model needed. Given a
    ``reranker``, each collection's first ``rerank_candidates`` hits are reordered by it and
    every hit's score is the reranker's (one scale across collections).
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder | EmbedderChoice,
        *,
        sparse_encoder: SparseEncoder | None = None,
        mode: SearchMode = "dense",
        fusion: HybridFusion = "adaptive",
        candidates: int = 100,
        min_similarity: float | None = None,
        reranker: Reranker | None = None,
        rerank_candidates: int = 30,
        mixes: MixCache | None = None,
    ) -> None:
        if rerank_candidates < 1:
            raise ConfigError(f"rerank_candidates must be >= 1, got {rerank_candidates}")
        if mode not in ("dense", "sparse", "hybrid"):
            raise ConfigError(f"unknown search mode {mode!r}: use dense, sparse or hybrid")
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}: use {', '.join(FUSIONS)}")
        self.store = store
        self.choice: EmbedderChoice | None = None
        if isinstance(embedder, EmbedderChoice):
            self.choice, embedder = embedder, embedder.default
        self.embedder: Embedder = embedder
        self.mode = mode
        self.fusion = fusion
        self.candidates = candidates
        # Cosine similarity, not ``Hit.score``: fused scores are normalised per query, so
        # only the similarity can tell an off-topic query (benchmarks/threshold_topk.py).
        self.min_similarity = min_similarity or None
        self.sparse_encoder = sparse_encoder
        self.reranker = reranker
        self.rerank_candidates = rerank_candidates
        # Shared by every retriever of one pipeline (see MixCache).
        self.mixes = mixes if mixes is not None else MixCache()

    def language_mix(self, collection: str) -> dict[str, float]:
        """Return each script's share of a collection's chunks (cached for a minute)."""
        return self.mixes.get(
            collection, lambda: script_mix(self.store.value_counts(collection, "script"))
        )

    def embedder_for(self, collection: str) -> Embedder:
        """Return the embedder to query ``collection`` with; refuse one of another model."""
        described = self.store.collection_model(collection)
        if described is None:
            raise NotFoundError(
                f"knowledge {collection!r} does not exist (index something into it)"
            )
        embedder = self.embedder
        if self.choice is not None:
            embedder = self.choice.for_model(described[0]) or embedder
        check_model(collection, described, embedder.model_name, embedder.dimension)
        return embedder

    def halves(self, query: str, collection: str, model: str | None = None) -> HalfWeights:
        """Which halves of a hybrid search take part for ``query`` in ``collection`` (whose
        model is ``model``; default: this retriever's embedder's)."""
        model = model or self.embedder.model_name
        return fusion_weights(
            script_of(query),
            model_scripts(model),
            self.language_mix(collection),
            dense_leads=model_leads(model),
        )

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
        # Model and dimension only: an exact count here cost ~1 ms a query.
        embedders = {
            name: self.embedder_for(name)
            for name in dict.fromkeys(scope.collection for scope in scopes)
        }
        # Per scope, the mode each search runs in: adaptive fusion leaves out a half that
        # cannot read the query (a Korean question to an English-only model is answered
        # by its sparse half alone), and then the query is not even embedded.
        modes: list[SearchMode] = [mode] * len(scopes)
        weights = [(1, 1)] * len(scopes)
        floors = [0.0] * len(scopes)
        if mode == "hybrid" and self.fusion == "adaptive":
            halves = [
                self.halves(query, s.collection, embedders[s.collection].model_name) for s in scopes
            ]
            modes = [_mode_of(h) for h in halves]
            weights = [(max(h.dense, 1), max(h.sparse, 1)) for h in halves]
            floors = [h.sparse_floor for h in halves]
        # One query vector per model the searched collections need.
        vectors: dict[str, np.ndarray] = {}
        for scope, scope_mode in zip(scopes, modes, strict=True):
            embedder = embedders[scope.collection]
            if scope_mode != "sparse" and embedder.model_name not in vectors:
                vectors[embedder.model_name] = embedder.embed_query(query)
        sparse = None
        if any(m != "dense" for m in modes):
            if self.sparse_encoder is None:
                raise ConfigError(f"search mode {mode!r} needs a sparse encoder")
            sparse = self.sparse_encoder.embed_query(query)
        groups: list[list[Hit]] = []
        terms = len(sparse.indices) if sparse is not None else 0
        # The first stage hands the second more candidates than are kept.
        limit = max(top_k, self.rerank_candidates) if self.reranker is not None else top_k
        for scope, scope_mode, scope_weights, floor in zip(
            scopes, modes, weights, floors, strict=True
        ):
            hits = self.store.search(
                scope.collection,
                dense=vectors.get(embedders[scope.collection].model_name),
                sparse=sparse,
                limit=limit,
                mode=scope_mode,
                where=scope.where,
                candidates=max(self.candidates, limit),
                fusion="rrf" if self.fusion == "rrf" else "dbsf",
                weights=scope_weights,
                # Per query term: a sparse score is a sum over the terms a chunk matches.
                sparse_floor=floor * terms,
            )
            for hit in hits:
                hit.metadata.setdefault("knowledge_id", scope.collection)
            if self.min_similarity is not None:
                # Sparse-only hits carry no similarity; the threshold does not judge them.
                hits = [
                    h for h in hits if h.similarity is None or h.similarity >= self.min_similarity
                ]
            if self.reranker is not None:
                hits = rerank(self.reranker, query, hits, top_k)
            groups.append(hits)
        return groups


def _mode_of(halves: HalfWeights) -> SearchMode:
    if not halves.dense:
        return "sparse"
    if not halves.sparse:
        return "dense"
    return "hybrid"
