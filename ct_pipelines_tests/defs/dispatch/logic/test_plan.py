from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ct_pipelines.defs.dispatch.logic.keys import KEY_PATTERN, delivery_key, parcel_key
from ct_pipelines.defs.dispatch.logic.plan import (
    DispatchRejected,
    delivered_quantities,
    plan_delivery,
    should_change_state,
)
from ct_pipelines_tests.defs.dispatch.logic.orders import apply_actions, line_item, order, shipment


def test_delivery_key_keeps_a_clean_shipment_number_readable() -> None:
    assert delivery_key("SH0000042") == "shipment-SH0000042"
    assert parcel_key("SH0000042", 1) == "parcel-SH0000042"
    assert parcel_key("SH0000042", 2) == "parcel-SH0000042-2"


def test_delivery_keys_of_numbers_that_clean_alike_differ() -> None:
    assert delivery_key("SH/001") != delivery_key("SH 001")
    assert delivery_key("SH/001").startswith("shipment-SH-001-")


@given(st.text(min_size=1, max_size=400).filter(str.strip))
def test_every_shipment_number_gives_a_valid_key(number: str) -> None:
    assert KEY_PATTERN.match(delivery_key(number))
    assert KEY_PATTERN.match(parcel_key(number, 12))
    assert delivery_key(number) == delivery_key(number)


def test_full_shipment_adds_delivery_with_tracked_parcel_and_marks_shipped() -> None:
    plan = plan_delivery(order(), shipment(), provider="ERP/WMS")

    add, change = plan.actions
    assert add == {
        "action": "addDelivery",
        "deliveryKey": "shipment-SH0000042",
        "items": [{"id": "li-mug", "quantity": 2}, {"id": "li-tee", "quantity": 1}],
        "parcels": [
            {
                "key": "parcel-SH0000042",
                "trackingData": {
                    "isReturn": False,
                    "trackingId": "15501234567890",
                    "carrier": "DPD",
                    "provider": "ERP/WMS",
                },
                "items": [{"id": "li-mug", "quantity": 2}, {"id": "li-tee", "quantity": 1}],
            }
        ],
    }
    assert change == {"action": "changeShipmentState", "shipmentState": "Shipped"}
    assert plan.target_state == "Shipped" and not plan.already_applied


def test_partial_then_rest_counts_earlier_deliveries() -> None:
    doc = order()
    first = plan_delivery(doc, shipment("SH1", [("MUG-001", 1)]))
    assert first.target_state == "Partial"
    assert first.actions[-1] == {"action": "changeShipmentState", "shipmentState": "Partial"}

    doc = apply_actions(doc, list(first.actions))
    rest = plan_delivery(doc, shipment("SH2", [("MUG-001", 1), ("TEE-M", 1)]))
    assert rest.actions[0]["items"] == [
        {"id": "li-mug", "quantity": 1},
        {"id": "li-tee", "quantity": 1},
    ]
    assert rest.target_state == "Shipped"
    assert rest.actions[-1] == {"action": "changeShipmentState", "shipmentState": "Shipped"}
    doc = apply_actions(doc, list(rest.actions))
    assert delivered_quantities(doc) == {"li-mug": 2, "li-tee": 1}


def test_repeated_shipment_plans_nothing() -> None:
    doc = order()
    applied = apply_actions(doc, list(plan_delivery(doc, shipment()).actions))

    again = plan_delivery(applied, shipment())

    assert again.already_applied
    assert again.actions == ()


def test_repeat_still_fixes_a_state_that_lags_behind_the_deliveries() -> None:
    doc = apply_actions(order(), list(plan_delivery(order(), shipment()).actions))
    doc["shipmentState"] = "Ready"

    again = plan_delivery(doc, shipment())

    assert again.actions == ({"action": "changeShipmentState", "shipmentState": "Shipped"},)


@pytest.mark.parametrize(
    ("current", "target", "change"),
    [
        (None, "Partial", True),
        ("Ready", "Shipped", True),
        ("Backorder", "Partial", True),
        ("Partial", "Shipped", True),
        ("Shipped", "Partial", False),
        ("Delivered", "Shipped", False),
        ("Shipped", "Shipped", False),
    ],
)
def test_shipment_state_only_moves_forward(current: str | None, target: str, change: bool) -> None:
    assert should_change_state(current, target) is change  # type: ignore[arg-type]


def test_quantity_fills_line_items_sharing_a_sku_in_order() -> None:
    doc = order(line_item("a", "MUG-001", 1), line_item("b", "MUG-001", 2))

    plan = plan_delivery(doc, shipment(lines=[("MUG-001", 2)]))

    assert plan.actions[0]["items"] == [{"id": "a", "quantity": 1}, {"id": "b", "quantity": 1}]
    assert plan.target_state == "Partial"


