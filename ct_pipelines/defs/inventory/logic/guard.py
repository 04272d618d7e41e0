"""Refuse destructive inventory plans before any write (pure; no I/O, no Dagster).

Three rules, judged on the plan the diff produced and the set of SKUs the shop sells:

- An entry for a SKU that is not a variant of any product is never created: such creates are
  taken out of the plan and reported (first N SKUs), whatever else happens.
- A full reconciliation whose ERP feed matches under ``min_feed_match`` of the shop's SKUs is
  refused: the feed is for another shop, or the SKUs are keyed differently.
- A full reconciliation that would zero or remove more than ``max_removal`` of a channel's stock
  (entries with stock set to 0, or units taken off) is refused.

A refused plan can be overridden by an operator (``force``); the caller records who did.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ct_pipelines.defs.inventory.logic.diff import Change, CtInventory, InventoryPlan
from ct_pipelines.defs.inventory.logic.targets import TargetSet

DEFAULT_MAX_REMOVAL = 0.20
DEFAULT_MIN_FEED_MATCH = 0.50
DEFAULT_SAMPLE = 20


@dataclass(frozen=True)
class GuardLimits:
    """Shares are fractions (0.2 = 20 %)."""

    #: the most of a channel's stock (entries zeroed, or units removed) one run may take off
    max_removal: float = DEFAULT_MAX_REMOVAL
    #: the least share of the shop's SKUs the ERP feed must contain
    min_feed_match: float = DEFAULT_MIN_FEED_MATCH
    #: SKUs named in a refusal or report
    sample: int = DEFAULT_SAMPLE

    def __post_init__(self) -> None:
        for name in ("max_removal", "min_feed_match"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {value}")
        if self.sample < 1:
            raise ValueError(f"sample must be at least 1, got {self.sample}")


@dataclass(frozen=True)
class ChannelRemoval:
    channel: str
    entries_with_stock: int
    entries_zeroed: int
    units_on_stock: int
    units_removed: int
    zeroed_skus: tuple[str, ...]  # the first N

    @property
    def zeroed_share(self) -> float:
        return self.entries_zeroed / self.entries_with_stock if self.entries_with_stock else 0.0

    @property
    def removed_share(self) -> float:
        return self.units_removed / self.units_on_stock if self.units_on_stock else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "entries_with_stock": self.entries_with_stock,
            "entries_zeroed": self.entries_zeroed,
            "zeroed_share": round(self.zeroed_share, 4),
            "units_on_stock": self.units_on_stock,
            "units_removed": self.units_removed,
            "removed_share": round(self.removed_share, 4),
            "zeroed_skus": list(self.zeroed_skus),
        }


@dataclass(frozen=True)
class FeedMatch:
    shop_skus: int
    matched: int
    unmatched_skus: tuple[str, ...]  # shop SKUs missing from the feed, the first N
    feed_only_skus: int  # feed SKUs the shop does not sell

    @property
    def share(self) -> float:
        return self.matched / self.shop_skus if self.shop_skus else 1.0


@dataclass(frozen=True)
class GuardVerdict:
    """What the guard found; ``plan`` is the plan to apply (unknown-SKU creates taken out)."""

    plan: InventoryPlan
    limits: GuardLimits
    unknown_sku_creates: int
    unknown_skus: tuple[str, ...]  # the first N
    feed: FeedMatch | None  # None for a delta
    channels: tuple[ChannelRemoval, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    def message(self) -> str:
        if not self.problems:
            return "inventory plan within limits"
        return "inventory sync refused before any write: " + "; ".join(self.problems)

    def as_metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "refused": self.refused,
            "problems": list(self.problems),
            "max_removal_share": self.limits.max_removal,
            "min_feed_match_share": self.limits.min_feed_match,
            "unknown_sku_creates_dropped": self.unknown_sku_creates,
            "unknown_skus": list(self.unknown_skus),
            "channels": [c.as_dict() for c in self.channels],
        }
        if self.feed is not None:
            data.update(
                {
                    "shop_skus": self.feed.shop_skus,
                    "feed_matched_skus": self.feed.matched,
                    "feed_match_share": round(self.feed.share, 4),
                    "feed_only_skus": self.feed.feed_only_skus,
                    "shop_skus_missing_from_feed": list(self.feed.unmatched_skus),
                }
            )
        return data


def product_skus(products: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every variant SKU of ``GET /products`` documents, current and staged."""
    skus: set[str] = set()
    for product in products:
        data = product.get("masterData") or {}
        for side in ("current", "staged"):
            projection = data.get(side) or {}
            for variant in [projection.get("masterVariant") or {}, *projection.get("variants", [])]:
                sku = variant.get("sku")
                if sku:
                    skus.add(str(sku))
    return skus


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def judge(
    plan: InventoryPlan,
    current: CtInventory,
    targets: TargetSet,
    shop_skus: Collection[str],
    limits: GuardLimits,
    *,
    full: bool,
) -> GuardVerdict:
    """Judge a plan; ``full`` is a full reconciliation (the share rules apply to it only, as a
    delta reads and writes just the SKUs that moved)."""
    shop = set(shop_skus)
    n = limits.sample
    unknown = [c for c in plan.changes if c.entry_id is None and c.sku not in shop]
    kept: list[Change] = (
        [c for c in plan.changes if c.entry_id is not None or c.sku in shop]
        if unknown
        else plan.changes
    )
    safe_plan = replace(plan, changes=kept) if unknown else plan
    unknown_skus = tuple(sorted({c.sku for c in unknown})[:n])
    problems: list[str] = []

    feed: FeedMatch | None = None
    channels: list[ChannelRemoval] = []
    if full:
        erp = targets.skus
        matched = shop & erp
        feed = FeedMatch(
            shop_skus=len(shop),
            matched=len(matched),
            unmatched_skus=tuple(sorted(shop - erp)[:n]),
            feed_only_skus=len(erp - shop),
        )
        if feed.share < limits.min_feed_match:
            problems.append(
                f"the ERP feed matches {feed.matched} of {feed.shop_skus} shop SKUs "
                f"({_pct(feed.share)}, at least {_pct(limits.min_feed_match)} required); "
                f"{feed.feed_only_skus} feed SKUs are not in the shop; shop SKUs missing from "
                f"the feed, first {len(feed.unmatched_skus)}: {', '.join(feed.unmatched_skus)}"
            )
        changes_by_channel: dict[str, list[Change]] = {}
        for change in kept:
            changes_by_channel.setdefault(change.channel, []).append(change)
        stocked = current.table.stocked_by_channel()
        for channel in sorted(plan.per_channel):
            entries_with_stock, units_on_stock = stocked.get(channel, (0, 0))
            zeroed = [
                c
                for c in changes_by_channel.get(channel, [])
                if c.current is not None and c.current > 0 and c.target == 0
            ]
            removed = sum(
                c.current - c.target
                for c in changes_by_channel.get(channel, [])
                if c.current is not None and c.current > c.target
            )
            report = ChannelRemoval(
                channel=channel,
                entries_with_stock=entries_with_stock,
                entries_zeroed=len(zeroed),
                units_on_stock=units_on_stock,
                units_removed=removed,
                zeroed_skus=tuple(sorted(c.sku for c in zeroed)[:n]),
            )
            channels.append(report)
            over = max(report.zeroed_share, report.removed_share)
            if over > limits.max_removal:
                problems.append(
                    f"channel {channel}: {report.entries_zeroed} of {report.entries_with_stock} "
                    f"stocked entries would be zeroed ({_pct(report.zeroed_share)}) and "
                    f"{report.units_removed} of {report.units_on_stock} units removed "
                    f"({_pct(report.removed_share)}); at most {_pct(limits.max_removal)} allowed; "
                    f"zeroed SKUs, first {len(report.zeroed_skus)}: "
                    f"{', '.join(report.zeroed_skus)}"
                )
    return GuardVerdict(
        plan=safe_plan,
        limits=limits,
        unknown_sku_creates=len(unknown),
        unknown_skus=unknown_skus,
        feed=feed,
        channels=tuple(channels),
        problems=tuple(problems),
    )


__all__ = [
    "DEFAULT_MAX_REMOVAL",
    "DEFAULT_MIN_FEED_MATCH",
    "ChannelRemoval",
    "FeedMatch",
    "GuardLimits",
    "GuardVerdict",
    "judge",
    "product_skus",
]
