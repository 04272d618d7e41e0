from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from ct_pipelines.defs.dispatch.logic.audit import (
    deliveries_without_tracking,
    failed_status_updates,
)
from ct_pipelines.defs.dispatch.logic.plan import plan_delivery
from ct_pipelines.defs.dispatch.logic.shipments import (
    merge_shipments,
    recent_days,
    shipments_frame,
    shipments_from_frame,
)
from ct_pipelines.defs.dispatch.logic.trigger import TriggerState, decide
from ct_pipelines_tests.defs.dispatch.logic.orders import SHIPPED_AT, apply_actions, order, shipment

NOW = SHIPPED_AT + timedelta(hours=2)


def test_shipments_round_trip_through_the_stored_table() -> None:
    original = [shipment("SH1", tracking=["T1", "T2"]), shipment("SH2", carrier=None)]

    frame = shipments_frame(original, received_at=NOW)

    assert shipments_from_frame(frame) == original
    assert frame["units"].tolist() == [3, 3]


def test_a_shipment_read_twice_keeps_its_first_reading() -> None:
    first = shipments_frame([shipment("SH1")], received_at=NOW)
    again = shipments_frame([shipment("SH1"), shipment("SH2")], received_at=NOW + timedelta(1))

    merged = merge_shipments(first, again)

    assert merged["shipment_number"].tolist() == ["SH1", "SH2"]
    assert merged.loc[0, "received_at"] == NOW.isoformat()


def test_recent_days_are_utc_days_oldest_first() -> None:
    assert recent_days(datetime(2026, 3, 2, 0, 30, tzinfo=UTC), 2) == ["2026-03-01", "2026-03-02"]


def _shipped(doc: dict) -> dict:
    return apply_actions(doc, list(plan_delivery(doc, shipment()).actions))


def test_failed_status_update_names_the_order_and_its_age() -> None:
    shipments = shipments_frame([shipment(), shipment("SH9", reference="UK-9")], NOW)
    orders = {"UK-1001": order(), "UK-9": None}

    failed = failed_status_updates(shipments, orders, NOW, timedelta(minutes=30))

    assert failed[["order", "shipment_number", "age_minutes", "problem"]].to_dict("records") == [
        {
            "order": "UK-1001",
            "shipment_number": "SH0000042",
            "age_minutes": 120,
            "problem": "delivery missing",
        },
        {
            "order": "UK-9",
            "shipment_number": "SH9",
            "age_minutes": 120,
            "problem": "order not found in commercetools",
        },
    ]


def test_dispatched_orders_and_young_shipments_pass() -> None:
    shipments = shipments_frame([shipment()], NOW)
    shipped = {"UK-1001": _shipped(order())}

    assert failed_status_updates(shipments, shipped, NOW, timedelta(minutes=30)).empty
    young = failed_status_updates(shipments, {"UK-1001": order()}, NOW, timedelta(hours=3))
    assert young.empty


def test_delivery_present_but_state_reset_is_a_failed_update() -> None:
    doc = _shipped(order())
    doc["shipmentState"] = "Ready"

    failed = failed_status_updates(
        shipments_frame([shipment()], NOW), {"UK-1001": doc}, NOW, timedelta(0)
    )

    assert failed["problem"].tolist() == ["shipment state Ready"]


def test_deliveries_without_tracking_are_listed() -> None:
    tracked = _shipped(order())
    untracked = apply_actions(
        order(order_number="UK-2"), list(plan_delivery(order(), shipment(tracking=[])).actions)
    )

    found = deliveries_without_tracking({"UK-1001": tracked, "UK-2": untracked, "UK-3": None})

    assert found[["order", "delivery_key", "parcels"]].to_dict("records") == [
        {"order": "UK-2", "delivery_key": "shipment-SH0000042", "parcels": 1}
    ]
    assert isinstance(found, pd.DataFrame)


STALE, RETRY = timedelta(minutes=30), timedelta(minutes=15)


def test_new_shipments_are_requested_once_under_a_key_from_their_numbers() -> None:
    first = decide(TriggerState(), ["SH1", "SH2"], 0, NOW, stale_after=STALE, retry_every=RETRY)
    assert first.run_key == "dispatch-SH1-SH2-2"

    state = TriggerState.from_json(first.state.to_json())
    again = decide(state, ["SH1", "SH2"], 0, NOW + timedelta(minutes=1), **_limits())
    assert again.run_key is None

    more = decide(state, ["SH1", "SH2", "SH3"], 0, NOW + timedelta(minutes=2), **_limits())
    assert more.run_key == "dispatch-SH1-SH3-3"


def _limits() -> dict[str, timedelta]:
    return {"stale_after": STALE, "retry_every": RETRY}


def test_a_batch_still_pending_after_its_run_failed_is_requested_again() -> None:
    first = decide(TriggerState(), ["SH1"], 0, NOW, **_limits())

    stuck = decide(first.state, ["SH1"], 0, NOW + STALE, **_limits())

    assert stuck.run_key == "dispatch-SH1-SH1-1-again-1"


def test_queued_failures_get_a_retry_run_now_and_then() -> None:
    retry = decide(TriggerState(), [], 2, NOW, **_limits())
    assert retry.run_key is not None and retry.run_key.startswith("dispatch-retry-")

    soon = decide(retry.state, [], 2, NOW + timedelta(minutes=5), **_limits())
    assert soon.run_key is None and "retry later" in soon.reason

    later = decide(retry.state, [], 2, NOW + RETRY, **_limits())
    assert later.run_key is not None and later.run_key != retry.run_key


def test_nothing_new_nothing_queued_skips() -> None:
    decision = decide(TriggerState(), [], 0, NOW, **_limits())
    assert decision.run_key is None
    assert decision.reason == "no new shipments since the last run"
