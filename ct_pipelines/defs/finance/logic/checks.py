"""What the finance checks and the reconciliation report: the closed days, their variances,
the days not posted."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from ct_pipelines.defs.finance.logic.reconcile import absolute_variances
from ct_pipelines.defs.finance.logic.settlement import STATUSES
from ct_pipelines.defs.finance.logic.snapshots import JOURNALS, POSTED_STATUSES, read_frame
from ct_pipelines.kernel.money import display_money
from ct_pipelines.kernel.shop import SHOP


def closed_days(lookback_days: int, now: datetime | None = None) -> list[date]:
    """The completed shop days of the look-back window, oldest first, from the first shop day."""
    today = (now or datetime.now(UTC)).astimezone(SHOP.tz).date()
    first = date.fromisoformat(SHOP.orders_start_date)
    days = [today - timedelta(days=n) for n in range(lookback_days, 0, -1)]
    return [d for d in days if d >= first]


def stored_frames(store: Any, name: str, days: list[date]) -> pd.DataFrame:
    frames = [read_frame(store, name, d.isoformat()) for d in days]
    found = [f for f in frames if f is not None and len(f)]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def variance_verdict(
    totals: pd.DataFrame, variances: pd.DataFrame, tolerance_minor: int
) -> tuple[bool, dict[str, Any]]:
    """(passed, metadata) for the reconciled days in ``totals``; tables are data frames."""
    if totals.empty:
        return True, {"days_checked": 0, "days_over_tolerance": 0, "orders_behind": 0}
    totals = totals.copy()
    totals["variance_minor"] = totals["variance_minor"].astype("int64")
    totals["variance_abs_minor"] = absolute_variances(totals)
    over = totals[totals["variance_abs_minor"] > tolerance_minor]
    within = totals[
        (totals["variance_abs_minor"] != 0) & (totals["variance_abs_minor"] <= tolerance_minor)
    ]
    behind = variances[variances["day"].isin(set(over["day"]))] if len(variances) else variances
    metadata: dict[str, Any] = {
        "tolerance_minor": tolerance_minor,
        "days_checked": int(totals["day"].nunique()),
        "days_over_tolerance": int(over["day"].nunique()),
        "metrics_within_tolerance": len(within),
        "orders_behind": int(behind["document"].dropna().nunique()) if len(behind) else 0,
        "max_abs_variance_minor": int(totals["variance_abs_minor"].max()),
    }
    money = totals[totals["metric"] != "orders"]
    for currency, group in money.groupby("currency"):
        metadata[f"variance_abs_minor_{currency}"] = int(group["variance_abs_minor"].sum())
    metadata["over_tolerance"] = (
        over[
            [
                "day",
                "currency",
                "metric",
                "commercetools_minor",
                "erp_minor",
                "variance_minor",
                "variance_abs_minor",
                "orders",
            ]
        ]
    ).head(100)
    metadata["variances"] = (
        behind[["day", "currency", "kind", "metric", "document", "reference", "variance_minor"]]
        if len(behind)
        else pd.DataFrame()
    ).head(100)
    return over.empty, metadata


def posting_window(
    store: Any, days: list[date], configured_start: str | None
) -> tuple[list[date], str | None]:
    """The days of ``days`` a posting gap can be on, and the first of them.

    From the configured start (CT_PIPELINES_ORDERS_START_DATE) when one is set; otherwise from
    the first day ever built: the days before a deployment's first run were never meant to be
    built, and counting them would fail the check on every fresh install.
    """
    if configured_start:
        first: str | None = configured_start
    else:
        built = [i.partition_key for i in store.list_snapshots(JOURNALS) if i.partition_key]
        first = min(built) if built else None
    if first is None:
        return [], None
    start = date.fromisoformat(first)
    return [d for d in days if d >= start], first


def posting_gaps(store: Any, port: Any, days: list[date]) -> pd.DataFrame:
    """Days whose journals are not all in the ERP: never built, not posted, or gone."""
    rows = []
    for day in days:
        frame = read_frame(store, JOURNALS, day.isoformat())
        if frame is None:
            rows.append({"day": day.isoformat(), "batch_id": None, "problem": "never built"})
            continue
        posted = {b.batch_id for b in port.iter_journal_batches(day)}
        for row in frame.itertuples(index=False):
            if row.status not in POSTED_STATUSES and row.status != "posted_differs":
                rows.append({"day": row.day, "batch_id": row.batch_id, "problem": row.status})
            elif row.batch_id not in posted:
                rows.append({"day": row.day, "batch_id": row.batch_id, "problem": "not in the ERP"})
    return pd.DataFrame(rows, columns=["day", "batch_id", "problem"])


def reconciliation_metadata(totals: pd.DataFrame, variances: pd.DataFrame) -> dict[str, Any]:
    """Numbers the UI can plot across materialisations, and the variances behind them (frames)."""
    money = totals[totals["metric"] != "orders"]
    absolute = absolute_variances(totals) if len(totals) else totals["variance_minor"]
    metadata: dict[str, Any] = {
        "days": int(totals["day"].nunique()),
        "days_with_variance": int(totals.loc[absolute != 0, "day"].nunique()),
        "orders_with_variance": int(variances["document"].dropna().nunique()),
        "orders_missing_in_erp": int(
            variances.loc[variances["kind"] == "missing_in_erp", "document"].nunique()
        ),
        "orders_only_in_erp": int(
            variances.loc[
                variances["kind"].isin(["only_in_erp", "not_eligible_in_commercetools"]),
                "document",
            ].nunique()
        ),
        "orders_with_amount_differences": int(
            variances.loc[variances["kind"] == "amounts_differ", "document"].nunique()
        ),
        "refunds_not_posted": int((variances["kind"] == "refund_not_posted").sum()),
        "orders_duplicated_in_erp": int(
            variances.loc[
                variances["kind"].isin(["duplicate_in_erp", "second_document_in_erp"]),
                "document",
            ].nunique()
        ),
        "orders_in_wrong_currency_in_erp": int(
            variances.loc[variances["kind"] == "wrong_currency_in_erp", "document"].nunique()
        ),
    }
    for currency, group in money.groupby("currency"):
        absolute_minor = int(absolute_variances(group).sum())
        metadata[f"variance_abs_minor_{currency}"] = absolute_minor
        metadata[f"variance_abs_{currency}"] = display_money(absolute_minor, str(currency))
        for metric in ("gross", "net", "tax", "shipping", "refunds"):
            value = int(group.loc[group["metric"] == metric, "variance_minor"].sum())
            metadata[f"{metric}_variance_minor_{currency}"] = value
            metadata[f"{metric}_variance_{currency}"] = display_money(value, str(currency))
    metadata["totals"] = totals[absolute != 0].head(100)
    metadata["variances"] = (
        variances[
            [
                "day",
                "currency",
                "kind",
                "metric",
                "document",
                "reference",
                "commercetools_minor",
                "erp_minor",
                "variance_minor",
            ]
        ]
    ).head(100)
    return metadata


SETTLEMENT_SHOWN = [
    "day",
    "status",
    "type",
    "document",
    "transaction_id",
    "balance_transaction_ids",
    "commercetools",
    "settled",
    "difference",
    "detail",
]


def settlement_verdict(items: pd.DataFrame, totals: pd.DataFrame) -> tuple[bool, dict[str, Any]]:
    """(passed, metadata) over stored settlement items and totals; tables are data frames.

    Every item not ``matched`` fails: a charge the provider never settled, money the provider
    moved that commercetools does not know, an amount settled other than recorded.
    """
    if items.empty:
        return True, {"days_checked": 0, "transactions_checked": 0, "items_not_matched": 0}
    off = items[items["status"] != "matched"]
    counts = items["status"].value_counts().to_dict()
    metadata: dict[str, Any] = {
        "days_checked": int(items["day"].nunique()),
        "days_with_differences": int(off["day"].nunique()),
        "transactions_checked": int(items["transaction_id"].notna().sum()),
        "items_not_matched": len(off),
        **{status: int(counts.get(status, 0)) for status in STATUSES},
    }
    for currency, group in off.groupby("currency"):
        metadata[f"not_matched_abs_minor_{currency}"] = int(
            group["difference_minor"].astype("int64").abs().sum()
        )
    if not totals.empty:
        for currency, group in totals.groupby("currency"):
            metadata[f"fees_minor_{currency}"] = int(group["fee_minor"].astype("int64").sum())
    metadata["not_matched"] = off[SETTLEMENT_SHOWN].head(100)
    return off.empty, metadata
