"""Target stock per (SKU, supply channel) from the ERP/WMS stock by location and the rules.

Columnar: the ERP rows are read once into arrays, SKUs and locations become int codes, and the
shares, sums and buffers are integer array arithmetic (see :mod:`.columns`). The result is a
:class:`TargetTable`, a read-only mapping ``(SKU, channel) -> Target`` over those arrays.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import pandas as pd

from ct_pipelines.defs.inventory.logic.columns import (
    CHUNK,
    Codebook,
    Codes,
    Ints,
    Objects,
    concat,
    counts_by,
    group_starts,
    ints,
    per_million,
    percent_ceil,
    row_of_pair,
    share_floor,
)
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


class TargetTable(Mapping[Key, Target]):
    """Targets as columns, one row per (SKU, channel) with stock rows at the channel's sources.

    Rows are sorted by ``key = sku * len(channel_names) + channel`` (int codes into
    ``sku_names`` and ``channel_names``); ``first`` ranks each row by where its (SKU, channel)
    first appeared in the feed, the order the mapping iterates in.
    """

    __slots__ = (
        "_index",
        "buffer",
        "channel",
        "channel_names",
        "erp_available",
        "first",
        "key",
        "quantity",
        "sku",
        "sku_names",
    )

    def __init__(
        self,
        sku_names: Objects,
        channel_names: tuple[str, ...],
        key: Ints,
        quantity: Ints,
        erp_available: Ints,
        buffer: Ints,
        first: Ints,
    ) -> None:
        self.sku_names = sku_names
        self.channel_names = channel_names
        n = max(len(channel_names), 1)
        self.key = key
        self.sku: Codes = key // n
        self.channel: Codes = key % n
        self.quantity = quantity
        self.erp_available = erp_available
        self.buffer = buffer
        self.first = first
        self._index: pd.Index | None = None

    def __len__(self) -> int:
        return len(self.key)

    def __iter__(self) -> Iterator[Key]:
        names = self.sku_names
        channels = self.channel_names
        order = np.argsort(self.first, kind="stable")
        for s, c in zip(self.sku[order].tolist(), self.channel[order].tolist(), strict=True):
            yield (names[s], channels[c])

    def row_of(self, key: object) -> int | None:
        if self._index is None:
            self._index = pd.Index(self.sku_names, dtype=object)
        return row_of_pair(key, self._index, self.channel_names, self.key)

    def __getitem__(self, key: Key) -> Target:
        row = self.row_of(key)
        if row is None:
            raise KeyError(key)
        return Target(int(self.quantity[row]), int(self.erp_available[row]), int(self.buffer[row]))

    def __contains__(self, key: object) -> bool:
        return self.row_of(key) is not None

    def __repr__(self) -> str:
        return f"TargetTable({len(self)} targets, channels={list(self.channel_names)})"


@dataclass
class TargetSet:
    targets: TargetTable
    #: ERP locations in the stock feed that no rule maps and none ignores, with their row counts
    unmapped_locations: dict[str, int] = field(default_factory=dict)
    #: SKUs seen in the feed (in scope), including those without any mapped location
    skus: set[str] = field(default_factory=set)
    erp_rows: int = 0
    #: every location in the feed, before the SKU filter (a mapped location absent here is silent)
    locations_seen: set[str] = field(default_factory=set)
    #: ERP rows with negative on hand or available stock, per location
    negative_rows: dict[str, int] = field(default_factory=dict)


@dataclass
class _ErpColumns:
    sku: Codes
    sku_names: Objects
    location: Codes
    location_names: Objects
    available: Ints
    on_hand: Ints


def _read_rows(rows: Iterable[ErpStockRow]) -> _ErpColumns:
    """The rows as columns, a chunk at a time (a stream of rows is never held whole)."""
    skus, locations = Codebook(), Codebook()
    parts: tuple[list[Codes], list[Codes], list[Ints], list[Ints]] = ([], [], [], [])
    sku_list: list[str] = []
    location_list: list[str] = []
    available: list[int] = []
    on_hand: list[int] = []

    def flush() -> None:
        parts[0].append(skus.encode(sku_list))
        parts[1].append(locations.encode(location_list))
        parts[2].append(ints(available))
        parts[3].append(ints(on_hand))
        for column in (sku_list, location_list, available, on_hand):
            column.clear()

    add_sku, add_location = sku_list.append, location_list.append
    add_available, add_on_hand = available.append, on_hand.append
    for row in rows:
        add_sku(row.sku)
        add_location(row.location)
        add_available(row.available)
        add_on_hand(row.on_hand)
        if len(sku_list) == CHUNK:
            flush()
    flush()
    return _ErpColumns(
        concat(parts[0]),
        skus.names(),
        concat(parts[1]),
        locations.names(),
        concat(parts[2]),
        concat(parts[3]),
    )


def _buffers(
    rules: InventoryRules,
    sku_names: Objects,
    channel_names: tuple[str, ...],
    key: Ints,
    sku: Codes,
    channel: Codes,
) -> tuple[Ints, Ints]:
    """Absolute units and percent (in millionths) of the buffer of each row: the most specific
    one, SKU in channel, else SKU in every channel, else the channel's (or the default)."""
    absolute = np.array([rules.channel_buffers[c].absolute for c in channel_names], np.int64)
    percent = np.array([per_million(rules.channel_buffers[c].percent) for c in channel_names])
    row_absolute = absolute[channel] if len(channel_names) else np.zeros(0, np.int64)
    row_percent = percent.astype(np.int64)[channel] if len(channel_names) else row_absolute
    index = pd.Index(sku_names, dtype=object)  # one hash table for both lookups
    any_channel = rules.sku_buffers
    if any_channel:
        codes = np.asarray(index.get_indexer(list(any_channel)), np.int64)
        found = codes >= 0
        has = np.zeros(len(sku_names), np.bool_)
        sku_absolute = np.zeros(len(sku_names), np.int64)
        sku_percent = np.zeros(len(sku_names), np.int64)
        buffers = list(any_channel.values())
        has[codes[found]] = True
        sku_absolute[codes[found]] = [b.absolute for b, f in zip(buffers, found, strict=True) if f]
        sku_percent[codes[found]] = [
            per_million(b.percent) for b, f in zip(buffers, found, strict=True) if f
        ]
        hit = has[sku]
        row_absolute = np.where(hit, sku_absolute[sku], row_absolute)
        row_percent = np.where(hit, sku_percent[sku], row_percent)
    in_channel = rules.sku_channel_buffers
    if in_channel:
        pairs = list(in_channel)
        codes = np.asarray(index.get_indexer([s for s, _ in pairs]), np.int64)
        channel_index = {c: i for i, c in enumerate(channel_names)}
        channel_codes = np.array([channel_index.get(c, -1) for _, c in pairs], np.int64)
        found = (codes >= 0) & (channel_codes >= 0)
        n = max(len(channel_names), 1)
        rule_keys = (codes * n + channel_codes)[found]
        buffers = [b for b, f in zip(in_channel.values(), found, strict=True) if f]
        order = np.argsort(rule_keys)
        rule_keys = rule_keys[order]
        rule_absolute = np.array([buffers[i].absolute for i in order], np.int64)
        rule_percent = np.array([per_million(buffers[i].percent) for i in order], np.int64)
        if len(rule_keys):
            at = np.minimum(np.searchsorted(rule_keys, key), len(rule_keys) - 1)
            hit = rule_keys[at] == key
            row_absolute = np.where(hit, rule_absolute[at], row_absolute)
            row_percent = np.where(hit, rule_percent[at], row_percent)
    return row_absolute, row_percent


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
    erp = _read_rows(rows)
    sku_codes, sku_names = erp.sku, erp.sku_names
    location_codes, location_names = erp.location, erp.location_names
    available, on_hand = erp.available, erp.on_hand
    del erp
    locations_seen = set(location_names.tolist())
    if skus is not None:
        # Out-of-scope rows still showed their location (above); drop them and renumber SKUs.
        keep = np.asarray(pd.Index(sku_names, dtype=object).isin(list(set(skus))), np.bool_)
        if not keep.all():
            rows_in = keep[sku_codes]
            renumber = np.cumsum(keep) - 1
            sku_codes = renumber[sku_codes[rows_in]]
            sku_names = sku_names[keep]
            location_codes = location_codes[rows_in]
            available = available[rows_in]
            on_hand = on_hand[rows_in]
    count = len(sku_codes)
    n_locations = len(location_names)
    per_location = counts_by(location_codes, n_locations)
    negative = counts_by(location_codes[(available < 0) | (on_hand < 0)], n_locations)
    unmapped: dict[str, int] = {}
    negative_rows: dict[str, int] = {}
    for code, location in enumerate(location_names.tolist()):
        if negative[code]:
            negative_rows[location] = int(negative[code])
        if (
            per_location[code]
            and location not in rules.feeds
            and location not in rules.ignored_locations
        ):
            unmapped[location] = int(per_location[code])

    channel_names = tuple(rules.channels)
    channel_index = {c: i for i, c in enumerate(channel_names)}
    n_channels = max(len(channel_names), 1)
    widest = max((len(f) for f in rules.feeds.values()), default=1)
    # Rows grouped by location (stable: ascending row number within a location).
    by_location = np.argsort(location_codes, kind="stable")
    ends = np.cumsum(per_location)
    keys: list[Ints] = []
    amounts: list[Ints] = []
    seen_at: list[Ints] = []
    for code, location in enumerate(location_names.tolist()):
        feeds = rules.feeds.get(location)
        if not feeds or not per_location[code]:
            continue
        at = by_location[ends[code] - per_location[code] : ends[code]]
        row_keys = sku_codes[at] * n_channels
        row_available = available[at]
        for position, feed in enumerate(feeds):
            keys.append(row_keys + channel_index[feed.channel])
            amounts.append(share_floor(row_available, per_million(feed.source.share_percent)))
            # The dict this replaces kept (SKU, channel) in order of first appearance:
            # row by row, and within a row in the order of the location's channels.
            seen_at.append(at * widest + position)
    if keys:
        all_keys = np.concatenate(keys)
        order = np.argsort(all_keys, kind="stable")
        sorted_keys = all_keys[order]
        starts = group_starts(sorted_keys)
        key = sorted_keys[starts]
        sums = np.add.reduceat(np.concatenate(amounts)[order], starts)
        first = np.minimum.reduceat(np.concatenate(seen_at)[order], starts)
    else:
        key = sums = first = np.zeros(0, np.int64)
    del keys, amounts, seen_at

    target_sku, target_channel = key // n_channels, key % n_channels
    if rules.has_buffers and len(key):
        absolute, percent = _buffers(
            rules, sku_names, channel_names, key, target_sku, target_channel
        )
        buffer = np.where(sums > 0, np.maximum(absolute, percent_ceil(sums, percent)), 0)
    else:
        buffer = np.zeros(len(key), np.int64)
    quantity = np.maximum(sums - buffer, 0)
    table = TargetTable(sku_names, channel_names, key, quantity, sums, buffer, first)
    return TargetSet(
        targets=table,
        unmapped_locations=unmapped,
        skus=set(sku_names.tolist()),
        erp_rows=count,
        locations_seen=locations_seen,
        negative_rows=negative_rows,
    )


__all__ = ["ErpStockRow", "Key", "Target", "TargetSet", "TargetTable", "compute_targets"]
