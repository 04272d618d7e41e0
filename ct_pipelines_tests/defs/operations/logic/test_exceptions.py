from datetime import UTC, datetime

import pytest

from ct_pipelines.defs.operations.logic.exceptions import (
    ExceptionFilter,
    QueueActionError,
    RetryTarget,
    pending_retries,
    plan_retry_runs,
    resolve,
    retry,
    select,
)
from ct_pipelines.store import IntegrationStore


def seed(store: IntegrationStore) -> None:
    store.record_exception(
        flow="order_to_cash",
        entity_key="UK-1",
        category="unknown_sku",
        reason="no item",
        payload_ref="order:id-1@v3",
        sku="MUG-BLUE",
    )
    store.record_exception(
        flow="order_to_cash",
        entity_key="UK-2",
        category="unknown_sku",
        reason="no item",
        payload_ref="order:id-2@v1",
        sku="MUG-BLUE",
        channel="store-london",
    )
    store.record_exception(
        flow="dispatch",
        entity_key="SH9",
        category="version_conflict",
        reason="409",
        details={"order": "UK-3"},
    )
    store.record_exception(flow="legacy_feed", entity_key="B1", category="unbalanced", reason="x")


def now() -> datetime:
    return datetime.now(UTC)


def test_select_by_filter_and_by_id(store: IntegrationStore) -> None:
    seed(store)
    assert [
        r.entity_key for r in select(store, where=ExceptionFilter(sku="MUG-BLUE"), now=now())
    ] == [
        "UK-1",
        "UK-2",
    ]
    assert [
        r.id for r in select(store, where=ExceptionFilter(channel="store-london"), now=now())
    ] == [2]
    assert [r.id for r in select(store, ids=[3], now=now())] == [3]
    assert select(store, where=ExceptionFilter(older_than_hours=1), now=now()) == []


def test_retry_and_resolve_need_a_target_an_actor_and_a_note(store: IntegrationStore) -> None:
    seed(store)
    with pytest.raises(QueueActionError, match="--all"):
        retry(store, actor="ana", now=now())
    with pytest.raises(QueueActionError, match="who"):
        retry(store, actor=" ", now=now(), ids=[1])
    with pytest.raises(QueueActionError, match="note"):
        resolve(store, actor="ana", note="", now=now(), ids=[1])

    outcome = retry(store, actor="ana", now=now(), where=ExceptionFilter(flow="order_to_cash"))
    assert [r.id for r in outcome.flagged] == [1, 2]
    again = retry(store, actor="ana", now=now(), ids=[1])
    assert again.flagged == [] and again.skipped == [(1, "already retrying")]

    [closed] = resolve(store, actor="ben", note="duplicate of UK-1", now=now(), ids=[2])
    assert (closed.status, closed.resolved_by, closed.resolution_note) == (
        "resolved",
        "ben",
        "duplicate of UK-1",
    )
    actions = [(e.action, e.actor) for e in store.exception_events(2)]
    assert actions == [("recorded", "ct_pipelines"), ("retrying", "ana"), ("resolved", "ben")]


def test_retry_flags_become_one_run_per_order_day_and_per_flow(store: IntegrationStore) -> None:
    seed(store)
    retry(store, actor="ana", now=now(), all_matching=True)
    pending = pending_retries(store, after_event_id=0)
    assert {p.record.entity_key for p in pending} == {"UK-1", "UK-2", "SH9", "B1"}

    days = {"id-1": "2026-11-18", "id-2": "2026-11-19"}
    targets = {
        "order_to_cash": RetryTarget("order_export_job", per_order_day=True, behaviour=""),
        "dispatch": RetryTarget("dispatch_job", per_order_day=False, behaviour=""),
    }
    runs, unplanned = plan_retry_runs(pending, lambda r: days.get(r.payload_ref[6:10]), targets)
    assert [(r.job_name, r.partition_key, r.exception_ids) for r in runs] == [
        ("dispatch_job", None, (3,)),
        ("order_export_job", "2026-11-18", (1,)),
        ("order_export_job", "2026-11-19", (2,)),
    ]
    assert [(r.flow, why.split(";")[0]) for r, why in unplanned] == [
        ("legacy_feed", "flow legacy_feed has no retry job")
    ]
    latest = max(p.event_id for p in pending)
    assert pending_retries(store, after_event_id=latest) == []
