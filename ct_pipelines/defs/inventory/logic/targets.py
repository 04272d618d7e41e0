"""Target stock per (SKU, supply channel) from the ERP/WMS stock by location and the rules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from ct_pipelines.defs.inventory.logic.rules import InventoryRules


class ErpStockRow(Protocol):
    """What the computation reads from an ERP stock level (``ct_pipelines.erp.port.StockLevel``)."""

    @property
    def sku(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def on_hand(self) -> int: ...
    @property
    def reserved(self) -> int: ...
    @property
    def available(self) -> int: ...


class Target(NamedTuple):
    """What commercetools should show for one SKU in one channel, and how it was derived."""

    quantity: int  # max(0, erp_available - buffer): the quantityOnStock to set
    erp_available: int  # the channel's share of ERP available stock, summed over its sources
    buffer: int  # units held back


Key = tuple[str, str]  # (sku, channel key)


@dataclass
class TargetSet:
    targets: dict[Key, Target]
    #: ERP locations in the stock feed that no rule maps and none ignores, with their row counts
    unmapped_locations: dict[str, int] = field(default_factory=dict)
    #: SKUs seen in the feed (in scope), including those without any mapped location
    skus: set[str] = field(default_factory=set)
    erp_rows: int = 0
    #: every location in the feed, before the SKU filter (a mapped location absent here is silent)
    locations_seen: set[str] = field(default_factory=set)
    #: ERP rows with negative on hand or available stock, per location
    negative_rows: dict[str, int] = field(default_factory=dict)


def compute_targets(
    rows: Iterable[ErpStockRow],
    rules: InventoryRules,
    *,
    skus: Collection[str] | None = None,
) -> TargetSet:
    """Target per (SKU, channel) for every SKU in ``rows`` (or only those in ``skus``).

    A channel's ERP available is the sum over its sources of each location's ``available``
    (on hand minus reserved/allocated), each scaled by its ``share_percent`` and rounded down.
    Negative availability (over-allocation) counts, so it reduces what the other sources offer.
    The target is that sum minus the buffer, never below zero. A SKU with stock rows in the ERP
    but none at a channel's locations gets no target for it here; the diff treats an existing
    entry in that channel as target 0.
    """
    wanted = set(skus) if skus is not None else None
    sums: dict[Key, int] = defaultdict(int)
    unmapped: dict[str, int] = defaultdict(int)
    negative: dict[str, int] = defaultdict(int)
    seen_skus: set[str] = set()
    locations_seen: set[str] = set()
    count = 0
    # location -> ((channel, source or None for a full share), ...): the loop below runs once
    # per ERP row, 200,000 times for a large catalogue, so the common case stays cheap.
    feeds = {
        location: tuple(
            (cs.channel, None if cs.source.share_percent == 100 else cs.source)
            for cs in channel_sources
        )
        for location, channel_sources in rules.feeds.items()
    }
    ignored = rules.ignored_locations
    for row in rows:
        sku = row.sku
        location = row.location
        locations_seen.add(location)
        if wanted is not None and sku not in wanted:
            continue
        count += 1
        seen_skus.add(sku)
        available = row.available
        if available < 0 or row.on_hand < 0:
            negative[location] += 1
        channel_sources = feeds.get(location)
        if channel_sources is None:
            if location not in ignored:
                unmapped[location] += 1
            continue
        for channel, source in channel_sources:
            sums[(sku, channel)] += available if source is None else source.share_of(available)
    targets: dict[Key, Target] = {}
    if rules.has_buffers:
        for key, available in sums.items():
            buffer = rules.buffer_for(key[0], key[1]).units(available)
            quantity = available - buffer
            targets[key] = Target(quantity if quantity > 0 else 0, available, buffer)
    else:
        for key, available in sums.items():
            targets[key] = Target(available if available > 0 else 0, available, 0)
    return TargetSet(
        targets=targets,
        unmapped_locations=dict(unmapped),
        skus=seen_skus,
        erp_rows=count,
        locations_seen=locations_seen,
        negative_rows=dict(negative),
    )


__all__ = ["ErpStockRow", "Key", "Target", "TargetSet", "compute_targets"]