def test_custom_line_items_match_by_slug_and_do_not_hold_back_shipped() -> None:
    gift_wrap = {"id": "c1", "slug": "gift-wrap", "quantity": 1}
    doc = order(line_item("a", "MUG-001", 1), custom=[gift_wrap])

    assert plan_delivery(doc, shipment(lines=[("MUG-001", 1)])).target_state == "Shipped"
    with_wrap = plan_delivery(doc, shipment(lines=[("MUG-001", 1), ("gift-wrap", 1)]))
    assert {"id": "c1", "quantity": 1} in with_wrap.actions[0]["items"]


def test_unknown_sku_is_refused_with_the_sku_named() -> None:
    with pytest.raises(DispatchRejected) as caught:
        plan_delivery(order(), shipment(lines=[("LAMP-9", 1)]))
    assert caught.value.category == "unknown_line"
    assert "LAMP-9" in caught.value.reason and "UK-1001" in caught.value.reason


def test_shipping_more_than_is_left_is_refused() -> None:
    doc = apply_actions(order(), list(plan_delivery(order(), shipment("SH1")).actions))
    with pytest.raises(DispatchRejected) as caught:
        plan_delivery(doc, shipment("SH2", [("TEE-M", 1)]))
    assert caught.value.category == "over_shipment"
    assert "TEE-M (shipped 1, ordered 1, delivered 1)" in caught.value.reason


@pytest.mark.parametrize(
    ("order_state", "shipment_state"), [("Cancelled", "Ready"), ("Confirmed", "Canceled")]
)
def test_cancelled_order_gets_no_delivery(order_state: str, shipment_state: str) -> None:
    doc = order(order_state=order_state, shipment_state=shipment_state)
    with pytest.raises(DispatchRejected) as caught:
        plan_delivery(doc, shipment())
    assert caught.value.category == "order_cancelled"


def test_order_cancelled_after_dispatch_is_left_alone() -> None:
    doc = apply_actions(order(), list(plan_delivery(order(), shipment()).actions))
    doc["orderState"] = "Cancelled"
    doc["shipmentState"] = "Canceled"

    assert plan_delivery(doc, shipment()).actions == ()


def test_several_tracking_numbers_become_parcels_without_guessing_items() -> None:
    plan = plan_delivery(order(), shipment(tracking=["T1", "T2", "T1", " "]))

    parcels = plan.actions[0]["parcels"]
    assert [p["key"] for p in parcels] == ["parcel-SH0000042", "parcel-SH0000042-2"]
    assert [p["trackingData"]["trackingId"] for p in parcels] == ["T1", "T2"]
    assert all("items" not in p for p in parcels)


def test_no_tracking_number_keeps_the_carrier_on_a_parcel() -> None:
    untracked = plan_delivery(order(), shipment(tracking=[]))
    assert untracked.actions[0]["parcels"] == [
        {
            "key": "parcel-SH0000042",
            "trackingData": {"isReturn": False, "carrier": "DPD"},
            "items": [{"id": "li-mug", "quantity": 2}, {"id": "li-tee", "quantity": 1}],
        }
    ]
    assert plan_delivery(order(), shipment(tracking=[], carrier=None)).actions[0]["parcels"] == []


def test_order_without_shipping_info_is_refused() -> None:
    doc = order()
    del doc["shippingInfo"]
    with pytest.raises(DispatchRejected) as caught:
        plan_delivery(doc, shipment())
    assert caught.value.category == "rejected_payload"


def test_multiple_shipping_mode_names_its_single_shipping_key() -> None:
    doc = order()
    del doc["shippingInfo"]
    doc["shippingMode"] = "Multiple"
    doc["shipping"] = [{"shippingKey": "home", "shippingInfo": {"deliveries": []}}]

    assert plan_delivery(doc, shipment()).actions[0]["shippingKey"] == "home"

    doc["shipping"].append({"shippingKey": "office", "shippingInfo": {"deliveries": []}})
    with pytest.raises(DispatchRejected):
        plan_delivery(doc, shipment())


def test_delivery_recorded_under_multiple_shipping_is_found() -> None:
    doc = order()
    del doc["shippingInfo"]
    doc["shippingMode"] = "Multiple"
    doc["shipping"] = [
        {
            "shippingKey": "home",
            "shippingInfo": {
                "deliveries": [
                    {
                        "key": "shipment-SH0000042",
                        "items": [{"id": "li-mug", "quantity": 2}, {"id": "li-tee", "quantity": 1}],
                    }
                ]
            },
        }
    ]
    doc["shipmentState"] = "Shipped"

    plan = plan_delivery(doc, shipment())

    assert plan.already_applied and plan.actions == ()
