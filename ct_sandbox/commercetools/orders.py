"""Orders: update actions (sync info, states, deliveries, parcels, payments) and import."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from ct_sandbox.commercetools.common import (
    ORDER_STATES,
    PAYMENT_STATES,
    SHIPMENT_STATES,
    ApiError,
    Json,
    Request,
    Response,
    _check_key,
    _enum,
    _line_total,
    _optional,
    _require,
    invalid_input,
    invalid_json,
    invalid_operation,
    typed_money,
)
from ct_sandbox.commercetools.core import SandboxCore


class OrdersMixin(SandboxCore):
    """Orders: update actions (sync info, states, deliveries, parcels, payments) and import."""

    def _order_update_sync_info(self, doc: Json, action: Json) -> None:
        channel = self._reference(action.get("channel"), "channel", "updateSyncInfo -> channel")
        if not {"OrderExport", "OrderImport"} & set(channel.get("roles", [])):
            raise invalid_input(
                f"The channel '{channel.get('key', channel['id'])}' needs the role OrderExport or "
                "OrderImport to be used in updateSyncInfo."
            )
        entry: Json = {"channel": {"typeId": "channel", "id": channel["id"]}}
        external = _optional(action, "externalId", str, "updateSyncInfo")
        if external is not None:
            entry["externalId"] = external
        entry["syncedAt"] = _optional(action, "syncedAt", str, "updateSyncInfo") or self._now()
        doc.setdefault("syncInfo", []).append(entry)

    def _order_change_state(self, doc: Json, action: Json) -> None:
        doc["orderState"] = _enum(action, "orderState", ORDER_STATES, "changeOrderState", True)

    def _order_change_shipment_state(self, doc: Json, action: Json) -> None:
        state = _enum(action, "shipmentState", SHIPMENT_STATES, "changeShipmentState", False)
        if state is None:
            doc.pop("shipmentState", None)
        else:
            doc["shipmentState"] = state

    def _order_change_payment_state(self, doc: Json, action: Json) -> None:
        state = _enum(action, "paymentState", PAYMENT_STATES, "changePaymentState", False)
        if state is None:
            doc.pop("paymentState", None)
        else:
            doc["paymentState"] = state

    @staticmethod
    def _deliveries(doc: Json) -> list[Json]:
        return (doc.get("shippingInfo") or {}).get("deliveries") or []

    def _delivery_items(self, doc: Json, items: Any, where: str) -> list[Json]:
        if items is None:
            return []
        if not isinstance(items, list):
            raise invalid_json(f"{where} -> items: expected a list")
        known = {li["id"] for li in doc.get("lineItems", [])} | {
            cli["id"] for cli in doc.get("customLineItems", [])
        }
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise invalid_json(f"{where} -> items: expected objects")
            item_id = _require(item, "id", str, f"{where} -> items")
            quantity = _require(item, "quantity", int, f"{where} -> items")
            if item_id not in known:
                raise invalid_input(f"{where}: the order has no line item with id '{item_id}'.")
            out.append({"id": item_id, "quantity": quantity})
        return out

    def _parcel(self, doc: Json, draft: Json, where: str, key_name: str = "key") -> Json:
        parcel: Json = {"id": str(uuid.uuid4()), "createdAt": self._now()}
        key = draft.get(key_name)
        if key is not None:
            _check_key(key, key_name)
            existing = {p.get("key") for d in self._deliveries(doc) for p in d.get("parcels", [])}
            if key in existing:
                raise ApiError(
                    400,
                    "DuplicateField",
                    f"A parcel with key '{key}' already exists in this order.",
                    field="parcelKey",
                    duplicateValue=key,
                )
            parcel["key"] = key
        for name in ("measurements", "trackingData"):
            if draft.get(name) is not None:
                parcel[name] = copy.deepcopy(_require(draft, name, dict, where))
        parcel["items"] = self._delivery_items(doc, draft.get("items"), where)
        return parcel

    def _order_add_delivery(self, doc: Json, action: Json) -> None:
        if not isinstance(doc.get("shippingInfo"), dict):
            raise invalid_operation("The order has no shippingInfo; a delivery cannot be added.")
        delivery: Json = {"id": str(uuid.uuid4()), "createdAt": self._now()}
        key = action.get("deliveryKey")
        if key is not None:
            _check_key(key, "deliveryKey")
            if any(d.get("key") == key for d in self._deliveries(doc)):
                raise ApiError(
                    400,
                    "DuplicateField",
                    f"A delivery with key '{key}' already exists in this order.",
                    field="deliveryKey",
                    duplicateValue=key,
                )
            delivery["key"] = key
        delivery["items"] = self._delivery_items(doc, action.get("items"), "addDelivery")
        deliveries = doc["shippingInfo"].setdefault("deliveries", [])
        parcels: list[Json] = []
        delivery["parcels"] = parcels
        # Appended first so that parcel keys are checked against this delivery's siblings too.
        deliveries.append(delivery)
        for draft in _optional(action, "parcels", list, "addDelivery") or []:
            if not isinstance(draft, dict):
                raise invalid_json("addDelivery -> parcels: expected objects")
            parcels.append(self._parcel(doc, draft, "addDelivery -> parcels"))
        if action.get("address") is not None:
            delivery["address"] = copy.deepcopy(_require(action, "address", dict, "addDelivery"))
        if action.get("custom") is not None:
            delivery["custom"] = copy.deepcopy(action["custom"])

    def _order_add_parcel(self, doc: Json, action: Json) -> None:
        delivery_id = action.get("deliveryId")
        delivery_key = action.get("deliveryKey")
        if delivery_id is None and delivery_key is None:
            raise invalid_input("addParcelToDelivery needs deliveryId or deliveryKey.")
        for delivery in self._deliveries(doc):
            if (delivery_id is not None and delivery["id"] == delivery_id) or (
                delivery_id is None and delivery.get("key") == delivery_key
            ):
                delivery.setdefault("parcels", []).append(
                    self._parcel(doc, action, "addParcelToDelivery", key_name="parcelKey")
                )
                return
        raise invalid_input(f"The order has no delivery {json.dumps(delivery_id or delivery_key)}.")

    def _order_set_tracking(self, doc: Json, action: Json) -> None:
        parcel_id = action.get("parcelId")
        parcel_key = action.get("parcelKey")
        if parcel_id is None and parcel_key is None:
            raise invalid_input("setParcelTrackingData needs parcelId or parcelKey.")
        for delivery in self._deliveries(doc):
            for parcel in delivery.get("parcels", []):
                if (parcel_id is not None and parcel["id"] == parcel_id) or (
                    parcel_id is None and parcel.get("key") == parcel_key
                ):
                    tracking = _optional(action, "trackingData", dict, "setParcelTrackingData")
                    if tracking is None:
                        parcel.pop("trackingData", None)
                    else:
                        parcel["trackingData"] = copy.deepcopy(tracking)
                    return
        raise invalid_input(f"The order has no parcel {json.dumps(parcel_id or parcel_key)}.")

    def _order_add_payment(self, doc: Json, action: Json) -> None:
        payment = self._reference(action.get("payment"), "payment", "addPayment -> payment")
        payments = doc.setdefault("paymentInfo", {}).setdefault("payments", [])
        if any(p.get("id") == payment["id"] for p in payments):
            raise invalid_operation(f"The payment '{payment['id']}' is already on this order.")
        payments.append({"typeId": "payment", "id": payment["id"]})

    def _order_set_number(self, doc: Json, action: Json) -> None:
        if doc.get("orderNumber") is not None:
            raise invalid_operation("The orderNumber is already set and cannot be changed.")
        number = _optional(action, "orderNumber", str, "setOrderNumber")
        if number is not None:
            doc["orderNumber"] = number

    def _import_order(self, request: Request) -> Response:
        draft = request.json()
        order: Json = {
            "orderState": _enum(draft, "orderState", ORDER_STATES, "orderImport", False) or "Open",
            "totalPrice": typed_money(draft.get("totalPrice"), "totalPrice", cent_only=True),
            "lineItems": [],
            "customLineItems": [],
            "syncInfo": [],
            "shippingMode": "Single",
            "origin": "Customer",
            "taxRoundingMode": draft.get("taxRoundingMode", "HalfEven"),
            "taxCalculationMode": draft.get("taxCalculationMode", "LineItemLevel"),
            "inventoryMode": draft.get("inventoryMode", "None"),
        }
        for name, allowed in (("shipmentState", SHIPMENT_STATES), ("paymentState", PAYMENT_STATES)):
            value = _enum(draft, name, allowed, "orderImport", False)
            if value is not None:
                order[name] = value
        for name in (
            "orderNumber", "customerId", "customerEmail", "country", "completedAt",
            "shippingAddress", "billingAddress", "custom", "store", "customerGroup",
        ):  # fmt: skip
            if draft.get(name) is not None:
                order[name] = copy.deepcopy(draft[name])
        for index, line in enumerate(_optional(draft, "lineItems", list, "orderImport") or []):
            where = f"lineItems[{index}]"
            quantity = _require(line, "quantity", int, where)
            price = _require(line, "price", dict, where)
            unit = typed_money(price.get("value"), f"{where} -> price -> value")
            variant = copy.deepcopy(_require(line, "variant", dict, where))
            variant.setdefault("id", 1)
            item: Json = {
                "id": str(uuid.uuid4()),
                "productId": line.get("productId") or str(uuid.uuid4()),
                "name": copy.deepcopy(_require(line, "name", dict, where)),
                "variant": variant,
                "price": {"id": str(uuid.uuid4()), "value": unit},
                "quantity": quantity,
                "totalPrice": _line_total(unit, quantity),
                "discountedPricePerQuantity": [],
                "state": [],
                "priceMode": "Platform",
                "lineItemMode": "Standard",
            }
            for name in ("taxRate", "supplyChannel", "distributionChannel", "taxedPrice", "custom"):
                if line.get(name) is not None:
                    item[name] = copy.deepcopy(line[name])
            order["lineItems"].append(item)
        for index, line in enumerate(
            _optional(draft, "customLineItems", list, "orderImport") or []
        ):
            where = f"customLineItems[{index}]"
            quantity = _require(line, "quantity", int, where)
            money = typed_money(line.get("money"), f"{where} -> money")
            slug = _require(line, "slug", str, where)
            item = {
                "id": str(uuid.uuid4()),
                "name": copy.deepcopy(_require(line, "name", dict, where)),
                "money": money,
                "totalPrice": _line_total(money, quantity),
                "slug": slug,
                "quantity": quantity,
                "discountedPricePerQuantity": [],
                "state": [],
                "priceMode": "Standard",
            }
            for name in ("taxRate", "taxCategory", "taxedPrice", "custom"):
                if line.get(name) is not None:
                    item[name] = copy.deepcopy(line[name])
            order["customLineItems"].append(item)
        if draft.get("taxedPrice") is not None:
            taxed = _require(draft, "taxedPrice", dict, "orderImport")
            order["taxedPrice"] = {
                "totalNet": typed_money(
                    taxed.get("totalNet"), "taxedPrice -> totalNet", cent_only=True
                ),
                "totalGross": typed_money(
                    taxed.get("totalGross"), "taxedPrice -> totalGross", cent_only=True
                ),
                "taxPortions": [
                    {
                        **copy.deepcopy(p),
                        "amount": typed_money(
                            p.get("amount"), "taxPortions -> amount", cent_only=True
                        ),
                    }
                    for p in taxed.get("taxPortions", [])
                ],
            }
        if draft.get("shippingInfo") is not None:
            shipping = copy.deepcopy(_require(draft, "shippingInfo", dict, "orderImport"))
            shipping["price"] = typed_money(
                shipping.get("price"), "shippingInfo -> price", cent_only=True
            )
            shipping.setdefault("deliveries", [])
            shipping.setdefault("shippingMethodState", "MatchesCart")
            order["shippingInfo"] = shipping
        if draft.get("paymentInfo") is not None:
            refs = (_require(draft, "paymentInfo", dict, "orderImport").get("payments")) or []
            order["paymentInfo"] = {
                "payments": [
                    {"typeId": "payment", "id": self._reference(r, "payment", "paymentInfo")["id"]}
                    for r in refs
                ]
            }
        doc = self._insert("orders", self._stamp(order))
        return self._document_response(201, "orders", doc, request)
