"""Texts embedded before, answered from memory: a bounded cache in front of an embedder."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

import numpy as np
from cachetools import LRUCache

from rag_pipeline.embedding.base import Embedder


def _key(text: str) -> bytes:
    # A digest, not the text: a long chunk costs 16 bytes of key instead of its length.
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CachedEmbedder:
    """Answer ``embed_documents`` for texts seen before from memory and embed only the rest.

    For the server's embedding API: Open WebUI embeds each file's chunks twice, into the
    file's own collection and again into a knowledge base's, so as its embedding engine
    half of our work would be texts embedded minutes before. Queries are not cached.
    """

    def __init__(self, inner: Embedder, max_entries: int = 20_000) -> None:
        self.inner = inner
        self._cache: LRUCache[bytes, np.ndarray] | None = (
            LRUCache(maxsize=max_entries) if max_entries > 0 else None
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._cache is None:
            self.misses += len(texts)
            return np.asarray(self.inner.embed_documents(texts), dtype=np.float32)
        keys = [_key(t) for t in texts]
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for index, key in enumerate(keys):
                vector = self._cache.get(key)
                if vector is not None:
                    found[index] = vector
            self.hits += len(found)
            self.misses += len(texts) - len(found)
        missing = [i for i in range(len(texts)) if i not in found]
        # Each distinct missing text once (a batch may repeat one, e.g. empty chunks).
        pending: dict[bytes, str] = {}
        for index in missing:
            pending.setdefault(keys[index], texts[index])
        if pending:
            fresh = np.asarray(self.inner.embed_documents(list(pending.values())), dtype=np.float32)
            by_key = dict(zip(pending, fresh, strict=True))
            with self._lock:
                for key, vector in by_key.items():
                    self._cache[key] = vector.copy()  # not a view pinning the batch
            for index in missing:
                found[index] = by_key[keys[index]]
        return np.stack([found[i] for i in range(len(texts))])
