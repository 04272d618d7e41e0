"""ERP shipments as a table, kept in the store per day they were received.

Dispatch applies what is in this table and not yet in the ledger, and the checks compare it with
commercetools. Partitions are keyed by the UTC day the integration *received* a shipment, not the
day the ERP says it shipped: a late or back-dated shipment still lands in a recent partition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from ct_pipelines.erp.port import Shipment
from ct_pipelines.store import SnapshotNotFound

SNAPSHOT = "erp_shipments"

SHIPMENT_COLUMNS: dict[str, str] = {
    "shipment_number": "the ERP/WMS shipment number (delivery key source)",
    "external_document_number": "commercetools orderNumber, or the order id when it has none",
    "shipped_at": "when the ERP/WMS says the goods left (UTC, ISO 8601)",
    "received_at": "when the integration first read the shipment (UTC, ISO 8601)",
    "carrier": "carrier named by the ERP/WMS",
    "tracking_numbers": "tracking numbers, JSON list (one parcel each)",
    "lines": "shipped lines, JSON list of {sku, quantity}",
    "line_count": "number of shipped lines",
    "units": "units shipped across all lines",
}


def received_day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def recent_days(now: datetime, days: int) -> list[str]:
    """Partition keys of the last ``days`` UTC days, today included, oldest first."""
    today = now.astimezone(UTC).date()
    return [(today - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def shipments_frame(shipments: Iterable[Shipment], received_at: datetime) -> pd.DataFrame:
    rows: list[dict[str, Any]] = [
        {
            "shipment_number": s.shipment_number,
            "external_document_number": s.external_document_number,
            "shipped_at": _iso(s.shipped_at),
            "received_at": _iso(received_at),
            "carrier": s.carrier,
            "tracking_numbers": json.dumps(list(s.tracking_numbers)),
            "lines": json.dumps([line.model_dump() for line in s.lines]),
            "line_count": len(s.lines),
            "units": sum(line.quantity for line in s.lines),
        }
        for s in shipments
    ]
    frame = pd.DataFrame(rows, columns=list(SHIPMENT_COLUMNS))
    return frame.astype({"line_count": "int64", "units": "int64"})


def merge_shipments(existing: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Existing rows plus new ones; a shipment read twice keeps its first reading."""
    if existing.empty:
        combined = new
    elif new.empty:
        combined = existing
    else:
        combined = pd.concat([existing[new.columns], new], ignore_index=True)
    combined = combined.drop_duplicates("shipment_number", keep="first")
    return combined.reset_index(drop=True).astype({"line_count": "int64", "units": "int64"})


def shipments_from_frame(frame: pd.DataFrame) -> list[Shipment]:
    return [
        Shipment(
            shipment_number=row.shipment_number,
            external_document_number=row.external_document_number,
            shipped_at=datetime.fromisoformat(row.shipped_at),
            carrier=row.carrier if isinstance(row.carrier, str) else None,
            tracking_numbers=json.loads(row.tracking_numbers),
            lines=json.loads(row.lines),
        )
        for row in frame.itertuples(index=False)
    ]


def empty_shipments() -> pd.DataFrame:
    return shipments_frame([], datetime.now(UTC))


def read_day(integration_store: Any, day: str) -> pd.DataFrame:
    try:
        return integration_store.read_snapshot(SNAPSHOT, partition_key=day)
    except SnapshotNotFound:
        return empty_shipments()


def recent_shipments(integration_store: Any, days: int, now: datetime) -> pd.DataFrame:
    """Shipments received over the last ``days`` UTC days (a shipment appears once)."""
    frame = empty_shipments()
    for day in recent_days(now, days):
        frame = merge_shipments(frame, read_day(integration_store, day))
    return frame
