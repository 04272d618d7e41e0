"""What the order-to-cash checks and the retry schedule look at: recent batches, orders not in
the ERP, totals that differ, duplicate documents."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from ct_pipelines.defs.order_to_cash.logic.batch import read_batch
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.kernel.shop import SHOP


def recent_batches(store: Any, days: int, now: datetime | None = None) -> pd.DataFrame:
    """The order_batches of the last ``days`` shop days (only days that were materialised)."""
    today = (now or datetime.now(UTC)).astimezone(SHOP.tz).date()
    # The order_days partitions: from the first shop day up to today (end_offset=1).
    last = datetime.now(UTC).astimezone(SHOP.tz).date().isoformat()
    frames = []
    for offset in range(days):
        key = (today - timedelta(days=offset)).isoformat()
        if SHOP.orders_start_date <= key <= last:
            frame = read_batch(store, key)
            if len(frame):
                frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def orphaned_orders_frame(
    batches: pd.DataFrame, exported: set[str], now: datetime, after: timedelta
) -> pd.DataFrame:
    """Eligible orders older than ``after`` that the ledger does not show as in the ERP."""
    if batches.empty:
        return batches
    eligible = batches[batches["eligible"].astype(bool)].copy()
    created = pd.to_datetime(eligible["created_at"], utc=True, format="ISO8601")
    eligible["age_minutes"] = ((now - created).dt.total_seconds() // 60).astype(int)
    late = eligible[(eligible["age_minutes"] >= after.total_seconds() // 60)]
    return late[~late["external_document_number"].isin(exported)].sort_values(
        "age_minutes", ascending=False
    )


def totals_mismatches(batches: pd.DataFrame, erp_orders: dict[str, Any]) -> pd.DataFrame:
    """Orders whose ERP totals differ from commercetools' by even one minor unit."""
    rows = []
    for row in batches.itertuples(index=False):
        erp = erp_orders.get(row.external_document_number)
        if erp is None:
            continue
        for name in ("net_minor", "tax_minor", "gross_minor"):
            ours, theirs = int(getattr(row, name)), int(getattr(erp.totals, name))
            if ours != theirs:
                rows.append(
                    {
                        "order": row.external_document_number,
                        "amount": name,
                        "commercetools": ours,
                        "erp": theirs,
                        "difference": theirs - ours,
                        "currency": row.currency,
                    }
                )
    return pd.DataFrame(
        rows, columns=["order", "amount", "commercetools", "erp", "difference", "currency"]
    )


def duplicate_documents(erp_orders: list[Any]) -> pd.DataFrame:
    """ERP sales orders that share an external document number or a commercetools order.

    The second case is how duplicates really happen: an order exported under its id, then again
    under an order number that was set later, is two documents for one sale.
    """
    rows = [
        {
            "external_document_number": o.external_document_number,
            "source_order_id": o.source_order_id,
            "sales_order_no": o.sales_order_no,
            "gross_minor": o.totals.gross_minor,
        }
        for o in erp_orders
    ]
    frame = pd.DataFrame(
        rows,
        columns=["external_document_number", "source_order_id", "sales_order_no", "gross_minor"],
    )
    if frame.empty:
        return frame
    by_document = frame.duplicated("external_document_number", keep=False)
    by_order = frame.duplicated("source_order_id", keep=False)
    return frame[by_document | by_order].sort_values(["source_order_id", "sales_order_no"])


RETRY_LOOKBACK_DAYS = 30


def days_needing_retry(store, now: datetime, lookback_days: int = RETRY_LOOKBACK_DAYS) -> list[str]:
    """Shop days holding eligible orders that are not in the ERP yet (parked or never tried)."""
    batches = recent_batches(store, lookback_days, now)
    if batches.empty:
        return []
    exported = store.exported_keys(FLOW, list(batches["external_document_number"]))
    waiting = orphaned_orders_frame(batches, exported, now, timedelta(0))
    return sorted(set(waiting["order_date"]))
