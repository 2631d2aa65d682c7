"""POST JSON to a model server with timeouts and retries (the HTTP embedders and rerankers).

Retries (tenacity) cover what a later try can fix: transport errors and timeouts, 429 and
500/502/503/504, with exponential backoff plus jitter, honouring ``Retry-After``, bounded in
attempts and in total time. Every other failure raises the caller's error class at once,
naming the endpoint and what was wrong.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay

from rag_pipeline._retry import backoff_wait, retry_after_seconds
from rag_pipeline.errors import ConfigError, StatusError

# Embeddings and reranking scores are pure functions of their input, so a retry can never
# do harm twice; 500 is included because Ollama and most model servers answer 500 for
# passing trouble (a model runner that crashed or ran out of memory and is restarted, a
# model still loading). Other 4xx are the request's fault and fail at once.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure another try may not meet: transport trouble or a retryable status."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class JsonEndpoint:
    """One URL of a model server, POSTed JSON with a timeout and bounded retries."""

    def __init__(
        self,
        url: str,
        *,
        what: str,
        error: type[StatusError],
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 30.0,
        retry_deadline: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``what`` names the endpoint in messages ("embedding endpoint"); ``error`` is the
        class raised (built with ``url=`` and ``status=``). ``timeout`` bounds each request;
        ``max_retries`` more tries follow a retryable failure, ``backoff`` seconds apart and
        doubling (at most ``max_backoff``, or the server's ``Retry-After`` up to
        ``max_retry_after``); no try starts once waiting for it would end past
        ``retry_deadline`` seconds after the first."""
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{what} URL must start with http:// or https://: {url}")
        if max_retries < 0:
            raise ConfigError("max_retries must be >= 0")
        if min(backoff, max_backoff, max_retry_after) < 0 or retry_deadline <= 0 or timeout <= 0:
            raise ConfigError("backoff times must be >= 0, timeout and retry_deadline > 0")
        self.url = url
        self.what = what
        self.error = error
        self.timeout = timeout
        self._max_retries = max_retries
        self._retry_deadline = retry_deadline
        self._wait = backoff_wait(backoff, max_backoff, max_retry_after)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers, timeout=timeout, transport=transport, follow_redirects=True
        )

    def fail(self, what: str, status: int | None = None) -> StatusError:
        """The error to raise for an answer that arrived but is wrong."""
        return self.error(f"{self.what} {self.url} {what}", url=self.url, status=status)  # type: ignore[call-arg]

    def post(self, body: dict[str, Any], abort: threading.Event | None = None) -> Any:
        """POST ``body`` and return the answer's JSON, retried while the failure is transient.

        A set ``abort`` event (a failed sibling request) stops the waiting between tries.
        """
        started = time.monotonic()
        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1)
            | stop_before_delay(self._retry_deadline),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=abort.wait if abort is not None else time.sleep,
            reraise=True,
        )
        try:
            response = retrying(self._attempt, body, abort)
        except _Transient as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            raise self.error(  # type: ignore[call-arg]
                f"{exc} (gave up after {tries} {'try' if tries == 1 else 'tries'} "
                f"in {time.monotonic() - started:.1f} s)",
                url=self.url,
                status=exc.status,
            ) from exc
        try:
            return response.json()
        except ValueError as exc:
            raise self.fail(
                f"answered malformed JSON: {response.text[:200]!r}", response.status_code
            ) from exc

    def _attempt(self, body: dict[str, Any], abort: threading.Event | None) -> httpx.Response:
        if abort is not None and abort.is_set():
            raise self.error(f"request to {self.url} abandoned", url=self.url)  # type: ignore[call-arg]
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise _Transient(
                f"{self.what} {self.url} did not answer within {self.timeout:g} s "
                f"({type(exc).__name__})",
                status=504,  # no answer: a gateway timeout, as a server answers it
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self.error(f"cannot call {self.what} {self.url}: {exc}", url=self.url) from exc  # type: ignore[call-arg]
        except httpx.TransportError as exc:
            raise _Transient(
                f"cannot reach {self.what} {self.url}: {type(exc).__name__}: {exc}"
            ) from exc
        except httpx.HTTPError as exc:  # too many redirects and the like
            raise self.error(  # type: ignore[call-arg]
                f"request to {self.what} {self.url} failed: {type(exc).__name__}: {exc}",
                url=self.url,
            ) from exc
        status = response.status_code
        if response.is_success:
            return response
        message = f"{self.what} {self.url} answered {status}: {response.text[:300]}"
        if status in RETRY_STATUS:
            raise _Transient(
                message, status=status, retry_after=retry_after_seconds(response.headers)
            )
        raise self.error(message, url=self.url, status=status)  # type: ignore[call-arg]

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
