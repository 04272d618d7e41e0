"""Shop days, the ERP dates that overlap them, journal batch ids and closing periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ct_pipelines.kernel.shop import SHOP

BATCH_PREFIX = "fin"


def day_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a shop day in UTC (23 or 25 hours long on clock-change days).

    UTC, because Python subtracts two datetimes of one zone by wall clock, not elapsed time.
    """
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def shop_day(moment: datetime, tz: ZoneInfo) -> date:
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no shop day; give it a time zone")
    return moment.astimezone(tz).date()


def erp_order_dates(day: date, tz: ZoneInfo) -> list[date]:
    """ERP order dates that may hold a shop day's orders.

    The ERP dates a sales order by the UTC date of its creation while the shop day is local: in
    summer the first hour of a London day is the previous UTC date. The shop day itself is
    included as well, so a mapping that switches to local dates stays covered.
    """
    start, end = day_window(day, tz)
    first = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    dates = {day}
    current = first
    while current <= last:
        dates.add(current)
        current += timedelta(days=1)
    return sorted(dates)


def batch_id(day: date, currency: str) -> str:
    """The journal batch of one shop day and currency, e.g. ``fin-2026-11-26-GBP``."""
    return f"{BATCH_PREFIX}-{day.isoformat()}-{currency.upper()}"


def batch_belongs_to(candidate: str, day: date, currency: str) -> bool:
    """The day's batch or an adjustment posted for it later (``fin-2026-11-26-GBP-2``)."""
    base = batch_id(day, currency)
    return candidate == base or candidate.startswith(base + "-")


def week_start(day: date) -> date:
    """Monday of the ISO week holding ``day``."""
    return day - timedelta(days=day.weekday())


def month_start(day: date) -> date:
    return day.replace(day=1)


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def previous_shop_day(moment: datetime) -> date:
    """The shop day before the one ``moment`` falls on (in the shop's time zone)."""
    return moment.astimezone(SHOP.tz).date() - timedelta(days=1)
