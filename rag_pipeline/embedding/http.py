"""Embedders behind HTTP: Ollama's /api/embed and OpenAI-compatible /embeddings.

Timeouts and retries are ``JsonEndpoint``'s (rag_pipeline/_http.py). An answer that arrived
but is wrong (malformed JSON, another number of vectors than texts, another dimension) is
not retried: it raises EmbeddingError naming the endpoint and what was wrong.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import httpx
import numpy as np

from rag_pipeline._http import JsonEndpoint
from rag_pipeline.embedding.base import as_matrix, default_prefixes
from rag_pipeline.errors import ConfigError, EmbeddingError


class _HttpEmbedder:
    """Batching, bounded concurrency and retries shared by the HTTP embedders."""

    endpoint: str = ""
    #: What a good answer holds, for error messages.
    answer_shape: str = ""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        retry_deadline: float = 120.0,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``timeout`` and the retry arguments are ``JsonEndpoint``'s (rag_pipeline/_http.py)."""
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"embedding base URL must start with http:// or https://: {base_url}")
        if batch_size < 1 or concurrency < 1:
            raise ConfigError("batch_size and concurrency must be >= 1")
        self.base_url = base_url.rstrip("/")
        self._model = model
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._endpoint = JsonEndpoint(
            self.base_url + self.endpoint,
            what="embedding endpoint",
            error=EmbeddingError,
            api_key=api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            retry_deadline=retry_deadline,
            transport=transport,
        )
        query_default, passage_default = default_prefixes(model)
        self.query_prefix = query_default if query_prefix is None else query_prefix
        self.passage_prefix = passage_default if passage_prefix is None else passage_prefix
        self._dimension: int | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The full URL embeddings are posted to."""
        return self.base_url + self.endpoint

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed_query("dimension probe")
        assert self._dimension is not None
        return self._dimension

    def _body(self, texts: list[str], input_type: str) -> dict[str, Any]:
        raise NotImplementedError

    def _vectors(self, data: Any) -> list[list[float]]:
        raise NotImplementedError

    def _post(
        self, texts: list[str], input_type: str, abort: threading.Event | None = None
    ) -> np.ndarray:
        """One batch, retried while the failure is transient and the budget allows."""
        return self._check(self._endpoint.post(self._body(texts, input_type), abort), len(texts))

    def _check(self, data: Any, count: int) -> np.ndarray:
        """The answer's vectors, refusing anything but ``count`` rows of the known size."""
        fail = self._endpoint.fail
        try:
            rows = self._vectors(data)
            if not isinstance(rows, list):
                raise TypeError(type(rows).__name__)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise fail(f"answered JSON without {self.answer_shape}: {str(data)[:200]!r}") from exc
        if len(rows) != count:
            raise fail(f"returned {len(rows)} vectors for {count} texts")
        where = f"embedding endpoint {self.url}"
        with self._lock:
            try:
                matrix = as_matrix(rows, self._dimension, where)
            except EmbeddingError as exc:
                raise fail(str(exc).removeprefix(where).strip()) from exc
            except (TypeError, ValueError) as exc:
                raise fail(f"returned vectors that are not lists of numbers: {exc}") from exc
            if matrix.ndim != 2 or (count and matrix.shape[1] == 0):
                raise fail("returned empty or nested vectors")
            if self._dimension is None and count:
                self._dimension = int(matrix.shape[1])
        return matrix

    def _embed(self, texts: Sequence[str], input_type: str) -> np.ndarray:
        batches = [
            list(texts[i : i + self._batch_size]) for i in range(0, len(texts), self._batch_size)
        ]
        if not batches:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        if len(batches) == 1 or self._concurrency == 1:
            return np.vstack([self._post(b, input_type) for b in batches])
        # The call fails as a whole on the first batch that fails: the others stop retrying
        # (``abort``) and no vectors of a failed call are returned.
        abort = threading.Event()
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            futures = [pool.submit(self._post, b, input_type, abort) for b in batches]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception()), None)
            if failed is not None:
                abort.set()
                for future in futures:
                    future.cancel()
                raise failed.exception()  # type: ignore[misc]
            return np.vstack([f.result() for f in futures])

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed([self.passage_prefix + t for t in texts], "passage")

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([self.query_prefix + text], "query")[0]

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._endpoint.close()


class OllamaEmbedder(_HttpEmbedder):
    """Ollama's ``POST {base}/api/embed``; ``base`` may be a server's ``/ollama`` proxy."""

    endpoint = "/api/embed"
    answer_shape = "an 'embeddings' list"

    def _body(self, texts: list[str], input_type: str) -> dict[str, Any]:
        return {"model": self._model, "input": texts}

    def _vectors(self, data: Any) -> list[list[float]]:
        return data["embeddings"]


class OpenAIEmbedder(_HttpEmbedder):
    """An OpenAI-compatible ``POST {base}/embeddings`` (``base`` usually ends in ``/v1``)."""

    endpoint = "/embeddings"
    answer_shape = "a 'data' list of {'embedding': [...]} items"

    def __init__(self, base_url: str, model: str, *, send_input_type: bool = False, **kwargs: Any):
        super().__init__(base_url, model, **kwargs)
        self._send_input_type = send_input_type
        if send_input_type:
            # The server applies its own query/passage handling; do not prefix twice.
            self.query_prefix = kwargs.get("query_prefix") or ""
            self.passage_prefix = kwargs.get("passage_prefix") or ""

    def _body(self, texts: list[str], input_type: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self._model, "input": texts}
        if self._send_input_type:
            body["input_type"] = input_type
        return body

    def _vectors(self, data: Any) -> list[list[float]]:
        items = sorted(data["data"], key=lambda item: item.get("index", 0))
        return [item["embedding"] for item in items]
