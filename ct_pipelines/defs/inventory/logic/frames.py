"""Stock from both systems in one shape, so drift between them can be computed and followed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

INVENTORY_SNAPSHOT_COLUMNS: dict[str, str] = {
    "system": "`erp` (stock by location) or `commercetools` (inventory entry by supply channel)",
    "sku": "stock keeping unit",
    "location": "ERP/WMS location code (ERP rows only)",
    "channel_key": "commercetools supply channel key (commercetools rows only)",
    "quantity_on_stock": "on hand (ERP) or quantityOnStock (commercetools)",
    "reserved": "reserved or allocated (ERP) or quantityOnStock - availableQuantity",
    "available": "available to sell",
    "version": "commercetools entry version (for version-checked updates)",
    "entry_id": "commercetools inventory entry id",
    "taken_at": "when the snapshot was taken (UTC)",
}


def erp_stock_rows(levels: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {
            "system": "erp",
            "sku": level.sku,
            "location": level.location,
            "channel_key": None,
            "quantity_on_stock": int(level.on_hand),
            "reserved": int(level.reserved),
            "available": int(level.available),
            "version": None,
            "entry_id": None,
        }
        for level in levels
    ]


def commercetools_inventory_rows(
    entries: Iterable[Mapping[str, Any]], channel_keys: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Rows from inventory entry JSON (``GET /inventory`` results; dicts, not models, because a
    large catalogue has 200,000 of them)."""
    rows = []
    for entry in entries:
        channel = (entry.get("supplyChannel") or {}).get("id")
        on_stock = int(entry["quantityOnStock"])
        available = int(entry.get("availableQuantity", on_stock))
        rows.append(
            {
                "system": "commercetools",
                "sku": entry["sku"],
                "location": None,
                # An entry without a channel is the SKU's global entry; an unknown id is kept visible.
                "channel_key": channel_keys.get(channel, f"unknown:{channel}") if channel else None,
                "quantity_on_stock": on_stock,
                "reserved": on_stock - available,
                "available": available,
                "version": int(entry["version"]),
                "entry_id": entry["id"],
            }
        )
    return rows


def inventory_snapshot_frame(
    erp_rows: list[dict[str, Any]], commercetools_rows: list[dict[str, Any]]
) -> pd.DataFrame:
    """Both systems in one frame; ``taken_at`` is added by the caller."""
    frame = pd.DataFrame(erp_rows + commercetools_rows, columns=list(INVENTORY_SNAPSHOT_COLUMNS))
    # Integers stay integers where one system has no value (nullable Int64, not float).
    frame["version"] = frame["version"].astype("Int64")
    return frame
