"""Patterns of failure: which SKU, channel, hour or day the failures have in common.

A list of a hundred exceptions hides that ninety of them are one SKU missing in the ERP, or one
store's channel, or the 02:00 batch. Here every failure (an exception on the queue, or a failed
asset check) becomes a row with its flow, category, SKU, channel and time; then, for each of
those dimensions, the values that hold more failures than an even spread would are ranked by
how much more (``strength`` = failures x (share - 1/distinct values)). A dimension with one value
(every failure in one flow) tells nothing and scores zero. Trends compare the last 7 days with
the 7 before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ct_pipelines.defs.operations.logic.exceptions import channel_of
from ct_pipelines.store import ExceptionRecord

DIMENSIONS = ("flow", "category", "sku", "channel", "hour_of_day", "day")
FAILURE_COLUMNS = ["source", "flow", "category", "skus", "channels", "at", "open", "reason"]
PATTERN_COLUMNS = [
    "dimension",
    "value",
    "failures",
    "share",
    "strength",
    "last_7_days",
    "previous_7_days",
    "trend",
    "open_exceptions",
    "flows",
    "first_seen",
    "last_seen",
    "example",
]


@dataclass(frozen=True)
class CheckFailure:
    """A failed asset check evaluation, as the patterns need it."""

    at: datetime
    flow: str
    asset: str
    check: str
    severity: str
    skus: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


def check_subjects(metadata: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """SKUs and channels a check's metadata names: a ``skus`` JSON map, ``drifted:<channel>``."""
    skus: list[str] = []
    channels: list[str] = []
    for name, raw in metadata.items():
        value = getattr(raw, "value", raw)
        if name == "skus" and isinstance(value, Mapping):
            skus.extend(str(sku) for sku, count in value.items() if count)
        elif name == "skus" and isinstance(value, list):
            skus.extend(str(sku) for sku in value)
        elif name.startswith("drifted:") and isinstance(value, int | float) and value > 0:
            channels.append(name.split(":", 1)[1])
    return tuple(skus[:50]), tuple(channels)


