"""The exception queue: deduplicated while unresolved, every action in the audit trail."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ct_pipelines.store import ExceptionCategory, ExceptionNotFound, IntegrationStore
from ct_pipelines.store.schema import exception_queue
from ct_pipelines_tests.store.conftest import ManualClock
from ct_pipelines_tests.store.test_ledger import run_together

FLOW = "order_to_cash"


def _actions(store: IntegrationStore, exception_id: int) -> list[tuple[str, str]]:
    return [(e.action, e.actor) for e in store.exception_events(exception_id)]


def _unknown_sku(store: IntegrationStore, order: str = "UK-1001", **extra: object):
    return store.record_exception(
        flow=FLOW,
        entity_key=order,
        category=ExceptionCategory.UNKNOWN_SKU,
        reason=extra.pop("reason", "line 2: SKU TEE-RED-XL is not in the ERP item master"),
        payload_ref="order:7f3c@v4",
        sku="TEE-RED-XL",
        channel="london-store",
        **extra,
    )


def test_recording_an_exception_opens_it_with_an_audit_row(store: IntegrationStore) -> None:
    record = _unknown_sku(store, details={"line_no": 2, "quantity": 3, "price": Decimal("12.50")})
    assert record.status == "open"
    assert record.category == "unknown_sku"
    assert record.attempts == 1
    assert (record.sku, record.channel, record.payload_ref) == (
        "TEE-RED-XL",
        "london-store",
        "order:7f3c@v4",
    )
    assert record.details == {"line_no": 2, "quantity": 3, "price": "12.50"}
    assert record.created_at.utcoffset() == timedelta(0)
    assert _actions(store, record.id) == [("recorded", "ct_pipelines")]


def test_a_recurrence_bumps_attempts_instead_of_duplicating(store: IntegrationStore) -> None:
    first = _unknown_sku(store)
    again = _unknown_sku(store, reason="line 2: SKU TEE-RED-XL still unknown")
    assert again.id == first.id
    assert again.attempts == 2
    assert again.reason == "line 2: SKU TEE-RED-XL still unknown"
    assert len(store.list_exceptions(flow=FLOW)) == 1
    events = store.exception_events(first.id)
    assert [e.action for e in events] == ["recorded", "recurred"]
    assert events[1].detail["attempts"] == 2


def test_another_category_or_entity_is_another_exception(store: IntegrationStore) -> None:
    a = _unknown_sku(store)
    b = store.record_exception(
        flow=FLOW, entity_key="UK-1001", category="unknown_tax_code", reason="tax code Z9 unmapped"
    )
    c = _unknown_sku(store, order="UK-1002")
    assert len({a.id, b.id, c.id}) == 3


def test_concurrent_recordings_of_one_problem_keep_one_row(store: IntegrationStore) -> None:
    run_together(6, lambda i: _unknown_sku(store))
    [record] = store.list_exceptions(flow=FLOW)
    assert record.attempts == 6
    assert [e.action for e in store.exception_events(record.id)] == ["recorded"] + ["recurred"] * 5


def test_resolve_records_who_why_and_when(store: IntegrationStore) -> None:
    record = _unknown_sku(store)
    resolved = store.resolve_exception(record.id, "jane.ops", "SKU created in the ERP")
    assert resolved.status == "resolved"
    assert resolved.resolved_by == "jane.ops"
    assert resolved.resolution_note == "SKU created in the ERP"
    assert resolved.resolved_at is not None
    # Resolving twice is not a second action.
    assert store.resolve_exception(record.id, "bob.ops", "again") == resolved
    assert _actions(store, record.id) == [("recorded", "ct_pipelines"), ("resolved", "jane.ops")]
    # The same problem after resolution is a new occurrence, not a reopened old one.
    later = _unknown_sku(store)
    assert later.id != record.id and later.attempts == 1


def test_retry_then_failure_reopens_with_one_more_attempt(store: IntegrationStore) -> None:
    a = _unknown_sku(store, order="UK-1")
    b = _unknown_sku(store, order="UK-2")
    resolved = _unknown_sku(store, order="UK-3")
    store.resolve_exception(resolved.id, "jane.ops", "fixed by hand")

    changed = store.mark_retrying([a.id, b.id, resolved.id, a.id], "jane.ops")
    assert sorted(r.id for r in changed) == [a.id, b.id]
    assert {r.status for r in changed} == {"retrying"}
    assert store.get_exception(resolved.id).status == "resolved"

    again = _unknown_sku(store, order="UK-1")
    assert (again.id, again.status, again.attempts) == (a.id, "open", 2)
    assert [e.action for e in store.exception_events(a.id)] == ["recorded", "retrying", "recurred"]
    assert _actions(store, b.id)[-1] == ("retrying", "jane.ops")
    with pytest.raises(ExceptionNotFound):
        store.mark_retrying([a.id, 999_999], "jane.ops")
    # All or nothing: the unknown id left `a` as it was.
    assert store.get_exception(a.id).status == "open"


def test_a_later_success_closes_open_and_retrying_exceptions_of_that_entity(
    store: IntegrationStore,
) -> None:
    sku = _unknown_sku(store, order="UK-1")
    tax = store.record_exception(
        flow=FLOW, entity_key="UK-1", category="unknown_tax_code", reason="Z9 unmapped"
    )
    other = _unknown_sku(store, order="UK-2")
    other_flow = store.record_exception(
        flow="dispatch", entity_key="UK-1", category="validation", reason="no tracking number"
    )
    store.mark_retrying([tax.id], "jane.ops")

    closed = store.close_on_success(FLOW, "UK-1", actor="order_to_cash run 1a2b")
    assert sorted(r.id for r in closed) == sorted([sku.id, tax.id])
    for record in closed:
        assert record.status == "resolved"
        assert record.resolved_by == "order_to_cash run 1a2b"
        assert store.exception_events(record.id)[-1].action == "auto_resolved"
    assert store.get_exception(other.id).status == "open"
    assert store.get_exception(other_flow.id).status == "open"
    assert store.close_on_success(FLOW, "UK-1") == []


def test_list_filters(store: IntegrationStore) -> None:
    a = _unknown_sku(store, order="UK-1")
    b = store.record_exception(flow=FLOW, entity_key="UK-2", category="conflict", reason="409 x5")
    c = store.record_exception(
        flow="inventory", entity_key="TEE-RED-XL", category="validation", reason="negative"
    )
    store.resolve_exception(b.id, "jane.ops", "re-exported")

    def ids(**filters: object) -> list[int]:
        return [r.id for r in store.list_exceptions(**filters)]

    assert ids() == [a.id, b.id, c.id]
    assert ids(flow=FLOW) == [a.id, b.id]
    assert ids(status="open") == [a.id, c.id]
    assert ids(status=["open", "resolved"], flow=FLOW) == [a.id, b.id]
    assert ids(category="unknown_sku") == [a.id]
    assert ids(entity_key="TEE-RED-XL") == [c.id]
    assert ids(limit=1) == [a.id]


def test_older_than_finds_what_has_been_stuck(
    clocked_store: IntegrationStore, clock: ManualClock
) -> None:
    old = _unknown_sku(clocked_store, order="UK-old")
    clock.advance(timedelta(days=3))
    recent = _unknown_sku(clocked_store, order="UK-new")
    assert [r.id for r in clocked_store.list_exceptions(older_than=timedelta(days=2))] == [old.id]
    assert [r.id for r in clocked_store.list_exceptions(older_than=clock.now)] == [old.id]
    assert len(clocked_store.list_exceptions(older_than=clock.now + timedelta(seconds=1))) == 2
    assert recent.created_at == clock.now
    with pytest.raises(ValueError, match="timezone-aware"):
        clocked_store.list_exceptions(older_than=clock.now.replace(tzinfo=None))


def test_details_keep_no_secrets_or_personal_data(store: IntegrationStore) -> None:
    record = _unknown_sku(
        store,
        details={
            "line_no": 2,
            "customerEmail": "jane@example.com",
            "shippingAddress": {"streetName": "High St", "postalCode": "SW1A 1AA"},
            "request": {"headers": {"Authorization": "Bearer abc"}, "api_token": "t0k3n"},
            "ratio": float("nan"),
        },
    )
    text = repr(record.details)
    for leaked in ("jane@example.com", "High St", "Bearer abc", "t0k3n"):
        assert leaked not in text
    assert record.details["line_no"] == 2
    assert record.details["customerEmail"] == "[redacted]"
    assert record.details["request"]["headers"]["Authorization"] == "[redacted]"
    assert record.details["ratio"] == "nan"


def test_actions_need_an_actor_and_an_existing_exception(store: IntegrationStore) -> None:
    record = _unknown_sku(store)
    with pytest.raises(ValueError, match="actor"):
        store.resolve_exception(record.id, " ", "note")
    with pytest.raises(ExceptionNotFound):
        store.resolve_exception(999_999, "jane.ops", "note")
    with pytest.raises(ValueError, match="category"):
        store.record_exception(flow=FLOW, entity_key="UK-1", category="", reason="x")


def test_one_unresolved_row_per_problem_is_enforced_by_the_database(
    store: IntegrationStore,
) -> None:
    record = _unknown_sku(store)
    now = store._db.now()
    duplicate = {
        "flow": record.flow,
        "entity_key": record.entity_key,
        "category": record.category,
        "reason": "bypassing the API",
        "status": "open",
        "created_at": now,
        "updated_at": now,
    }
    with pytest.raises(sa.exc.IntegrityError), store._db.write() as conn:
        conn.execute(exception_queue.insert().values(**duplicate))
