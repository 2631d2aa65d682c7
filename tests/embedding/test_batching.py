"""Concurrent embedding calls share model batches and get exactly their own vectors back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag_pipeline.embedding.batching import BatchingEmbedder
from rag_pipeline.errors import EmbeddingError


class Recording:
    """The real model, slowed on its first call so that later callers queue up behind it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.batches: list[list[str]] = []
        self.fail_on: set[str] = set()
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def embed_documents(self, texts):
        with self._lock:
            self.calls.append(len(texts))
            self.batches.append(list(texts))
            first = len(self.calls) == 1
        if first:
            time.sleep(0.3)
        if self.fail_on & set(texts):
            raise EmbeddingError("the model refused this batch")
        return self.inner.embed_documents(texts)


@pytest.fixture(scope="module")
def model(local_embedder):
    return local_embedder


def test_concurrent_calls_are_embedded_together_in_order(model) -> None:
    recording = Recording(model)
    batching = BatchingEmbedder(recording)
    requests = [
        [f"upload {i} chunk {j} about tents and boots" for j in range(i % 3 + 1)] for i in range(12)
    ]
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(batching.embed_documents, requests))
    for texts, vectors in zip(requests, results, strict=True):
        assert vectors.shape == (len(texts), 384)
        assert np.allclose(vectors, model.embed_documents(texts), atol=1e-5)
    # 12 callers, far fewer model calls: those who came while it ran shared one batch.
    assert len(recording.calls) < 6
    assert sum(recording.calls) == sum(len(r) for r in requests)
    assert batching.model_name == model.model_name and batching.dimension == 384


def test_a_failed_batch_fails_its_callers_and_the_next_batch_runs(model) -> None:
    recording = Recording(model)
    recording.fail_on = {"poison"}
    batching = BatchingEmbedder(recording, max_batch=4)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(batching.embed_documents, ["slow first"])
        time.sleep(0.05)
        bad = pool.submit(batching.embed_documents, ["poison", "x"])
        with pytest.raises(EmbeddingError):
            bad.result()
        assert first.result().shape == (1, 384)
    assert batching.embed_documents(["fine afterwards"]).shape == (1, 384)


def test_a_large_request_does_not_hold_the_model_from_a_small_one(model) -> None:
    # An API request of many texts and an upload's one chunk arriving while it runs: the
    # chunk goes in the next model batch, not after every batch of the large request.
    recording = Recording(model)
    batching = BatchingEmbedder(recording, max_batch=8)
    large = [f"api text {i} about rivers and bridges" for i in range(64)]
    with ThreadPoolExecutor(2) as pool:
        big = pool.submit(batching.embed_documents, large)
        time.sleep(0.1)  # the first batch of the large request is in the (slowed) model
        small = pool.submit(batching.embed_documents, ["an upload's only chunk"])
        chunk = model.embed_documents(["an upload's only chunk"])
        assert np.allclose(small.result(), chunk, atol=1e-5)
        assert np.allclose(big.result(), model.embed_documents(large), atol=1e-5)
    assert max(recording.calls) <= 8  # never the whole request at once
    first_with_small = next(
        n for n, batch in enumerate(recording.batches) if "an upload's only chunk" in batch
    )
    assert first_with_small == 1, recording.calls
