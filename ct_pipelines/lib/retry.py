"""HTTP retry policy shared by the commercetools and ERP clients.

Exponential backoff with full jitter (delay drawn uniformly from ``[0, min(max_delay, base * 2**n)]``)
spreads retries of many workers apart, which is what the commercetools docs ask for on 502/503.
A server's ``Retry-After`` is a better estimate than our own guess, so it wins when present.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

logger = logging.getLogger(__name__)

# Transport failures where the request either never reached the server or the answer was lost;
# commercetools and the ERP make updates version- or idempotency-checked, so replaying is safe.
RETRYABLE_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.ConnectError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient HTTP failures."""

    max_attempts: int = 5  # total attempts, including the first
    base_delay: float = 0.5  # seconds; exponential: base * 2**(attempt-1), full jitter
    max_delay: float = 30.0
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    # Retry-After (seconds or HTTP date) wins over computed backoff, capped at max_delay.
    honour_retry_after: bool = True
    # Injectable for deterministic tests; not part of equality so policies compare by settings.
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(0.0, ceiling)

    def delay_for(self, attempt: int, response: httpx.Response | None) -> float:
        if self.honour_retry_after and response is not None:
            server_delay = retry_after_seconds(response.headers.get("Retry-After"))
            if server_delay is not None:
                return min(server_delay, self.max_delay)
        return self.backoff(attempt)


DEFAULT_RETRY_POLICY = RetryPolicy()


@dataclass(frozen=True)
class RetryEvent:
    """One scheduled retry. Safe to log: carries no URL, query string or headers."""

    attempt: int  # the attempt that failed (1-based)
    reason: str  # HTTP status ("503") or exception class name ("ReadTimeout")
    delay: float  # seconds we are about to sleep


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta-seconds or HTTP-date) into seconds; None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # float() accepts "nan"/"inf"; neither is a usable delay.
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            return None
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def send_with_retries(
    client: httpx.Client,
    build_request: Callable[[], httpx.Request],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> httpx.Response:
    """Send a request, retrying transient failures per ``policy``.

    ``build_request`` is called for every attempt so callers can attach a fresh token or body.
    After the last attempt the last response is returned (the caller maps it to a typed error),
    or the last transport exception is re-raised. Other 4xx/5xx responses are returned at once.
    """
    attempt = 0
    while True:
        attempt += 1
        response: httpx.Response | None = None
        try:
            response = client.send(build_request())
        except RETRYABLE_EXCEPTIONS as exc:
            if attempt >= policy.max_attempts:
                raise
            reason = type(exc).__name__
        else:
            if response.status_code not in policy.retry_statuses or attempt >= policy.max_attempts:
                return response
            reason = str(response.status_code)
        delay = policy.delay_for(attempt, response)
        if response is not None:
            # Release the connection before sleeping; the body of a retryable error is not needed.
            response.close()
        event = RetryEvent(attempt=attempt, reason=reason, delay=delay)
        logger.debug("retrying after %s (attempt %d), sleeping %.2fs", reason, attempt, delay)
        if on_retry is not None:
            on_retry(event)
        sleep(delay)
