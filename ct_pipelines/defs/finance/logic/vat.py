"""The VAT a controller files from: per shop day and month to date, per currency and rate.

- Output VAT: the tax portions of the day's orders that belong in the ERP (what the day's
  journal credits to output VAT).
- Refunds' VAT: the output VAT the day's successful refunds give back (their ``tax_by_rate``,
  what the journal debits to output VAT).
- Net VAT: output VAT minus refunds' VAT.

Money is summed per currency only, never across currencies; all amounts in minor units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import pandas as pd

from ct_pipelines.defs.finance.logic.days import month_start
from ct_pipelines.defs.finance.logic.facts import OrderFact, TransactionFact

VAT_COLUMNS = [
    "period",
    "first_day",
    "last_day",
    "currency",
    "fraction_digits",
    "rate",
    "output_vat_minor",
    "refunds_vat_minor",
    "net_vat_minor",
    "orders",
    "refunds",
]


def day_vat(
    day: date, orders: Iterable[OrderFact], transactions: Iterable[TransactionFact]
) -> pd.DataFrame:
    """One row per currency and rate of the shop day ``day`` (``VAT_COLUMNS``)."""
    sums: dict[tuple[str, int, str], dict[str, int]] = {}

    def add(currency: str, digits: int, rate: str, column: str, count: str, tax: int) -> None:
        found = sums.setdefault(
            (currency, digits, rate),
            {"output_vat_minor": 0, "refunds_vat_minor": 0, "orders": 0, "refunds": 0},
        )
        found[column] += tax
        found[count] += 1

    for order in orders:
        if order.day == day and order.eligible:
            for rate, tax in order.tax_by_rate.items():
                add(order.currency, order.fraction_digits, rate, "output_vat_minor", "orders", tax)
    for tx in transactions:
        if tx.day == day and tx.succeeded and tx.type == "Refund":
            for rate, tax in tx.tax_by_rate.items():
                add(tx.currency, tx.fraction_digits, rate, "refunds_vat_minor", "refunds", tax)
    rows = [
        {
            "period": "day",
            "first_day": day.isoformat(),
            "last_day": day.isoformat(),
            "currency": currency,
            "fraction_digits": digits,
            "rate": rate,
            **found,
            "net_vat_minor": found["output_vat_minor"] - found["refunds_vat_minor"],
        }
        for (currency, digits, rate), found in sorted(sums.items())
    ]
    return pd.DataFrame(rows, columns=VAT_COLUMNS)


def month_to_date_vat(day: date, daily: Mapping[date, pd.DataFrame]) -> pd.DataFrame:
    """The month of ``day`` up to ``day``, summed per currency and rate from the daily frames."""
    first = month_start(day)
    frames = [f for d, f in sorted(daily.items()) if first <= d <= day and len(f)]
    if not frames:
        return pd.DataFrame(columns=VAT_COLUMNS)
    days = pd.concat(frames, ignore_index=True)
    days = days[days["period"] == "day"]
    sums = ["output_vat_minor", "refunds_vat_minor", "net_vat_minor", "orders", "refunds"]
    for column in [*sums, "fraction_digits"]:
        days[column] = days[column].astype("int64")
    grouped = days.groupby(["currency", "rate"], sort=True)
    month = grouped[sums].sum().reset_index()
    month["fraction_digits"] = grouped["fraction_digits"].first().to_numpy()
    month["period"] = "month"
    month["first_day"] = first.isoformat()
    month["last_day"] = day.isoformat()
    return month[VAT_COLUMNS]
