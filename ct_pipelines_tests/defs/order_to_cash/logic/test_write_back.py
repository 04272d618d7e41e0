"""The concurrent write-back against the real client on a scripted transport: bounded threads,
one request per order at its snapshot version, 409 re-reads, failures returned as results."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ct_pipelines.defs.order_to_cash.logic.write_back import (
    WriteBackTarget,
    write_back_all,
)
from ct_pipelines_tests.commercetools.fakes import FakeApi, body, error, project_path

CHANNEL_ID = "channel-erp"
SYNCED_AT = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
# Only a guard so a broken implementation fails instead of hanging; nothing asserts on time.
DEADLOCK_GUARD_SECONDS = 10.0


def ok(payload: Any) -> httpx.Response:
    return httpx.Response(200, json=payload)


def targets(n: int, version: int | None = 1) -> list[WriteBackTarget]:
    return [WriteBackTarget(f"SO-{i}", f"order-{i}", version, f"ERP-{i}") for i in range(n)]


def run(api: FakeApi, todo: list[WriteBackTarget], workers: int) -> list[Any]:
    with api.client() as client:
        return write_back_all(
            client,
            todo,
            workers=workers,
            mode="sync_info",
            channel_key="erp-order-export",
            channel_id=CHANNEL_ID,
            synced_at=SYNCED_AT,
        )


def order_id(request: httpx.Request) -> str:
    return project_path(request).removeprefix("orders/")


def test_in_flight_calls_reach_the_worker_count_and_never_exceed_it() -> None:
    workers = 3
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    # Each round lets requests through only once `workers` of them are in flight together:
    # sequential code breaks the barrier (and fails) instead of passing by luck.
    barrier = threading.Barrier(workers)
    broken: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            barrier.wait(timeout=DEADLOCK_GUARD_SECONDS)
        except threading.BrokenBarrierError:
            broken.append(order_id(request))
        with lock:
            in_flight -= 1
        return ok({"id": order_id(request), "version": body(request)["version"] + 1})

    results = run(FakeApi(handler=handler), targets(workers * 4), workers)
    assert broken == []
    assert peak == workers
    assert all(r.sent and r.error is None for r in results)


def test_every_order_is_written_back_exactly_once_in_one_request_at_its_snapshot_version() -> None:
    lock = threading.Lock()
    requests: list[tuple[str, str, int | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        version = body(request)["version"] if request.method == "POST" else None
        with lock:
            requests.append((request.method, order_id(request), version))
        return ok({"id": order_id(request), "version": (version or 0) + 1})

    todo = targets(25, version=7)
    results = run(FakeApi(handler=handler), todo, workers=4)
    assert [r.target for r in results] == todo
    assert all(r.sent and r.error is None for r in results)
    assert Counter(requests) == Counter(("POST", t.order_id, 7) for t in todo)


def test_an_order_without_a_known_version_is_read_first() -> None:
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.method)
        if request.method == "GET":
            return ok({"id": "order-0", "version": 4, "syncInfo": []})
        assert body(request)["version"] == 4
        return ok({"id": "order-0", "version": 5})

    (result,) = run(FakeApi(handler=handler), targets(1, version=None), workers=2)
    assert result.sent and result.error is None
    assert requests == ["GET", "POST"]


@pytest.mark.parametrize("marked_meanwhile", [False, True])
def test_a_409_re_reads_and_retries_with_the_fresh_version_unless_already_marked(
    marked_meanwhile: bool,
) -> None:
    posted: list[int] = []
    sync_info = [{"channel": {"id": CHANNEL_ID}, "externalId": "ERP-0"}] if marked_meanwhile else []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return ok({"id": "order-0", "version": 9, "syncInfo": sync_info})
        version = body(request)["version"]
        posted.append(version)
        if version != 9:
            return error(409, "ConcurrentModification", "changed", currentVersion=9)
        return ok({"id": "order-0", "version": 10})

    (result,) = run(FakeApi(handler=handler), targets(1, version=2), workers=2)
    assert result.error is None
    assert posted == ([2] if marked_meanwhile else [2, 9])
    assert result.sent is not marked_meanwhile


def test_one_failing_order_does_not_stop_the_others() -> None:
    lock = threading.Lock()
    posted: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            posted.append(order_id(request))
        if order_id(request) == "order-3":
            return error(400, "InvalidOperation", "order is locked")
        return ok({"id": order_id(request), "version": 2})

    todo = targets(8)
    results = run(FakeApi(handler=handler), todo, workers=3)
    assert sorted(posted) == sorted(t.order_id for t in todo)
    failed = [r for r in results if r.error is not None]
    assert [r.target.order_id for r in failed] == ["order-3"]
    assert all(r.sent for r in results if r.error is None)


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run(FakeApi(), targets(1), workers=0)
