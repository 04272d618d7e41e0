"""Inventory entries: drafts and quantity, supply channel and restock actions."""

from __future__ import annotations

from ct_sandbox.commercetools.common import (
    Json,
    _check_key,
    _optional,
    _require,
)
from ct_sandbox.commercetools.core import SandboxCore


class InventoryMixin(SandboxCore):
    """Inventory entries: drafts and quantity, supply channel and restock actions."""

    def _inventory_draft(self, draft: Json) -> Json:
        entry: Json = {
            "sku": _require(draft, "sku", str, "InventoryEntryDraft"),
            "quantityOnStock": _require(draft, "quantityOnStock", int, "InventoryEntryDraft"),
        }
        entry["availableQuantity"] = entry["quantityOnStock"]
        if draft.get("supplyChannel") is not None:
            channel = self._reference(draft["supplyChannel"], "channel", "supplyChannel")
            entry["supplyChannel"] = {"typeId": "channel", "id": channel["id"]}
        if draft.get("key") is not None:
            entry["key"] = _check_key(draft["key"], "key")
        for name, kinds in (("restockableInDays", int), ("expectedDelivery", str)):
            if draft.get(name) is not None:
                entry[name] = _require(draft, name, kinds, "InventoryEntryDraft")
        if draft.get("custom") is not None:
            self._set_custom_type(entry, draft["custom"])
        return self._stamp(entry)

    @staticmethod
    def _quantity(action: Json) -> int:
        return int(_require(action, "quantity", int, action["action"]))

    def _inventory_add(self, doc: Json, action: Json) -> None:
        quantity = self._quantity(action)
        doc["quantityOnStock"] += quantity
        doc["availableQuantity"] = doc.get("availableQuantity", 0) + quantity

    def _inventory_remove(self, doc: Json, action: Json) -> None:
        quantity = self._quantity(action)
        # The API lets stock go below zero.
        doc["quantityOnStock"] -= quantity
        doc["availableQuantity"] = doc.get("availableQuantity", 0) - quantity

    def _inventory_change(self, doc: Json, action: Json) -> None:
        quantity = self._quantity(action)
        reserved = doc["quantityOnStock"] - doc.get("availableQuantity", doc["quantityOnStock"])
        doc["quantityOnStock"] = quantity
        doc["availableQuantity"] = quantity - reserved

    def _inventory_restockable(self, doc: Json, action: Json) -> None:
        days = _optional(action, "restockableInDays", int, "setRestockableInDays")
        if days is None:
            doc.pop("restockableInDays", None)
        else:
            doc["restockableInDays"] = days

    def _inventory_expected(self, doc: Json, action: Json) -> None:
        expected = _optional(action, "expectedDelivery", str, "setExpectedDelivery")
        if expected is None:
            doc.pop("expectedDelivery", None)
        else:
            doc["expectedDelivery"] = expected

    def _inventory_supply_channel(self, doc: Json, action: Json) -> None:
        if action.get("supplyChannel") is None:
            doc.pop("supplyChannel", None)
            return
        channel = self._reference(action["supplyChannel"], "channel", "setSupplyChannel")
        doc["supplyChannel"] = {"typeId": "channel", "id": channel["id"]}
