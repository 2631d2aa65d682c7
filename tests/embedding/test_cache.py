"""CachedEmbedder: texts seen before come from memory, the rest from the real model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rag_pipeline.embedding.cache import CachedEmbedder
from tests.wrapped import Wrapped


class Recording(Wrapped):
    """The real embedder, remembering which texts reached it."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.seen: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += texts
        return self.inner.embed_documents(texts)


@pytest.fixture
def model(local_embedder) -> Recording:
    return Recording(local_embedder)


def test_a_text_is_embedded_once_and_answered_from_memory_after(
    model: Recording, local_embedder
) -> None:
    cached = CachedEmbedder(model, max_entries=100)
    first = cached.embed_documents(["otters hold hands", "bread rises", "otters hold hands"])
    assert model.seen == ["otters hold hands", "bread rises"]  # a repeat in one call too
    again = cached.embed_documents(["bread rises", "lava flows", "otters hold hands"])
    assert model.seen[2:] == ["lava flows"]
    assert (cached.hits, cached.misses) == (2, 4)  # a repeat in the first call missed too
    want = local_embedder.embed_documents(["otters hold hands", "bread rises", "lava flows"])
    assert np.allclose(first, want[[0, 1, 0]], atol=1e-6)
    assert np.allclose(again, want[[1, 2, 0]], atol=1e-6)
    # Callers get copies: changing an answer does not change what is cached.
    again[:] = 0
    assert np.allclose(cached.embed_documents(["lava flows"])[0], want[2], atol=1e-6)


def test_the_least_recently_used_text_leaves_first(model: Recording) -> None:
    cached = CachedEmbedder(model, max_entries=2)
    cached.embed_documents(["a", "b"])
    cached.embed_documents(["a"])  # a is now the most recent
    cached.embed_documents(["c"])  # b leaves
    model.seen.clear()
    cached.embed_documents(["a", "b", "c"])
    assert model.seen == ["b"]


def test_zero_entries_is_off_and_queries_are_never_cached(model: Recording) -> None:
    cached = CachedEmbedder(model, max_entries=0)
    cached.embed_documents(["a"])
    cached.embed_documents(["a"])
    assert model.seen == ["a", "a"] and cached.hits == 0
    assert cached.embed_documents([]).shape == (0, model.dimension)
    assert cached.embed_query("a").shape == (model.dimension,)
    assert cached.model_name == model.model_name
