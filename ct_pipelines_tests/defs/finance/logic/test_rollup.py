from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from ct_pipelines.defs.finance.logic.facts import order_fact
from ct_pipelines.defs.finance.logic.reconcile import MetricTotal, totals_frame
from ct_pipelines.defs.finance.logic.rollup import period_close, tax_rounding_pattern
from ct_pipelines_tests.defs.finance.logic.builders import order

LONDON = ZoneInfo("Europe/London")


def _day(day: date, currency: str, gross: tuple[int, int], docs: tuple[str, ...] = ()):
    ct, erp = gross
    digits = {"JPY": 0, "GBP": 2, "KWD": 3}[currency]
    return totals_frame(
        [
            MetricTotal(day, currency, digits, "orders", 1, 1, 0, ()),
            MetricTotal(day, currency, digits, "gross", ct, erp, erp - ct, docs),
        ]
    )


def test_month_to_date_sums_per_currency_and_names_the_open_days() -> None:
    daily = {
        date(2026, 11, 2): _day(date(2026, 11, 2), "GBP", (1000, 1000)),
        date(2026, 11, 3): _day(date(2026, 11, 3), "GBP", (500, 499), ("UK-7",)),
        date(2026, 11, 4): _day(date(2026, 11, 4), "KWD", (12345, 12345)),
    }
    month = period_close("month", date(2026, 11, 4), daily, unposted=[date(2026, 11, 4)])
    assert month.first_day == date(2026, 11, 1)
    assert month.missing_days == (date(2026, 11, 1),)
    assert month.unposted_days == (date(2026, 11, 4),)
    assert month.variance_days == (date(2026, 11, 3),)
    assert not month.ready_to_close
    gross = month.totals[month.totals["metric"] == "gross"].set_index("currency")
    assert int(gross.loc["GBP", "commercetools_minor"]) == 1500
    assert int(gross.loc["GBP", "variance_minor"]) == -1
    assert gross.loc["GBP", "orders"] == "UK-7"
    assert int(gross.loc["KWD", "fraction_digits"]) == 3
    assert month.variance_abs_minor == {"GBP": 1, "KWD": 0}


def test_week_to_date_starts_on_monday_and_a_clean_week_is_ready() -> None:
    days = [date(2026, 11, 23), date(2026, 11, 24)]
    week = period_close("week", days[-1], {d: _day(d, "JPY", (1100, 1100)) for d in days})
    assert (week.first_day, week.ready_to_close) == (date(2026, 11, 23), True)
    assert int(week.totals.loc[week.totals["metric"] == "gross", "erp_minor"].iloc[0]) == 2200


def test_periods_start_no_earlier_than_the_first_shop_day() -> None:
    close = period_close("month", date(2026, 1, 3), {}, not_before=date(2026, 1, 2))
    assert close.missing_days == (date(2026, 1, 2), date(2026, 1, 3))
    with pytest.raises(ValueError):
        period_close("quarter", date(2026, 1, 3), {})


def test_tax_rounding_pattern_groups_by_day_and_rate() -> None:
    facts = [
        order_fact(order(f"UK-{i}", "GBP", [(1234, "0.2")], portion_off_by=1), LONDON)
        for i in range(3)
    ] + [order_fact(order("UK-9", "GBP", [(1234, "0.2")]), LONDON)]
    pattern = tax_rounding_pattern(facts)
    assert pattern.to_dict("records") == [
        {
            "day": "2026-11-26",
            "currency": "GBP",
            "rate": "0.2",
            "orders": 3,
            "difference_minor": 3,
            "documents": "UK-0, UK-1, UK-2",
        }
    ]
