"""The finance snapshots (one per shop day) and what is read back from them."""

from datetime import date
from typing import Any

import pandas as pd

from ct_pipelines.defs.finance.logic.days import month_start, week_start
from ct_pipelines.defs.finance.logic.rollup import PeriodClose, period_close
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines.store import SnapshotNotFound

FLOW = "finance"


ORDER_TOTALS = "finance_order_totals"


TRANSACTIONS = "finance_payment_transactions"


JOURNALS = "finance_journal_batches"


RECONCILIATION = "finance_reconciliation"


VARIANCES = "finance_variances"


PERIOD_CLOSE = "finance_period_close"


VAT_SUMMARY = "finance_vat_summary"


SETTLEMENT = "finance_payment_settlement"


SETTLEMENT_TOTALS = "finance_settlement_totals"


POSTED_STATUSES = frozenset({"posted", "already_posted", "corrected"})


def read_frame(store: Any, name: str, key: str) -> pd.DataFrame | None:
    """A day's snapshot, or None when that day was never built."""
    try:
        return store.read_snapshot(name, partition_key=key)
    except SnapshotNotFound:
        return None


def unposted_days(store: Any, days: list[date]) -> list[date]:
    """Days whose journal batches are not all in the ERP (or were never built)."""
    missing = []
    for day in days:
        frame = read_frame(store, JOURNALS, day.isoformat())
        if frame is None or not set(frame["status"]).issubset(POSTED_STATUSES):
            missing.append(day)
    return missing


def period_closes(store: Any, day: date) -> tuple[PeriodClose, PeriodClose]:
    """Week-to-date and month-to-date as of ``day``, from the stored daily reconciliations."""
    first = max(min(week_start(day), month_start(day)), date.fromisoformat(SHOP.orders_start_date))
    daily: dict[date, pd.DataFrame] = {}
    current = first
    while current <= day:
        frame = read_frame(store, RECONCILIATION, current.isoformat())
        if frame is not None:
            daily[current] = frame
        current = date.fromordinal(current.toordinal() + 1)
    unposted = unposted_days(store, sorted(daily))
    start = date.fromisoformat(SHOP.orders_start_date)
    return (
        period_close("week", day, daily, unposted, not_before=start),
        period_close("month", day, daily, unposted, not_before=start),
    )
