"""From an ERP shipment and the commercetools order (plain API JSON) to the update actions.

Pure functions, no I/O: the same planning runs on the first read and again on every re-read
after a 409, so a concurrent change (another shipment, a cancellation) is taken into account.

Rules:
- The delivery key derived from the shipment number makes the update idempotent: an order that
  already holds the key gets no second delivery.
- ERP lines (sku, quantity) become delivery items on the line items with that SKU. Several line
  items may share a SKU; the quantity fills them in order, each up to what is still undelivered.
  A SKU the order does not have, or more than is left to deliver, is refused rather than sent:
  commercetools does not check delivered quantities, so a wrong delivery would stand.
- Custom line items have no SKU; an ERP line matches one by its key or slug.
- Shipped when every (product) line item is fully delivered across all deliveries, earlier ones
  included; Partial otherwise. Custom line items (gift wrap, engraving) do not hold it back.
- The shipment state only moves forward: Delivered stays Delivered and Shipped never goes back
  to Partial, because someone (a carrier feed, customer service) knew more than this shipment.
- A cancelled order (orderState Cancelled or shipmentState Canceled) gets no delivery.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ct_pipelines.defs.dispatch.logic.keys import delivery_key, parcel_key
from ct_pipelines.erp.port import Shipment

Json = Mapping[str, Any]
TargetState = Literal["Shipped", "Partial"]

SHIPPED: TargetState = "Shipped"
PARTIAL: TargetState = "Partial"
DELIVERED = "Delivered"
# What a dispatched order may show in commercetools (the check's notion of "updated").
DISPATCHED_STATES = frozenset({SHIPPED, PARTIAL, DELIVERED})
_RANK = {PARTIAL: 1, SHIPPED: 2, DELIVERED: 3}


class DispatchRejected(Exception):
    """The shipment cannot be applied to this order as it stands; retrying unchanged won't help
    until one side changes (the order is restored, the ERP corrects the shipment)."""

    def __init__(self, category: str, reason: str) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason


@dataclass(frozen=True)
class DeliveryPlan:
    order_id: str
    order_version: int
    delivery_key: str
    already_applied: bool
    target_state: TargetState
    current_state: str | None
    actions: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    items: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def changes_nothing(self) -> bool:
        return not self.actions


# --- reading the order JSON ------------------------------------------------------------------


def is_cancelled(order: Json) -> bool:
    return order.get("orderState") == "Cancelled" or order.get("shipmentState") == "Canceled"


def all_deliveries(order: Json) -> list[Json]:
    """Deliveries of the order in either shipping mode (Single: shippingInfo; Multiple: shipping[])."""
    deliveries = list((order.get("shippingInfo") or {}).get("deliveries") or [])
    for shipping in order.get("shipping") or []:
        deliveries.extend((shipping.get("shippingInfo") or {}).get("deliveries") or [])
    return deliveries


def find_delivery(order: Json, key: str) -> Json | None:
    return next((d for d in all_deliveries(order) if d.get("key") == key), None)


def delivered_quantities(order: Json) -> dict[str, int]:
    """Quantity delivered so far per line item id, summed over every delivery."""
    delivered: dict[str, int] = defaultdict(int)
    for delivery in all_deliveries(order):
        for item in delivery.get("items") or []:
            delivered[str(item["id"])] += int(item.get("quantity") or 0)
    return dict(delivered)


def _sku(line_item: Json) -> str | None:
    sku = (line_item.get("variant") or {}).get("sku")
    return str(sku) if sku else None


def shipment_state_for(order: Json, delivered: Mapping[str, int]) -> TargetState:
    """Shipped when every line item with a quantity is fully delivered, else Partial."""
    for line in order.get("lineItems") or []:
        quantity = int(line.get("quantity") or 0)
        if quantity > 0 and delivered.get(str(line["id"]), 0) < quantity:
            return PARTIAL
    return SHIPPED


def should_change_state(current: str | None, target: TargetState) -> bool:
    """Move forward only: never undo Delivered, never turn Shipped back into Partial."""
    if current == target:
        return False
    return _RANK.get(current or "", 0) < _RANK[target]


# --- building the actions --------------------------------------------------------------------


def delivery_items(
    order: Json, shipment: Shipment, delivered: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Delivery items ({id, quantity}) for the shipment's lines; refuses what does not fit."""
    wanted: dict[str, int] = defaultdict(int)
    for line in shipment.lines:
        wanted[line.sku] += line.quantity
    if not wanted:
        raise DispatchRejected(
            "rejected_payload", f"shipment {shipment.shipment_number} has no lines"
        )
    line_items = [li for li in order.get("lineItems") or [] if int(li.get("quantity") or 0) > 0]
    custom = [c for c in order.get("customLineItems") or [] if int(c.get("quantity") or 0) > 0]
    items: list[dict[str, Any]] = []
    unknown: list[str] = []
    too_many: list[str] = []
    for sku, quantity in wanted.items():
        candidates = [li for li in line_items if _sku(li) == sku] or [
            c for c in custom if sku in (c.get("key"), c.get("slug"))
        ]
        if not candidates:
            unknown.append(sku)
            continue
        left = quantity
        for candidate in candidates:
            open_quantity = int(candidate["quantity"]) - delivered.get(str(candidate["id"]), 0)
            take = min(left, max(open_quantity, 0))
            if take > 0:
                items.append({"id": str(candidate["id"]), "quantity": take})
                left -= take
        if left > 0:
            ordered = sum(int(c["quantity"]) for c in candidates)
            already = sum(delivered.get(str(c["id"]), 0) for c in candidates)
            too_many.append(f"{sku} (shipped {quantity}, ordered {ordered}, delivered {already})")
    problems = []
    if unknown:
        problems.append("SKUs not on the order: " + ", ".join(sorted(unknown)))
    if too_many:
        problems.append("more than is left to deliver: " + "; ".join(too_many))
    if problems:
        category = "unknown_line" if unknown else "over_shipment"
        raise DispatchRejected(
            category,
            f"shipment {shipment.shipment_number} does not match order "
            f"{shipment.external_document_number}: " + "; ".join(problems),
        )
    return items


