"""Week-to-date and month-to-date roll-ups of the daily reconciliation, and tax-rounding patterns.

A period is ready to close when every day in it was reconciled and posted and no metric
carries a variance. Money is summed per currency only, never across currencies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import pandas as pd

from ct_pipelines.defs.finance.logic.days import days_between, month_start, week_start
from ct_pipelines.defs.finance.logic.facts import OrderFact
from ct_pipelines.defs.finance.logic.reconcile import (
    TAX_RATE_PREFIX,
    TOTAL_COLUMNS,
    absolute_variances,
)

PERIOD_COLUMNS = [
    "period",
    "first_day",
    "last_day",
    "currency",
    "fraction_digits",
    "metric",
    "commercetools_minor",
    "erp_minor",
    "variance_minor",
    "variance_abs_minor",
    "days_with_variance",
    "orders",
]


@dataclass(frozen=True)
class PeriodClose:
    period: str  # "week" or "month"
    first_day: date
    last_day: date
    reconciled_days: tuple[date, ...]
    missing_days: tuple[date, ...]  # not reconciled yet
    unposted_days: tuple[date, ...]  # reconciled, but a journal batch is not in the ERP
    variance_days: tuple[date, ...]
    totals: pd.DataFrame  # PERIOD_COLUMNS

    @property
    def ready_to_close(self) -> bool:
        return not (self.missing_days or self.unposted_days or self.variance_days)

    @property
    def variance_abs_minor(self) -> dict[str, int]:
        """Sum of absolute daily variances per currency (the order count excluded)."""
        money = self.totals[self.totals["metric"] != "orders"]
        return {
            str(currency): int(group["variance_abs_minor"].sum())
            for currency, group in money.groupby("currency")
        }


def _empty_totals() -> pd.DataFrame:
    return pd.DataFrame(columns=PERIOD_COLUMNS)


def period_close(
    period: str,
    last_day: date,
    daily_totals: Mapping[date, pd.DataFrame],
    unposted: Iterable[date] = (),
    not_before: date | None = None,
) -> PeriodClose:
    """Roll up the days of the week or month that ends (so far) on ``last_day``.

    ``daily_totals`` maps each reconciled day to its totals frame (``TOTAL_COLUMNS``); days
    absent from it count as not reconciled. ``not_before`` clips the period at the first day
    the shop traded (the partitions' start).
    """
    if period not in ("week", "month"):
        raise ValueError(f"period is week or month, not {period!r}")
    first = week_start(last_day) if period == "week" else month_start(last_day)
    if not_before is not None and first < not_before:
        first = not_before
    days = days_between(first, last_day) if first <= last_day else []
    reconciled = tuple(d for d in days if d in daily_totals)
    missing = tuple(d for d in days if d not in daily_totals)
    unposted_days = tuple(sorted(set(unposted) & set(reconciled)))
    frames = [daily_totals[d] for d in reconciled if len(daily_totals[d])]
    if not frames:
        return PeriodClose(
            period, first, last_day, reconciled, missing, unposted_days, (), _empty_totals()
        )
    daily = pd.concat(frames, ignore_index=True)
    if "variance_abs_minor" not in daily.columns:
        daily["variance_abs_minor"] = None
    daily = daily[TOTAL_COLUMNS]
    for column in ("commercetools_minor", "erp_minor", "variance_minor", "fraction_digits"):
        daily[column] = daily[column].astype("int64")
    # Offsetting per-order variances net to 0 but keep the day (and the period) open.
    daily["variance_abs_minor"] = absolute_variances(daily)
    off = daily[daily["variance_abs_minor"] != 0]
    variance_days = tuple(sorted({date.fromisoformat(str(d)) for d in off["day"]}))
    rows = []
    for (currency, metric), group in daily.groupby(["currency", "metric"], sort=True):
        behind = sorted(
            {
                doc.strip()
                for docs in group["orders"]
                for doc in str(docs or "").split(",")
                if doc.strip()
            }
        )
        rows.append(
            {
                "period": period,
                "first_day": first.isoformat(),
                "last_day": last_day.isoformat(),
                "currency": currency,
                "fraction_digits": int(group["fraction_digits"].iloc[0]),
                "metric": metric,
                "commercetools_minor": int(group["commercetools_minor"].sum()),
                "erp_minor": int(group["erp_minor"].sum()),
                "variance_minor": int(group["variance_minor"].sum()),
                "variance_abs_minor": int(group["variance_abs_minor"].sum()),
                "days_with_variance": int((group["variance_abs_minor"] != 0).sum()),
                "orders": ", ".join(behind),
            }
        )
    totals = pd.DataFrame(rows, columns=PERIOD_COLUMNS)
    order = {m: i for i, m in enumerate(("orders", "net", "tax", "gross", "shipping"))}
    totals["_rank"] = [
        order.get(m, 5 if str(m).startswith(TAX_RATE_PREFIX) else 6) for m in totals["metric"]
    ]
    totals = (
        totals.sort_values(["currency", "_rank", "metric"])
        .drop(columns="_rank")
        .reset_index(drop=True)
    )
    return PeriodClose(
        period, first, last_day, reconciled, missing, unposted_days, variance_days, totals
    )


ROUNDING_COLUMNS = ["day", "currency", "rate", "orders", "difference_minor", "documents"]


def tax_rounding_pattern(orders: Iterable[OrderFact]) -> pd.DataFrame:
    """Orders whose tax portions differ from their line taxes, per day, currency and rate.

    One order a penny off is noise; the same rate off in the same direction day after day is a
    tax setting (rounding mode, unit-price taxation) that finance must agree with the ERP.
    """
    groups: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
    for fact in orders:
        for rate, difference in fact.tax_rounding.items():
            if difference:
                key = (fact.day.isoformat(), fact.currency, rate)
                groups.setdefault(key, []).append((fact.document, difference))
    rows = [
        {
            "day": day,
            "currency": currency,
            "rate": rate,
            "orders": len(found),
            "difference_minor": sum(d for _, d in found),
            "documents": ", ".join(sorted(doc for doc, _ in found)),
        }
        for (day, currency, rate), found in sorted(groups.items())
    ]
    return pd.DataFrame(rows, columns=ROUNDING_COLUMNS)