def failures_frame(
    exceptions: Iterable[ExceptionRecord], checks: Iterable[CheckFailure]
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for record in exceptions:
        channel = channel_of(record)
        rows.append(
            {
                "source": "exception",
                "flow": record.flow,
                "category": record.category,
                "skus": [record.sku] if record.sku else [],
                "channels": [channel] if channel else [],
                "at": record.created_at,
                "open": record.status != "resolved",
                "reason": record.reason,
            }
        )
    for check in checks:
        rows.append(
            {
                "source": "check",
                "flow": check.flow,
                "category": f"check {check.check}",
                "skus": list(check.skus),
                "channels": list(check.channels),
                "at": check.at,
                "open": False,
                "reason": f"{check.severity} check {check.check} failed on {check.asset}",
            }
        )
    frame = pd.DataFrame(rows, columns=FAILURE_COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def _long_form(frame: pd.DataFrame, tz: ZoneInfo) -> pd.DataFrame:
    """One row per (failure, dimension, value); SKUs and channels exploded."""
    local = frame["at"].dt.tz_convert(tz)
    base = frame.assign(
        failure_id=range(len(frame)),
        hour_of_day=local.dt.strftime("%H:00"),
        day=local.dt.strftime("%Y-%m-%d"),
    )
    parts = []
    for dimension in ("flow", "category", "hour_of_day", "day"):
        parts.append(base.assign(dimension=dimension, value=base[dimension]))
    for dimension, column in (("sku", "skus"), ("channel", "channels")):
        exploded = base.explode(column).dropna(subset=[column])
        parts.append(exploded.assign(dimension=dimension, value=exploded[column]))
    return pd.concat(parts, ignore_index=True)[
        ["failure_id", "dimension", "value", "flow", "at", "open", "source", "reason"]
    ]


def _trend(recent: int, previous: int) -> str:
    if previous == 0:
        return "new" if recent else "quiet"
    if recent >= previous * 1.5:
        return "rising"
    if recent <= previous * 0.5:
        return "falling"
    return "steady"


@dataclass
class PatternReport:
    patterns: pd.DataFrame
    daily: pd.DataFrame
    failures: int
    window_days: int
    generated_at: datetime
    headline: list[str] = field(default_factory=list)

    def top(self, dimension: str) -> str | None:
        rows = self.patterns[self.patterns["dimension"] == dimension]
        return None if rows.empty else str(rows.iloc[0]["value"])

    def markdown(self, limit: int = 15) -> str:
        lines = [
            f"**Failure patterns** over the last {self.window_days} days "
            f"({self.failures} failures: exceptions and failed checks), "
            f"as of {self.generated_at.isoformat(timespec='minutes')}",
            "",
        ]
        if not self.headline:
            lines.append("No pattern: failures (if any) are spread evenly.")
        else:
            lines.append("What the failures have in common, strongest first:")
            lines += [f"{n}. {line}" for n, line in enumerate(self.headline, start=1)]
        if not self.patterns.empty:
            lines += [
                "",
                self.patterns.head(limit)
                .drop(columns=["example"])
                .to_markdown(index=False, floatfmt=".2f"),
            ]
        if not self.daily.empty:
            lines += ["", "**Failures per day and flow**", "", self.daily.to_markdown()]
        return "\n".join(lines)


def _describe(row: Mapping[str, Any]) -> str:
    labels = {
        "flow": "flow",
        "category": "category",
        "sku": "SKU",
        "channel": "channel",
        "hour_of_day": "hour of the day",
        "day": "day",
    }
    return (
        f"{labels[row['dimension']]} **{row['value']}**: {row['failures']} failures "
        f"({row['share']:.0%}), {row['trend']} ({row['last_7_days']} in the last 7 days vs "
        f"{row['previous_7_days']} before), flows {row['flows']}"
    )


def failure_patterns(
    exceptions: Sequence[ExceptionRecord],
    checks: Sequence[CheckFailure],
    *,
    now: datetime,
    tz: ZoneInfo,
    window_days: int = 14,
    min_failures: int = 3,
    headline_size: int = 5,
) -> PatternReport:
    """Rank what failures share over the last ``window_days``; see the module docstring."""
    start = now - timedelta(days=window_days)
    frame = failures_frame(exceptions, checks)
    frame = frame[frame["at"] >= start].reset_index(drop=True)
    empty = PatternReport(
        pd.DataFrame(columns=PATTERN_COLUMNS), pd.DataFrame(), 0, window_days, now
    )
    if frame.empty:
        return empty
    long = _long_form(frame, tz)
    week_ago = now - timedelta(days=7)
    fortnight_ago = now - timedelta(days=14)
    rows = []
    for dimension, group in long.groupby("dimension", sort=False):
        known = group["failure_id"].nunique()
        distinct = group["value"].nunique()
        expected = 1 / distinct
        for value, items in group.groupby("value", sort=False):
            count = items["failure_id"].nunique()
            share = count / known
            recent = int((items["at"] >= week_ago).sum())
            previous = int(((items["at"] < week_ago) & (items["at"] >= fortnight_ago)).sum())
            rows.append(
                {
                    "dimension": dimension,
                    "value": str(value),
                    "failures": count,
                    "share": round(share, 4),
                    "strength": round(count * (share - expected), 3),
                    "last_7_days": recent,
                    "previous_7_days": previous,
                    "trend": _trend(recent, previous),
                    "open_exceptions": int(
                        (items["open"] & (items["source"] == "exception")).sum()
                    ),
                    "flows": ", ".join(sorted(set(items["flow"]))),
                    "first_seen": items["at"].min().isoformat(),
                    "last_seen": items["at"].max().isoformat(),
                    "example": str(items["reason"].iloc[-1])[:200],
                }
            )
    patterns = pd.DataFrame(rows, columns=PATTERN_COLUMNS)
    patterns = patterns.sort_values(
        ["strength", "failures", "dimension", "value"], ascending=[False, False, True, True]
    ).reset_index(drop=True)
    notable = patterns[(patterns["strength"] > 0) & (patterns["failures"] >= min_failures)]
    local_day = frame["at"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d")
    daily = (
        frame.assign(day=local_day)
        .pivot_table(index="day", columns="flow", values="source", aggfunc="count", fill_value=0)
        .sort_index()
    )
    daily.columns.name = None
    return PatternReport(
        patterns=notable.reset_index(drop=True),
        daily=daily,
        failures=len(frame),
        window_days=window_days,
        generated_at=now,
        headline=[_describe(row) for row in notable.head(headline_size).to_dict("records")],
    )
