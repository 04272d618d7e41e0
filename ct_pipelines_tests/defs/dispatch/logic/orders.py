"""Plain commercetools order JSON and ERP shipments for the dispatch tests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from ct_pipelines.erp.port import Shipment

SHIPPED_AT = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def line_item(line_id: str, sku: str | None, quantity: int) -> dict[str, Any]:
    variant: dict[str, Any] = {"id": 1}
    if sku is not None:
        variant["sku"] = sku
    return {"id": line_id, "quantity": quantity, "variant": variant}


def order(
    *lines: dict[str, Any],
    order_number: str | None = "UK-1001",
    order_id: str = "6f1c2a9e-0d4b-4f7e-9a51-3c2b8d7e6f10",
    shipment_state: str | None = "Ready",
    order_state: str = "Confirmed",
    custom: list[dict[str, Any]] | None = None,
    deliveries: list[dict[str, Any]] | None = None,
    version: int = 3,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": order_id,
        "version": version,
        "orderState": order_state,
        "lineItems": list(lines)
        or [line_item("li-mug", "MUG-001", 2), line_item("li-tee", "TEE-M", 1)],
        "customLineItems": custom or [],
        "shippingMode": "Single",
        "shippingInfo": {"shippingMethodName": "Standard", "deliveries": deliveries or []},
    }
    if order_number is not None:
        doc["orderNumber"] = order_number
    if shipment_state is not None:
        doc["shipmentState"] = shipment_state
    return doc


def shipment(
    number: str = "SH0000042",
    lines: list[tuple[str, int]] | None = None,
    *,
    reference: str = "UK-1001",
    carrier: str | None = "DPD",
    tracking: list[str] | None = None,
) -> Shipment:
    return Shipment(
        shipment_number=number,
        external_document_number=reference,
        lines=[
            {"sku": sku, "quantity": qty}
            for sku, qty in (lines if lines is not None else [("MUG-001", 2), ("TEE-M", 1)])
        ],
        carrier=carrier,
        tracking_numbers=["15501234567890"] if tracking is None else tracking,
        shipped_at=SHIPPED_AT,
    )


def apply_actions(doc: dict[str, Any], actions: list[dict[str, Any]]) -> dict[str, Any]:
    """What commercetools does with addDelivery and changeShipmentState (enough for planning)."""
    doc = copy.deepcopy(doc)
    for action in actions:
        if action["action"] == "addDelivery":
            doc["shippingInfo"]["deliveries"].append(
                {
                    "id": f"d-{len(doc['shippingInfo']['deliveries']) + 1}",
                    "key": action.get("deliveryKey"),
                    "items": action.get("items", []),
                    "parcels": action.get("parcels", []),
                }
            )
        elif action["action"] == "changeShipmentState":
            doc["shipmentState"] = action["shipmentState"]
        else:
            raise AssertionError(f"unexpected action {action['action']}")
    doc["version"] += 1
    return doc