def parcel_drafts(
    shipment: Shipment, items: Sequence[Mapping[str, Any]], provider: str | None
) -> list[dict[str, Any]]:
    """One parcel per tracking number; a carrier without tracking numbers gets one parcel.

    With several parcels the ERP does not say which item travels in which, so only a single
    parcel carries the items.
    """
    numbers = list(dict.fromkeys(n.strip() for n in shipment.tracking_numbers if n.strip()))
    if not numbers and not shipment.carrier:
        return []
    tracking_ids: list[str | None] = list(numbers) or [None]
    parcels = []
    for index, tracking_id in enumerate(tracking_ids, start=1):
        tracking: dict[str, Any] = {"isReturn": False}
        if tracking_id is not None:
            tracking["trackingId"] = tracking_id
        if shipment.carrier:
            tracking["carrier"] = shipment.carrier
        if provider:
            tracking["provider"] = provider
        parcel: dict[str, Any] = {
            "key": parcel_key(shipment.shipment_number, index),
            "trackingData": tracking,
        }
        if len(tracking_ids) == 1:
            parcel["items"] = [dict(item) for item in items]
        parcels.append(parcel)
    return parcels


def _shipping_key(order: Json) -> str | None:
    """The shippingKey addDelivery needs in Multiple mode; refuses what cannot be decided."""
    if order.get("shippingMode") == "Multiple":
        keys = [s.get("shippingKey") for s in order.get("shipping") or [] if s.get("shippingKey")]
        if len(keys) == 1:
            return str(keys[0])
        raise DispatchRejected(
            "rejected_payload",
            f"order uses multiple shipping methods ({len(keys)}); the ERP shipment does not say "
            "which one it belongs to",
        )
    if not isinstance(order.get("shippingInfo"), Mapping):
        raise DispatchRejected(
            "rejected_payload", "order has no shipping info, so commercetools takes no delivery"
        )
    return None


def plan_delivery(order: Json, shipment: Shipment, *, provider: str | None = None) -> DeliveryPlan:
    """The update actions that record ``shipment`` on ``order`` (none when already recorded)."""
    key = delivery_key(shipment.shipment_number)
    delivered = delivered_quantities(order)
    current = order.get("shipmentState")
    existing = find_delivery(order, key)
    actions: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    if existing is None:
        if is_cancelled(order):
            raise DispatchRejected(
                "order_cancelled",
                f"order {shipment.external_document_number} is cancelled in commercetools "
                f"(orderState {order.get('orderState')}, shipmentState {current}) but the ERP "
                f"shipped it as {shipment.shipment_number}",
            )
        shipping_key = _shipping_key(order)
        items = delivery_items(order, shipment, delivered)
        action: dict[str, Any] = {
            "action": "addDelivery",
            "deliveryKey": key,
            "items": items,
            "parcels": parcel_drafts(shipment, items, provider),
        }
        if shipping_key is not None:
            action["shippingKey"] = shipping_key
        actions.append(action)
        for item in items:
            delivered[item["id"]] = delivered.get(item["id"], 0) + item["quantity"]
    target = shipment_state_for(order, delivered)
    # A cancelled order that already holds this delivery was cancelled after dispatch: leave its
    # state to the people handling the cancellation.
    if should_change_state(current, target) and not is_cancelled(order):
        actions.append({"action": "changeShipmentState", "shipmentState": target})
    return DeliveryPlan(
        order_id=str(order["id"]),
        order_version=int(order["version"]),
        delivery_key=key,
        already_applied=existing is not None,
        target_state=target,
        current_state=current,
        actions=tuple(actions),
        items=tuple(items),
    )
