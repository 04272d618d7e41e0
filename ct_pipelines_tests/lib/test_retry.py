"""The shared retry policy: which failures are retried, how long we wait, when we give up."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from ct_pipelines.lib.retry import RetryEvent, RetryPolicy, retry_after_seconds, send_with_retries

URL = "https://api.example.test/things"


def scripted(
    outcomes: list[httpx.Response | Exception],
) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose transport answers with ``outcomes`` in order and records each request."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        outcome = outcomes[len(seen) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def build(client: httpx.Client) -> Callable[[], httpx.Request]:
    return lambda: client.build_request("GET", URL)


def test_retries_503_honouring_retry_after_seconds() -> None:
    client, seen = scripted(
        [
            httpx.Response(503, headers={"Retry-After": "3"}),
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    sleeps: list[float] = []
    events: list[RetryEvent] = []
    response = send_with_retries(
        client, build(client), RetryPolicy(), sleep=sleeps.append, on_retry=events.append
    )
    assert response.status_code == 200
    assert len(seen) == 3
    assert sleeps == [3.0, 7.0]
    assert [(e.attempt, e.reason, e.delay) for e in events] == [(1, "503", 3.0), (2, "429", 7.0)]


def test_retry_after_is_capped_at_max_delay() -> None:
    client, _ = scripted(
        [httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(200)]
    )
    sleeps: list[float] = []
    send_with_retries(client, build(client), RetryPolicy(max_delay=12.0), sleep=sleeps.append)
    assert sleeps == [12.0]


def test_retry_after_http_date() -> None:
    now = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert retry_after_seconds(header, now=now) == 42.0
    # A date in the past means "now", never a negative sleep.
    assert (
        retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), now=now) == 0.0
    )


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf"])
def test_unusable_retry_after_is_ignored(value: str | None) -> None:
    assert retry_after_seconds(value) is None


def test_backoff_is_exponential_with_full_jitter_when_no_retry_after() -> None:
    client, _ = scripted([httpx.Response(502)] * 4 + [httpx.Response(200)])
    sleeps: list[float] = []
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, rng=random.Random(7))
    send_with_retries(client, build(client), policy, sleep=sleeps.append)
    assert len(sleeps) == 4
    for attempt, delay in enumerate(sleeps, start=1):
        assert 0.0 <= delay <= min(5.0, 2 ** (attempt - 1))
    # Full jitter draws from the whole interval, not a fixed schedule.
    assert sleeps != [1.0, 2.0, 4.0, 5.0]
    expected = random.Random(7)
    assert sleeps == [expected.uniform(0.0, c) for c in (1.0, 2.0, 4.0, 5.0)]


def test_retry_after_ignored_when_policy_says_so() -> None:
    client, _ = scripted([httpx.Response(503, headers={"Retry-After": "9"}), httpx.Response(200)])
    sleeps: list[float] = []
    policy = RetryPolicy(base_delay=0.25, honour_retry_after=False)
    send_with_retries(client, build(client), policy, sleep=sleeps.append)
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 0.25


def test_gives_up_after_max_attempts_and_returns_last_response() -> None:
    client, seen = scripted([httpx.Response(504)] * 3)
    sleeps: list[float] = []
    response = send_with_retries(
        client, build(client), RetryPolicy(max_attempts=3, base_delay=0), sleep=sleeps.append
    )
    assert response.status_code == 504
    assert len(seen) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 409, 413, 500])
def test_other_statuses_are_not_retried(status: int) -> None:
    client, seen = scripted([httpx.Response(status), httpx.Response(200)])
    sleeps: list[float] = []
    response = send_with_retries(client, build(client), RetryPolicy(), sleep=sleeps.append)
    assert response.status_code == status
    assert len(seen) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "exc_type",
    [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.ConnectError, httpx.RemoteProtocolError],
)
def test_transport_failures_are_retried(exc_type: type[httpx.TransportError]) -> None:
    client, seen = scripted([exc_type("boom"), httpx.Response(200)])
    events: list[RetryEvent] = []
    response = send_with_retries(
        client,
        build(client),
        RetryPolicy(base_delay=0),
        sleep=lambda _: None,
        on_retry=events.append,
    )
    assert response.status_code == 200
    assert len(seen) == 2
    assert events[0].reason == exc_type.__name__


def test_last_transport_exception_is_reraised() -> None:
    client, seen = scripted([httpx.ReadTimeout("slow")] * 2)
    with pytest.raises(httpx.ReadTimeout):
        send_with_retries(
            client, build(client), RetryPolicy(max_attempts=2, base_delay=0), sleep=lambda _: None
        )
    assert len(seen) == 2


def test_non_retryable_transport_errors_propagate_at_once() -> None:
    client, seen = scripted([httpx.WriteTimeout("write"), httpx.Response(200)])
    with pytest.raises(httpx.WriteTimeout):
        send_with_retries(client, build(client), RetryPolicy(), sleep=lambda _: None)
    assert len(seen) == 1


def test_build_request_is_called_per_attempt() -> None:
    """Each attempt gets a freshly built request, so callers can attach a renewed token."""
    client, seen = scripted(
        [httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(200)]
    )
    counter = iter(range(100))
    send_with_retries(
        client,
        lambda: client.build_request("GET", URL, headers={"X-Attempt": str(next(counter))}),
        RetryPolicy(),
        sleep=lambda _: None,
    )
    assert [r.headers["X-Attempt"] for r in seen] == ["0", "1"]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1)
