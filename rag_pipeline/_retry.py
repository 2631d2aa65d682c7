"""Retry waits shared by the HTTP embedders and the server's upstream client (tenacity)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, wait_exponential, wait_random


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds or an HTTP date), if any."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class WaitRetryAfter:
    """Wait what the failed answer's ``Retry-After`` asked (at most ``cap``), else ``fallback``.

    The failed attempt's exception carries the header's value as ``retry_after``.
    """

    def __init__(self, fallback: Callable[[RetryCallState], float], cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        asked = getattr(exc, "retry_after", None)
        if asked is not None:
            return min(float(asked), self.cap)
        return self.fallback(retry_state)


def backoff_wait(backoff: float, max_backoff: float, cap_retry_after: float) -> WaitRetryAfter:
    """Exponential backoff (``backoff``, 2x, 4x… up to ``max_backoff``) plus up to
    ``backoff`` of random jitter, unless the server said how long to wait."""
    jittered = wait_exponential(multiplier=backoff, max=max_backoff) + wait_random(0, backoff)
    return WaitRetryAfter(jittered, cap_retry_after)
