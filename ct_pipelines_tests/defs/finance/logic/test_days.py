from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ct_pipelines.defs.finance.logic.days import (
    batch_belongs_to,
    batch_id,
    day_window,
    days_between,
    erp_order_dates,
    month_start,
    shop_day,
    week_start,
)

LONDON = ZoneInfo("Europe/London")


def test_summer_day_starts_the_previous_utc_evening_and_spans_two_erp_dates() -> None:
    start, end = day_window(date(2026, 7, 15), LONDON)
    assert start.astimezone(UTC) == datetime(2026, 7, 14, 23, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 7, 15, 23, tzinfo=UTC)
    assert erp_order_dates(date(2026, 7, 15), LONDON) == [date(2026, 7, 14), date(2026, 7, 15)]


def test_winter_day_is_one_utc_date() -> None:
    assert erp_order_dates(date(2026, 11, 26), LONDON) == [date(2026, 11, 26)]


def test_clock_change_days_are_23_and_25_hours() -> None:
    spring = day_window(date(2026, 3, 29), LONDON)
    autumn = day_window(date(2026, 10, 25), LONDON)
    assert (spring[1] - spring[0]).total_seconds() == 23 * 3600
    assert (autumn[1] - autumn[0]).total_seconds() == 25 * 3600


def test_a_zone_behind_utc_reaches_into_the_next_utc_date() -> None:
    assert erp_order_dates(date(2026, 11, 26), ZoneInfo("America/New_York")) == [
        date(2026, 11, 26),
        date(2026, 11, 27),
    ]


def test_shop_day_of_an_instant_after_local_midnight() -> None:
    assert shop_day(datetime(2026, 7, 14, 23, 30, tzinfo=UTC), LONDON) == date(2026, 7, 15)


def test_batch_ids_and_adjustments() -> None:
    day = date(2026, 11, 26)
    assert batch_id(day, "gbp") == "fin-2026-11-26-GBP"
    assert batch_belongs_to("fin-2026-11-26-GBP", day, "GBP")
    assert batch_belongs_to("fin-2026-11-26-GBP-2", day, "GBP")
    assert not batch_belongs_to("fin-2026-11-26-GBPX", day, "GBP")
    assert not batch_belongs_to("fin-2026-11-26-EUR", day, "GBP")


def test_periods() -> None:
    assert week_start(date(2026, 11, 26)) == date(2026, 11, 23)  # a Thursday -> Monday
    assert month_start(date(2026, 11, 26)) == date(2026, 11, 1)
    assert days_between(date(2026, 2, 27), date(2026, 3, 1)) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 1),
    ]
