"""Shop-wide settings that shape the asset graph, read when the code location loads.

They are not secrets: a time zone and a start date decide the daily partitions, so they must be
known before any run starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class ShopSettings:
    timezone: str = "Europe/London"
    orders_start_date: str = "2026-01-01"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ShopSettings:
        settings = cls(
            timezone=environ.get("CT_PIPELINES_SHOP_TIMEZONE", cls.timezone),
            orders_start_date=environ.get("CT_PIPELINES_ORDERS_START_DATE", cls.orders_start_date),
        )
        try:
            settings.tz  # noqa: B018 - validates the zone name early, with a clear message
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"CT_PIPELINES_SHOP_TIMEZONE={settings.timezone!r} is not an IANA time zone "
                "(for example Europe/London)"
            ) from None
        return settings


SHOP = ShopSettings.from_env()
