"""A reranker without a reranking model: our own dense and sparse signals on one fixed scale.

For ``/v1/rerank`` when no cross-encoder is configured. Open WebUI sends it the union of its
whitespace-BM25 and its dense top k; we score each candidate with what our first stage knows
and Open WebUI's does not: a model that reads the text's script (the multilingual one for
Korean or Japanese, where Open WebUI's stock English model reads nothing), and stemmed or
CJK n-gram terms (a Korean stem matches whatever particle is glued to it).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from rag_pipeline.embedding.base import Embedder
from rag_pipeline.embedding.sparse import SparseEncoder
from rag_pipeline.languages import NO_LETTERS, model_scripts, script_of

SIGNALS_MODEL = "rag-signals"

# Cosines of unrelated and of closely matching texts, per model family: e5 models put
# every pair between ~0.7 and ~0.95, MiniLM-style models spread them over 0..1. Mapping
# each onto 0..1 puts both on the scale the lexical signal has (measured on SciFact train
# and half of ko_tydiqa: benchmarks/rerank_signals.py).
_COSINE_RANGES: tuple[tuple[str, float, float], ...] = (("e5", 0.7, 0.95),)
_DEFAULT_RANGE = (0.0, 0.8)


def cosine_range(model: str) -> tuple[float, float]:
    """The (unrelated, matching) cosines of ``model``'s family."""
    name = model.lower().rsplit("/", 1)[-1]
    for family, low, high in _COSINE_RANGES:
        if family in name.replace("_", "-").split("-") or f"{family}onnx" in name:
            return low, high
    return _DEFAULT_RANGE


class SignalReranker:
    """Score = ``dense_weight`` x calibrated cosine + the rest x the query's matched terms.

    0.4 and the cosine ranges were chosen on tuning queries (SciFact train, half of
    ko_tydiqa) over the candidates Open WebUI's hybrid search hands a reranker; 0.3–0.5 all
    scored within 0.01 (benchmarks/rerank_signals.py, benchmarks/RESULTS.md).

    The cosine comes from ``embedder`` when it reads the query's and the documents' scripts,
    else from ``multilingual`` (an embedder, or a function building one on first use). The
    lexical signal is the share of the query's term weight a document matches, each term
    weighted by its BM25 IDF among the documents of the request and by the document's
    saturated term frequency (``SparseEncoder.embed_document``). Both lie in 0..1, so the
    fused score does too, whatever the collection: Open WebUI compares raw scores across
    collections and against its relevance threshold.
    """

    def __init__(
        self,
        embedder: Embedder,
        sparse: SparseEncoder,
        *,
        multilingual: Embedder | Callable[[], Embedder] | None = None,
        dense_weight: float = 0.4,
        max_chars: int = 2000,
    ) -> None:
        """``max_chars``: each document is read up to this many characters (a chunk of
        Open WebUI's default 1,000 whole; the dense models read 256–512 tokens anyway)."""
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be within 0..1, got {dense_weight}")
        self.embedder = embedder
        self.sparse = sparse
        self._multilingual = multilingual
        self.dense_weight = dense_weight
        self.max_chars = max_chars
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return SIGNALS_MODEL

    def dense_model(self, query: str, documents: Sequence[str]) -> Embedder:
        """The embedder that reads every script among ``query`` and ``documents``."""
        reads = model_scripts(self.embedder.model_name)
        if reads is None or self._multilingual is None:
            return self.embedder
        scripts = {script_of(text) for text in (query, *documents)} - {NO_LETTERS}
        return self.embedder if scripts <= reads else self._multilingual_embedder()

    def _multilingual_embedder(self) -> Embedder:
        with self._lock:
            if callable(self._multilingual):  # embedders are not callable; a factory is
                self._multilingual = self._multilingual()
            assert self._multilingual is not None
            return self._multilingual  # type: ignore[return-value]

    def score(self, query: str, documents: Sequence[str]) -> np.ndarray:
        if not documents:
            return np.zeros(0, dtype=np.float32)
        texts = [text[: self.max_chars] for text in documents]
        return (
            self.dense_weight * self.dense_scores(query, texts)
            + (1.0 - self.dense_weight) * self.lexical_scores(query, texts)
        ).astype(np.float32)

    def dense_scores(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """Each document's cosine with the query, mapped from its model's range onto 0..1."""
        embedder = self.dense_model(query, documents)
        vectors = np.asarray(embedder.embed_documents(documents), dtype=np.float32)
        cosines = vectors @ np.asarray(embedder.embed_query(query), dtype=np.float32)
        low, high = cosine_range(embedder.model_name)
        return np.clip((cosines - low) / (high - low), 0.0, 1.0)

    def lexical_scores(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """The IDF-weighted share of the query's terms each document matches, 0..1."""
        terms = self.sparse.embed_query(query).indices
        if not terms:
            return np.zeros(len(documents), dtype=np.float32)
        wanted = set(terms)
        vectors = [self.sparse.embed_document(text) for text in documents]
        weights = [dict(zip(v.indices, v.values, strict=True)) for v in vectors]
        frequency = Counter(term for w in weights for term in w.keys() & wanted)
        total = len(documents)
        # BM25's IDF over the request's documents (+1 inside the log keeps it positive): the
        # collection is not ours to count, and these are the documents being compared.
        idf = {t: math.log(1 + (total - frequency[t] + 0.5) / (frequency[t] + 0.5)) for t in terms}
        norm = sum(idf.values())
        top = self.sparse.k1 + 1  # the saturated term frequency's ceiling
        return np.array(
            [sum(idf[t] * w.get(t, 0.0) for t in terms) / (norm * top) for w in weights],
            dtype=np.float32,
        )
