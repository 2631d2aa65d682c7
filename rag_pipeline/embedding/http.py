"""Embedders behind HTTP: Ollama's /api/embed and OpenAI-compatible /embeddings."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np

from rag_pipeline.embedding.base import as_matrix, default_prefixes
from rag_pipeline.errors import ConfigError, EmbeddingError

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class _HttpEmbedder:
    """Batching, bounded concurrency and retries shared by the HTTP embedders."""

    endpoint: str = ""

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
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"embedding base URL must start with http:// or https://: {base_url}")
        if batch_size < 1 or concurrency < 1 or max_retries < 0:
            raise ConfigError("batch_size and concurrency must be >= 1, max_retries >= 0")
        self.base_url = base_url.rstrip("/")
        self._model = model
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._max_retries = max_retries
        self._backoff = backoff
        query_default, passage_default = default_prefixes(model)
        self.query_prefix = query_default if query_prefix is None else query_prefix
        self.passage_prefix = passage_default if passage_prefix is None else passage_prefix
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers, timeout=timeout, transport=transport, follow_redirects=True
        )
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

    def _post(self, texts: list[str], input_type: str) -> np.ndarray:
        attempt = 0
        while True:
            try:
                response = self._client.post(self.url, json=self._body(texts, input_type))
            except httpx.TimeoutException as exc:
                if attempt >= self._max_retries:
                    raise EmbeddingError(
                        f"embedding request to {self.url} timed out after {attempt + 1} tries",
                        url=self.url,
                    ) from exc
            except httpx.HTTPError as exc:
                if attempt >= self._max_retries:
                    raise EmbeddingError(
                        f"cannot reach embedding endpoint {self.url}: {exc}", url=self.url
                    ) from exc
            else:
                if response.status_code == 200:
                    return self._check(response)
                if response.status_code not in _RETRY_STATUS or attempt >= self._max_retries:
                    raise EmbeddingError(
                        f"embedding endpoint {self.url} answered {response.status_code}: "
                        f"{response.text[:300]}",
                        url=self.url,
                        status=response.status_code,
                    )
            # Exponential backoff with jitter so parallel batches do not retry in step.
            time.sleep(self._backoff * (2**attempt) * (0.5 + random.random()))
            attempt += 1

    def _check(self, response: httpx.Response) -> np.ndarray:
        try:
            rows = self._vectors(response.json())
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise EmbeddingError(
                f"embedding endpoint {self.url} sent an unexpected answer: {response.text[:200]}",
                url=self.url,
                status=response.status_code,
            ) from exc
        with self._lock:
            matrix = as_matrix(rows, self._dimension, f"embedding endpoint {self.url}")
            if self._dimension is None:
                self._dimension = int(matrix.shape[1])
        return matrix

    def _embed(self, texts: Sequence[str], input_type: str) -> np.ndarray:
        batches = [
            list(texts[i : i + self._batch_size]) for i in range(0, len(texts), self._batch_size)
        ]
        if not batches:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        if len(batches) == 1 or self._concurrency == 1:
            parts = [self._post(b, input_type) for b in batches]
        else:
            with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
                parts = list(pool.map(lambda b: self._post(b, input_type), batches))
        matrix = np.vstack(parts)
        if matrix.shape[0] != len(texts):
            raise EmbeddingError(
                f"embedding endpoint {self.url} returned {matrix.shape[0]} vectors "
                f"for {len(texts)} texts",
                url=self.url,
            )
        return matrix

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed([self.passage_prefix + t for t in texts], "passage")

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([self.query_prefix + text], "query")[0]

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


class OllamaEmbedder(_HttpEmbedder):
    """Ollama's ``POST {base}/api/embed``; ``base`` may be a server's ``/ollama`` proxy."""

    endpoint = "/api/embed"

    def _body(self, texts: list[str], input_type: str) -> dict[str, Any]:
        return {"model": self._model, "input": texts}

    def _vectors(self, data: Any) -> list[list[float]]:
        return data["embeddings"]


class OpenAIEmbedder(_HttpEmbedder):
    """An OpenAI-compatible ``POST {base}/embeddings`` (``base`` usually ends in ``/v1``)."""

    endpoint = "/embeddings"

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
