"""Finance checks: zero variance, every day posted, tax rounding patterns.

Numeric metadata on every evaluation lets the UI plot variance over time.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from ct_pipelines.defs.finance import assets as finance_assets
from ct_pipelines.defs.finance.logic.facts import orders_from_frame
from ct_pipelines.defs.finance.logic.rollup import tax_rounding_pattern
from ct_pipelines.defs.resources import ErpResource, IntegrationStoreResource
from ct_pipelines.kernel.shop import SHOP


class VarianceCheckConfig(dg.Config):
    tolerance_minor: int = 0  # per day, currency and metric; above it the check is an ERROR
    lookback_days: int = 35  # a month-to-date and a little before


class PostingCheckConfig(dg.Config):
    lookback_days: int = 7


class RoundingCheckConfig(dg.Config):
    lookback_days: int = 7
    error_at_orders: int = 10  # this many orders off in the window is a pattern, not noise


def closed_days(lookback_days: int, now: datetime | None = None) -> list[date]:
    """The completed shop days of the look-back window, oldest first, from the first shop day."""
    today = (now or datetime.now(UTC)).astimezone(SHOP.tz).date()
    first = date.fromisoformat(SHOP.orders_start_date)
    days = [today - timedelta(days=n) for n in range(lookback_days, 0, -1)]
    return [d for d in days if d >= first]


def _frames(store: Any, name: str, days: list[date]) -> pd.DataFrame:
    frames = [finance_assets.read_frame(store, name, d.isoformat()) for d in days]
    found = [f for f in frames if f is not None and len(f)]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def _md(frame: pd.DataFrame, limit: int = 50) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("none")
    return dg.MetadataValue.md(frame.head(limit).to_markdown(index=False))


def variance_verdict(
    totals: pd.DataFrame, variances: pd.DataFrame, tolerance_minor: int
) -> tuple[bool, dict[str, Any]]:
    """(passed, metadata) for the reconciled days in ``totals``."""
    if totals.empty:
        return True, {"days_checked": 0, "days_over_tolerance": 0, "orders_behind": 0}
    totals = totals.copy()
    totals["variance_minor"] = totals["variance_minor"].astype("int64")
    over = totals[totals["variance_minor"].abs() > tolerance_minor]
    within = totals[
        (totals["variance_minor"] != 0) & (totals["variance_minor"].abs() <= tolerance_minor)
    ]
    behind = variances[variances["day"].isin(set(over["day"]))] if len(variances) else variances
    metadata: dict[str, Any] = {
        "tolerance_minor": tolerance_minor,
        "days_checked": int(totals["day"].nunique()),
        "days_over_tolerance": int(over["day"].nunique()),
        "metrics_within_tolerance": len(within),
        "orders_behind": int(behind["document"].dropna().nunique()) if len(behind) else 0,
        "max_abs_variance_minor": int(totals["variance_minor"].abs().max()),
    }
    money = totals[totals["metric"] != "orders"]
    for currency, group in money.groupby("currency"):
        metadata[f"variance_abs_minor_{currency}"] = int(group["variance_minor"].abs().sum())
    metadata["over_tolerance"] = _md(
        over[
            [
                "day",
                "currency",
                "metric",
                "commercetools_minor",
                "erp_minor",
                "variance_minor",
                "orders",
            ]
        ],
        100,
    )
    metadata["variances"] = _md(
        behind[["day", "currency", "kind", "metric", "document", "reference", "variance_minor"]]
        if len(behind)
        else pd.DataFrame(),
        100,
    )
    return over.empty, metadata


@dg.asset_check(
    asset=finance_assets.finance_reconciliation,
    description="Every reconciled day of the look-back window has zero variance per currency and "
    "metric (or at most the tolerance); names the orders behind any variance.",
)
def finance_zero_variance(
    config: VarianceCheckConfig, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    integration_store = store.get_store()
    days = closed_days(config.lookback_days)
    passed, metadata = variance_verdict(
        _frames(integration_store, finance_assets.RECONCILIATION, days),
        _frames(integration_store, finance_assets.VARIANCES, days),
        config.tolerance_minor,
    )
    return dg.AssetCheckResult(
        passed=passed, severity=dg.AssetCheckSeverity.ERROR, metadata=metadata
    )


def posting_gaps(store: Any, port: Any, days: list[date]) -> pd.DataFrame:
    """Days whose journals are not all in the ERP: never built, not posted, or gone."""
    rows = []
    for day in days:
        frame = finance_assets.read_frame(store, finance_assets.JOURNALS, day.isoformat())
        if frame is None:
            rows.append({"day": day.isoformat(), "batch_id": None, "problem": "never built"})
            continue
        posted = {b.batch_id for b in port.iter_journal_batches(day)}
        for row in frame.itertuples(index=False):
            if row.status not in finance_assets.POSTED_STATUSES and row.status != "posted_differs":
                rows.append({"day": row.day, "batch_id": row.batch_id, "problem": row.status})
            elif row.batch_id not in posted:
                rows.append({"day": row.day, "batch_id": row.batch_id, "problem": "not in the ERP"})
    return pd.DataFrame(rows, columns=["day", "batch_id", "problem"])


@dg.asset_check(
    asset=finance_assets.finance_journal_batches,
    description="Every completed shop day of the look-back window was built and its journals "
    "are in the ERP.",
)
def finance_days_posted(
    config: PostingCheckConfig, erp: ErpResource, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    days = closed_days(config.lookback_days)
    with erp.open_port() as port:
        gaps = posting_gaps(store.get_store(), port, days)
    return dg.AssetCheckResult(
        passed=gaps.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "days_checked": len(days),
            "days_not_posted": int(gaps["day"].nunique()),
            "batches_not_posted": int(gaps["batch_id"].notna().sum()),
            "gaps": _md(gaps, 100),
        },
    )


@dg.asset_check(
    asset=finance_assets.finance_reconciliation,
    description="Orders whose tax portions differ from their line taxes, by day and rate: a "
    "pattern means commercetools and the ERP round tax differently.",
)
def finance_tax_rounding_patterns(
    config: RoundingCheckConfig, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    integration_store = store.get_store()
    days = closed_days(config.lookback_days)
    orders = _frames(integration_store, finance_assets.ORDER_TOTALS, days)
    pattern = tax_rounding_pattern(orders_from_frame(orders) if len(orders) else [])
    count = int(pattern["orders"].sum()) if len(pattern) else 0
    metadata: dict[str, Any] = {
        "orders_with_rounding_difference": count,
        "days_affected": int(pattern["day"].nunique()) if len(pattern) else 0,
        "rates_affected": int(pattern["rate"].nunique()) if len(pattern) else 0,
        "by_day_and_rate": _md(pattern, 100),
    }
    for currency, group in pattern.groupby("currency"):
        metadata[f"rounding_difference_minor_{currency}"] = int(group["difference_minor"].sum())
    severity = (
        dg.AssetCheckSeverity.ERROR
        if count >= config.error_at_orders
        else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(passed=count == 0, severity=severity, metadata=metadata)
