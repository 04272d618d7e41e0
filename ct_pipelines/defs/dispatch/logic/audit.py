"""What the dispatch checks look for, on plain data: shipments (a frame) and orders (API JSON).

- Failed status updates: shipped in the ERP more than N minutes ago, but the commercetools order
  is missing, lacks the shipment's delivery, or does not show Shipped, Partial or Delivered.
- Deliveries without tracking: deliveries on those orders with no parcel carrying a tracking id,
  so the customer's confirmation has nothing to follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from ct_pipelines.defs.dispatch.logic.keys import delivery_key
from ct_pipelines.defs.dispatch.logic.plan import DISPATCHED_STATES, all_deliveries, find_delivery

FAILED_UPDATE_COLUMNS = [
    "order",
    "shipment_number",
    "shipped_at",
    "age_minutes",
    "shipment_state",
    "problem",
]
UNTRACKED_COLUMNS = ["order", "delivery_key", "created_at", "parcels"]


def _age_minutes(now: datetime, shipped_at: str) -> int:
    return int((now - datetime.fromisoformat(shipped_at)).total_seconds() // 60)


def failed_status_updates(
    shipments: pd.DataFrame,
    orders: Mapping[str, Mapping[str, Any] | None],
    now: datetime,
    after: timedelta,
) -> pd.DataFrame:
    """Shipments older than ``after`` whose order does not show the dispatch, oldest first.

    ``orders`` maps the external document number to the order JSON (None when not found).
    """
    rows = []
    for row in shipments.itertuples(index=False):
        age = _age_minutes(now, row.shipped_at)
        if age < after.total_seconds() // 60:
            continue
        order = orders.get(row.external_document_number)
        state = None if order is None else order.get("shipmentState")
        if order is None:
            problem = "order not found in commercetools"
        elif find_delivery(order, delivery_key(row.shipment_number)) is None:
            problem = "delivery missing"
        elif state not in DISPATCHED_STATES:
            problem = f"shipment state {state or 'not set'}"
        else:
            continue
        rows.append(
            {
                "order": row.external_document_number,
                "shipment_number": row.shipment_number,
                "shipped_at": row.shipped_at,
                "age_minutes": age,
                "shipment_state": state,
                "problem": problem,
            }
        )
    frame = pd.DataFrame(rows, columns=FAILED_UPDATE_COLUMNS)
    return frame.sort_values("age_minutes", ascending=False, ignore_index=True)


def has_tracking(delivery: Mapping[str, Any]) -> bool:
    return any(
        (parcel.get("trackingData") or {}).get("trackingId")
        for parcel in delivery.get("parcels") or []
    )


def deliveries_without_tracking(orders: Mapping[str, Mapping[str, Any] | None]) -> pd.DataFrame:
    rows = [
        {
            "order": reference,
            "delivery_key": delivery.get("key"),
            "created_at": delivery.get("createdAt"),
            "parcels": len(delivery.get("parcels") or []),
        }
        for reference, order in orders.items()
        if order is not None
        for delivery in all_deliveries(order)
        if not has_tracking(delivery)
    ]
    return pd.DataFrame(rows, columns=UNTRACKED_COLUMNS)
