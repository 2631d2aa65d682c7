"""Embedders behind HTTP: Ollama's /api/embed and OpenAI-compatible /embeddings.

Retries (tenacity) cover what a later try can fix: transport errors and timeouts, 429 and
500/502/503/504, with exponential backoff plus jitter, honouring ``Retry-After``, bounded in
attempts and in total time. An answer that arrived but is wrong (malformed JSON, another
number of vectors than texts, another dimension) is not retried: it raises EmbeddingError
naming the endpoint and what was wrong.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import httpx
import numpy as np
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)

from rag_pipeline._retry import backoff_wait, retry_after_seconds
from rag_pipeline.embedding.base import as_matrix, default_prefixes
from rag_pipeline.errors import ConfigError, EmbeddingError

# Embeddings are pure functions of their input, so a retry can never do harm twice; 500 is
# included because Ollama and most embedding servers answer 500 for passing trouble (a
# model runner that crashed or ran out of memory and is restarted, a model still loading).
# Other 4xx are the request's fault and fail at once.
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _Transient(EmbeddingError):
    """A failure another try may not meet: transport trouble or a retryable status."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.retry_after = retry_after


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
        """``timeout`` bounds each request; ``max_retries`` more tries follow a retryable
        failure, ``backoff`` seconds apart and doubling (at most ``max_backoff``, or the
        server's ``Retry-After`` up to ``max_retry_after``); no try starts once waiting for
        it would end past ``retry_deadline`` seconds after the first."""
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"embedding base URL must start with http:// or https://: {base_url}")
        if batch_size < 1 or concurrency < 1 or max_retries < 0:
            raise ConfigError("batch_size and concurrency must be >= 1, max_retries >= 0")
        if min(backoff, max_backoff, max_retry_after) < 0 or retry_deadline <= 0:
            raise ConfigError("backoff times must be >= 0 and retry_deadline > 0")
        self.base_url = base_url.rstrip("/")
        self._model = model
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._timeout = timeout
        self._max_retries = max_retries
        self._retry_deadline = retry_deadline
        self._wait = backoff_wait(backoff, max_backoff, max_retry_after)
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

    def _post(
        self, texts: list[str], input_type: str, abort: threading.Event | None = None
    ) -> np.ndarray:
        """One batch, retried while the failure is transient and the budget allows."""
        started = time.monotonic()
        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1)
            | stop_before_delay(self._retry_deadline),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            # A failed sibling batch sets ``abort``: stop waiting, the call has failed.
            sleep=abort.wait if abort is not None else time.sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, texts, input_type, abort)
        except _Transient as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            raise EmbeddingError(
                f"{exc} (gave up after {tries} {'try' if tries == 1 else 'tries'} "
                f"in {time.monotonic() - started:.1f} s)",
                url=self.url,
                status=exc.status,
            ) from exc

    def _attempt(
        self, texts: list[str], input_type: str, abort: threading.Event | None
    ) -> np.ndarray:
        if abort is not None and abort.is_set():
            raise EmbeddingError(f"embedding request to {self.url} abandoned", url=self.url)
        try:
            response = self._client.post(self.url, json=self._body(texts, input_type))
        except httpx.TimeoutException as exc:
            raise _Transient(
                f"embedding endpoint {self.url} did not answer within {self._timeout:g} s "
                f"({type(exc).__name__})",
                url=self.url,
                status=504,  # no answer: a gateway timeout, as a server answers it
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise EmbeddingError(
                f"cannot call embedding endpoint {self.url}: {exc}", url=self.url
            ) from exc
        except httpx.TransportError as exc:
            raise _Transient(
                f"cannot reach embedding endpoint {self.url}: {type(exc).__name__}: {exc}",
                url=self.url,
            ) from exc
        except httpx.HTTPError as exc:  # too many redirects and the like
            raise EmbeddingError(
                f"embedding request to {self.url} failed: {type(exc).__name__}: {exc}",
                url=self.url,
            ) from exc
        status = response.status_code
        if response.is_success:
            return self._check(response, len(texts))
        message = f"embedding endpoint {self.url} answered {status}: {response.text[:300]}"
        if status in _RETRY_STATUS:
            raise _Transient(
                message,
                url=self.url,
                status=status,
                retry_after=retry_after_seconds(response.headers),
            )
        raise EmbeddingError(message, url=self.url, status=status)

    def _check(self, response: httpx.Response, count: int) -> np.ndarray:
        """The answer's vectors, refusing anything but ``count`` rows of the known size."""
        where = f"embedding endpoint {self.url}"

        def fail(what: str) -> EmbeddingError:
            return EmbeddingError(f"{where} {what}", url=self.url, status=response.status_code)

        try:
            data = response.json()
        except ValueError as exc:
            raise fail(f"answered malformed JSON: {response.text[:200]!r}") from exc
        try:
            rows = self._vectors(data)
            if not isinstance(rows, list):
                raise TypeError(type(rows).__name__)
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise fail(
                f"answered JSON without {self.answer_shape}: {response.text[:200]!r}"
            ) from exc
        if len(rows) != count:
            raise fail(f"returned {len(rows)} vectors for {count} texts")
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
        self._client.close()


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
