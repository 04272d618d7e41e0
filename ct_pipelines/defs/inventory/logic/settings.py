"""Settings of the inventory flow, read from the environment when the code location loads.

None is a secret. The cadences shape the sensor and the schedule, so they must be known before
any run starts; the rules file is validated at load too, so a broken file stops the code
location with a message naming the problem instead of failing a run at 3 a.m.

    CT_PIPELINES_INVENTORY_RULES              rules file (.json/.toml); default: packaged rules
    CT_PIPELINES_INVENTORY_RECONCILE_MINUTES  full reconciliation every N minutes (default 30)
    CT_PIPELINES_INVENTORY_SENSOR_SECONDS     stock-movement sensor interval (default 60)
    CT_PIPELINES_INVENTORY_WORKERS            concurrent commercetools writes per run (default 8)
    CT_PIPELINES_INVENTORY_SNAPSHOT_HISTORY   snapshots kept in the store (default 96: two days)
    CT_PIPELINES_INVENTORY_MAX_REMOVAL_PERCENT  refuse a full run zeroing or removing more of a
                                              channel's stock than this (default 20)
    CT_PIPELINES_INVENTORY_MIN_FEED_MATCH_PERCENT  refuse a full run whose ERP feed holds fewer
                                              of the shop's SKUs than this (default 50)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from ct_pipelines.defs.inventory.logic.guard import GuardLimits
from ct_pipelines.defs.inventory.logic.rules import InventoryRules, load_rules

_PREFIX = "CT_PIPELINES_INVENTORY_"


def _int(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(_PREFIX + name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{_PREFIX}{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{_PREFIX}{name}={value} must be between {low} and {high}")
    return value


def reconcile_cron(minutes: int) -> str:
    """A cron expression firing every ``minutes``: a divisor of 60, or whole hours dividing 24."""
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *" if minutes > 1 else "* * * * *"
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return f"0 */{hours} * * *" if hours > 1 else "0 * * * *"
    raise ValueError(
        f"{_PREFIX}RECONCILE_MINUTES={minutes} cannot be a regular schedule: use a divisor of 60 "
        "(5, 10, 15, 20, 30) or whole hours dividing 24 (60, 120, 180, 240, 360, 480, 720, 1440)"
    )


@dataclass(frozen=True)
class InventorySettings:
    rules_path: str | None = None
    reconcile_minutes: int = 30
    sensor_interval_seconds: int = 60
    max_workers: int = 8
    snapshot_history: int = 96
    max_removal_percent: int = 20
    min_feed_match_percent: int = 50
    #: time a reconciliation run may take before its snapshot counts as stale
    staleness_grace: timedelta = timedelta(minutes=5)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> InventorySettings:
        settings = cls(
            rules_path=environ.get(_PREFIX + "RULES") or None,
            reconcile_minutes=_int(environ, "RECONCILE_MINUTES", 30, 1, 1440),
            sensor_interval_seconds=_int(environ, "SENSOR_SECONDS", 60, 5, 3600),
            max_workers=_int(environ, "WORKERS", 8, 1, 64),
            snapshot_history=_int(environ, "SNAPSHOT_HISTORY", 96, 1, 10_000),
            max_removal_percent=_int(environ, "MAX_REMOVAL_PERCENT", 20, 0, 100),
            min_feed_match_percent=_int(environ, "MIN_FEED_MATCH_PERCENT", 50, 0, 100),
        )
        reconcile_cron(settings.reconcile_minutes)  # refuses an irregular cadence early
        return settings

    @property
    def reconcile_cron(self) -> str:
        return reconcile_cron(self.reconcile_minutes)

    @property
    def cadence(self) -> timedelta:
        return timedelta(minutes=self.reconcile_minutes)

    @property
    def stale_after(self) -> timedelta:
        return self.cadence + self.staleness_grace

    @property
    def limits(self) -> GuardLimits:
        return GuardLimits(
            max_removal=self.max_removal_percent / 100,
            min_feed_match=self.min_feed_match_percent / 100,
        )

    def load_rules(self) -> InventoryRules:
        return load_rules(self.rules_path)


__all__ = ["InventorySettings", "reconcile_cron"]
