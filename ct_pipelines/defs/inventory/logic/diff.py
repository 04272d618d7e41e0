"""Compare targets with commercetools inventory entries: what to write, and what is wrong.

Everything here is pure (no I/O), so the sync, the asset checks and the bench share one logic.
Both sides are columns (:class:`~.targets.TargetTable`, :class:`EntryTable`): the comparison is
array arithmetic on int keys, and only the entries to write become :class:`Change` objects.
"""

from __future__ import annotations

from collections.abc import Collection, ItemsView, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from ct_pipelines.defs.inventory.logic.columns import (
    CHUNK,
    Bools,
    Codebook,
    Codes,
    Ints,
    Objects,
    concat,
    counts_by,
    factorize,
    group_starts,
    ints,
    lookup,
    row_of_pair,
    sums_by,
)
from ct_pipelines.defs.inventory.logic.rules import InventoryRules
from ct_pipelines.defs.inventory.logic.targets import Key, Target, TargetSet, TargetTable

NO_STOCK = Target(0, 0, 0)
INVENTORY_SUPPLY = "InventorySupply"


class CtStock(NamedTuple):
    """One commercetools inventory entry, as much of it as the sync needs."""

    entry_id: str
    version: int
    quantity_on_stock: int
    available_quantity: int


class EntryTable(Mapping[Key, CtStock]):
    """commercetools entries as columns, one row per (SKU, channel key), sorted by
    ``key = sku * len(channel_names) + channel``; ``first`` ranks rows in reading order.

    When two entries share a (SKU, channel) the last one read wins, in the place of the first
    (what a dict keyed by (SKU, channel) did).
    """

    __slots__ = (
        "_index",
        "available",
        "channel",
        "channel_names",
        "entry_id",
        "first",
        "key",
        "on_stock",
        "sku",
        "sku_names",
        "version",
    )

    def __init__(
        self,
        sku_names: Objects,
        channel_names: tuple[str, ...],
        key: Ints,
        entry_id: Objects,
        version: Ints,
        on_stock: Ints,
        available: Ints,
        first: Ints,
    ) -> None:
        self.sku_names = sku_names
        self.channel_names = channel_names
        n = max(len(channel_names), 1)
        self.key = key
        self.sku: Codes = key // n
        self.channel: Codes = key % n
        self.entry_id = entry_id
        self.version = version
        self.on_stock = on_stock
        self.available = available
        self.first = first
        self._index: pd.Index | None = None

    @classmethod
    def from_codes(
        cls,
        sku_codes: Codes,
        sku_names: Objects,
        channel_codes: Codes,
        channel_names: tuple[str, ...],
        entry_id: Objects,
        version: Ints,
        on_stock: Ints,
        available: Ints,
    ) -> EntryTable:
        """One row per (SKU, channel) from rows in reading order (codes into the names)."""
        n = max(len(channel_names), 1)
        keys = sku_codes * n + channel_codes
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = group_starts(sorted_keys)
        if len(starts) == len(sorted_keys):
            rows = first = order
        else:
            ends = np.append(starts[1:], len(sorted_keys)) - 1
            rows, first = order[ends], order[starts]
        return cls(
            sku_names,
            channel_names,
            sorted_keys[starts],
            entry_id[rows],
            version[rows],
            on_stock[rows],
            available[rows],
            first,
        )

    @classmethod
    def from_mapping(cls, entries: Mapping[Key, CtStock]) -> EntryTable:
        if isinstance(entries, EntryTable):
            return entries
        sku_codes, sku_names = factorize([sku for sku, _ in entries])
        channel_codes, channel_names = factorize([channel for _, channel in entries])
        values = list(entries.values())
        return cls.from_codes(
            sku_codes,
            sku_names,
            channel_codes,
            tuple(channel_names.tolist()),
            np.array([v.entry_id for v in values], dtype=object),
            ints([v.version for v in values]),
            ints([v.quantity_on_stock for v in values]),
            ints([v.available_quantity for v in values]),
        )

    def __len__(self) -> int:
        return len(self.key)

    def _ordered(self) -> Ints:
        return np.argsort(self.first, kind="stable")

    def __iter__(self) -> Iterator[Key]:
        names, channels = self.sku_names, self.channel_names
        order = self._ordered()
        for s, c in zip(self.sku[order].tolist(), self.channel[order].tolist(), strict=True):
            yield (names[s], channels[c])

    def items(self) -> ItemsView[Key, CtStock]:
        return _EntryItems(self)

    def _row(self, row: int) -> CtStock:
        return CtStock(
            self.entry_id[row],
            int(self.version[row]),
            int(self.on_stock[row]),
            int(self.available[row]),
        )

    def _row_of(self, key: object) -> int | None:
        if self._index is None:
            self._index = pd.Index(self.sku_names, dtype=object)
        return row_of_pair(key, self._index, self.channel_names, self.key)

    def __getitem__(self, key: Key) -> CtStock:
        row = self._row_of(key)
        if row is None:
            raise KeyError(key)
        return self._row(row)

    def __contains__(self, key: object) -> bool:
        return self._row_of(key) is not None

    def __repr__(self) -> str:
        return f"EntryTable({len(self)} entries, channels={list(self.channel_names)})"

    def stocked_by_channel(self) -> dict[str, tuple[int, int]]:
        """Channel key -> (entries with stock above 0, their units on stock)."""
        n = len(self.channel_names)
        stocked = self.on_stock > 0
        counts = counts_by(self.channel[stocked], n)
        units = sums_by(self.channel[stocked], self.on_stock[stocked], n)
        return {
            channel: (int(counts[i]), int(units[i]))
            for i, channel in enumerate(self.channel_names)
            if counts[i]
        }


class _EntryItems(ItemsView[Key, CtStock]):
    _mapping: EntryTable

    def __iter__(self) -> Iterator[tuple[Key, CtStock]]:
        table = self._mapping
        names, channels = table.sku_names, table.channel_names
        for row in table._ordered().tolist():
            key = int(table.key[row])
            n = max(len(channels), 1)
            yield (names[key // n], channels[key % n]), table._row(row)


@dataclass
class CtInventory:
    """commercetools entries of the mapped channels, keyed by (SKU, channel key).

    ``entries`` is an :class:`EntryTable` when read by :func:`index_entries`; any mapping of
    (SKU, channel) to :class:`CtStock` is accepted (tests build small dicts).
    """

    entries: Mapping[Key, CtStock]
    #: entries in channels that exist but no rule maps (and none ignores), per channel key
    unmapped_channels: dict[str, int] = field(default_factory=dict)
    #: entries pointing at a channel id that does not resolve to a channel
    unknown_channel_ids: dict[str, int] = field(default_factory=dict)
    #: entries without a supply channel (the SKU's global entry): never written by this flow
    without_channel: int = 0
    #: entries with negative quantityOnStock or availableQuantity, per channel key
    negative: dict[str, int] = field(default_factory=dict)

    @property
    def table(self) -> EntryTable:
        if not isinstance(self.entries, EntryTable):
            self.entries = EntryTable.from_mapping(self.entries)
        return self.entries


def index_entries(
    docs: Iterable[Mapping[str, Any]],
    channel_keys: Mapping[str, str],
    rules: InventoryRules,
) -> CtInventory:
    """Index raw inventory entry JSON (``GET /inventory`` results) by (SKU, channel key).

    ``channel_keys`` maps channel id to key. Dict level on purpose, and read once into columns:
    validating 1,000,000 entries into models, or keeping one object per entry, costs seconds
    that the sync does not need. ``docs`` may be a stream (pages as they arrive).
    """
    skus, channel_ids = Codebook(), Codebook()
    parts: tuple[list[Codes], list[Codes], list[Objects], list[Ints], list[Ints], list[Ints]]
    parts = ([], [], [], [], [], [])
    sku_list: list[str] = []
    channel_list: list[str] = []
    ids: list[str] = []
    versions: list[int] = []
    on_stock: list[int] = []
    available: list[int] = []

    def flush() -> None:
        parts[0].append(skus.encode(sku_list))
        parts[1].append(channel_ids.encode(channel_list))
        parts[2].append(np.array(ids, dtype=object))
        parts[3].append(ints(versions))
        parts[4].append(ints(on_stock))
        parts[5].append(ints(available))
        for column in (sku_list, channel_list, ids, versions, on_stock, available):
            column.clear()

    add_sku, add_channel, add_id = sku_list.append, channel_list.append, ids.append
    add_version, add_on_stock, add_available = versions.append, on_stock.append, available.append
    without = 0
    for doc in docs:
        channel = doc.get("supplyChannel")
        if not channel:
            without += 1
            continue
        add_channel(channel["id"])
        add_sku(doc["sku"])
        add_id(doc["id"])
        add_version(doc["version"])
        quantity = doc["quantityOnStock"]
        add_on_stock(quantity)
        add_available(doc.get("availableQuantity", quantity))
        if len(ids) == CHUNK:
            flush()
    flush()
    id_codes, distinct_ids = concat(parts[1]), channel_ids.names()
    on, av = concat(parts[4]), concat(parts[5])
    mapped_names = tuple(rules.channels)
    mapped_index = {c: i for i, c in enumerate(mapped_names)}
    # Per distinct channel id: its mapped channel code, or -1.
    mapped_code = np.full(len(distinct_ids), -1, np.int64)
    per_id = counts_by(id_codes, len(distinct_ids))
    negative_per_id = counts_by(id_codes[(on < 0) | (av < 0)], len(distinct_ids))
    unknown: dict[str, int] = {}
    unmapped: dict[str, int] = {}
    negative: dict[str, int] = {}
    for code, channel_id in enumerate(distinct_ids.tolist()):
        key = channel_keys.get(channel_id)
        if key is None:
            unknown[channel_id] = int(per_id[code])
            continue
        if negative_per_id[code]:
            negative[key] = negative.get(key, 0) + int(negative_per_id[code])
        if key in mapped_index:
            mapped_code[code] = mapped_index[key]
        elif key not in rules.ignored_channels:
            unmapped[key] = unmapped.get(key, 0) + int(per_id[code])
    row_channel = mapped_code[id_codes] if len(id_codes) else np.zeros(0, np.int64)
    kept: Bools = row_channel >= 0
    sku_codes, versions_read = concat(parts[0]), concat(parts[3])
    entry_ids = np.concatenate(parts[2]) if parts[2] else np.empty(0, dtype=object)
    table = EntryTable.from_codes(
        sku_codes[kept],
        skus.names(),
        row_channel[kept],
        mapped_names,
        entry_ids[kept],
        versions_read[kept],
        on[kept],
        av[kept],
    )
    return CtInventory(table, unmapped, unknown, without, negative)


ChangeKind = Literal["create", "update"]


class Change(NamedTuple):
    """One entry to write: create it, or set its quantity with the version that was read."""

    sku: str
    channel: str
    target: int
    entry_id: str | None  # None: the entry does not exist yet
    version: int | None
    current: int | None  # quantityOnStock read, None for a create

    @property
    def kind(self) -> ChangeKind:
        return "create" if self.entry_id is None else "update"


@dataclass
class ChannelCounts:
    compared: int = 0
    in_step: int = 0
    to_update: int = 0  # entry exists with another quantity: drift
    to_create: int = 0  # stock to publish but no entry yet: drift
    absolute_drift: int = 0  # sum of |commercetools - target| over drifted entries
    oversell_risk: int = 0  # commercetools available above the ERP's available

    @property
    def drifted(self) -> int:
        return self.to_update + self.to_create


@dataclass
class InventoryPlan:
    changes: list[Change]
    per_channel: dict[str, ChannelCounts]
    unchanged: int = 0
    #: (SKU, channel) with target 0 and no entry: nothing to write (no entry sells nothing)
    zero_without_entry: int = 0
    #: commercetools entries of SKUs the ERP feed did not contain, set to 0
    commercetools_only: int = 0

    @property
    def creates(self) -> int:
        return sum(1 for c in self.changes if c.entry_id is None)

    @property
    def updates(self) -> int:
        return len(self.changes) - self.creates

    @property
    def drifted(self) -> int:
        return len(self.changes)

    @property
    def compared(self) -> int:
        return sum(c.compared for c in self.per_channel.values())


def _in_scope(
    sku_names: Objects,
    channel_names: tuple[str, ...],
    sku: Codes,
    channel: Codes,
    in_skus: Collection[str] | None,
    in_channels: Collection[str],
) -> Bools:
    channel_in = np.array([c in in_channels for c in channel_names], np.bool_)
    mask: Bools = channel_in[channel] if len(channel_names) else np.zeros(len(sku), np.bool_)
    if in_skus is not None:
        sku_in = np.asarray(pd.Index(sku_names, dtype=object).isin(list(in_skus)), np.bool_)
        mask &= sku_in[sku] if len(sku_names) else np.zeros(len(sku), np.bool_)
    return mask


def _add_counts(
    per_channel: dict[str, ChannelCounts],
    channel_names: tuple[str, ...],
    channel: Codes,
    *,
    compared: Bools,
    in_step: Bools,
    to_update: Bools,
    to_create: Bools,
    oversell: Bools,
    drift: Ints,
) -> None:
    n = len(channel_names)
    tallies = [
        counts_by(channel[m], n) for m in (compared, in_step, to_update, to_create, oversell)
    ]
    drifts = sums_by(channel[to_update | to_create], drift[to_update | to_create], n)
    for i, name in enumerate(channel_names):
        if not tallies[0][i]:
            continue
        counts = per_channel[name]
        counts.compared += int(tallies[0][i])
        counts.in_step += int(tallies[1][i])
        counts.to_update += int(tallies[2][i])
        counts.to_create += int(tallies[3][i])
        counts.oversell_risk += int(tallies[4][i])
        counts.absolute_drift += int(drifts[i])


def plan_changes(
    targets: TargetSet,
    current: CtInventory,
    rules: InventoryRules,
    *,
    skus: Collection[str] | None = None,
    channels: Collection[str] | None = None,
) -> InventoryPlan:
    """The minimum writes that make commercetools match the targets.

    In scope: every mapped channel (or ``channels``) and every SKU (or ``skus``). An entry
    whose (SKU, channel) has no target shows no stock in the ERP for that channel and is set to
    0. A missing entry is created only when its target is above 0, unless the rules ask for
    ``create_zero_entries``. The comparison is on ``quantityOnStock``, the value
    ``changeQuantity`` sets.

    Changes come in the order of the targets (as the ERP feed listed them), then the entries
    without a target (in reading order).
    """
    in_channels = set(channels) if channels is not None else set(rules.channels)
    in_skus = set(skus) if skus is not None else None
    # Every channel in scope is reported, even one with nothing to compare.
    per_channel = {channel: ChannelCounts() for channel in sorted(in_channels)}
    t: TargetTable = targets.targets
    e = current.table

    # The entries' (SKU, channel) in the targets' codes; -1 where the targets lack either.
    n_channels = max(len(t.channel_names), 1)
    target_sku_of = lookup(t.sku_names, e.sku_names)
    channel_of = np.array([_index_or(t.channel_names, c) for c in e.channel_names], np.int64)
    e_sku = target_sku_of[e.sku] if len(e) else np.zeros(0, np.int64)
    e_channel = channel_of[e.channel] if len(e) else np.zeros(0, np.int64)
    e_key = np.where((e_sku >= 0) & (e_channel >= 0), e_sku * n_channels + e_channel, -1)
    at = np.searchsorted(t.key, e_key)
    at_safe = np.minimum(at, max(len(t) - 1, 0))
    matched: Bools = (
        (e_key >= 0) & (t.key[at_safe] == e_key) if len(t) else np.zeros(len(e), np.bool_)
    )
    entry_of = np.full(len(t), -1, np.int64)  # per target row: its entry row, or -1
    entry_of[at[matched]] = np.flatnonzero(matched)

    # Targets in scope, with or without an entry.
    t_rows = np.flatnonzero(
        _in_scope(t.sku_names, t.channel_names, t.sku, t.channel, in_skus, in_channels)
    )
    entry = entry_of[t_rows]
    has = entry >= 0
    entry_safe = np.where(has, entry, 0)
    quantity = t.quantity[t_rows]
    channel = t.channel[t_rows]
    if len(e):
        e_on = e.on_stock[entry_safe]
        e_available = e.available[entry_safe]
    else:
        e_on = e_available = np.zeros(len(t_rows), np.int64)
    create = ~has & ((quantity > 0) | rules.create_zero_entries)
    zero_without = ~has & ~create
    same = has & (e_on == quantity)
    update = has & ~same
    oversell = has & (e_available > np.maximum(t.erp_available[t_rows], 0))
    _add_counts(
        per_channel,
        t.channel_names,
        channel,
        compared=np.ones(len(t_rows), np.bool_),
        in_step=same | zero_without,
        to_update=update,
        to_create=create,
        oversell=oversell,
        drift=np.where(has, np.abs(e_on - quantity), quantity),
    )
    unchanged = int(same.sum())
    zero_without_entry = int(zero_without.sum())

    changed = np.flatnonzero(create | update)
    changed = changed[np.argsort(t.first[t_rows[changed]], kind="stable")]
    changes = _changes(
        t.sku_names[t.sku[t_rows[changed]]],
        np.array(t.channel_names, dtype=object)[channel[changed]],
        quantity[changed],
        has[changed],
        e,
        entry_safe[changed],
    )

    # Entries in scope without a target: no stock for them in the ERP, so 0.
    e_rows = np.flatnonzero(
        _in_scope(e.sku_names, e.channel_names, e.sku, e.channel, in_skus, in_channels) & ~matched
    )
    on = e.on_stock[e_rows]
    zero = on == 0
    _add_counts(
        per_channel,
        e.channel_names,
        e.channel[e_rows],
        compared=np.ones(len(e_rows), np.bool_),
        in_step=zero,
        to_update=~zero,
        to_create=np.zeros(len(e_rows), np.bool_),
        oversell=e.available[e_rows] > 0,
        drift=np.abs(on),
    )
    unchanged += int(zero.sum())
    commercetools_only = int((e_sku[e_rows] < 0).sum()) if len(e_rows) else 0
    stale = e_rows[~zero]
    stale = stale[np.argsort(e.first[stale], kind="stable")]
    changes += _changes(
        e.sku_names[e.sku[stale]],
        np.array(e.channel_names, dtype=object)[e.channel[stale]],
        np.zeros(len(stale), np.int64),
        np.ones(len(stale), np.bool_),
        e,
        stale,
    )
    return InventoryPlan(changes, per_channel, unchanged, zero_without_entry, commercetools_only)


def _index_or(names: tuple[str, ...], name: str) -> int:
    return names.index(name) if name in names else -1


def _changes(
    skus: Objects,
    channels: Objects,
    targets: Ints,
    existing: Bools,
    entries: EntryTable,
    rows: Ints,
) -> list[Change]:
    """The rows to write as :class:`Change` objects (the only per-row Python of the diff)."""
    if not len(rows):
        return []
    if len(entries):
        ids = entries.entry_id[rows].tolist()
        versions = entries.version[rows].tolist()
        currents = entries.on_stock[rows].tolist()
    else:
        ids = versions = currents = [None] * len(rows)
    return [
        Change(sku, channel, target, i, v, c)
        if exists
        else Change(sku, channel, target, None, None, None)
        for sku, channel, target, exists, i, v, c in zip(
            skus.tolist(),
            channels.tolist(),
            targets.tolist(),
            existing.tolist(),
            ids,
            versions,
            currents,
            strict=True,
        )
    ]


@dataclass
class MappingReport:
    """Mapping gaps: stock that feeds nothing, channels nothing feeds, rules pointing nowhere."""

    unmapped_locations: dict[str, int]  # ERP location -> stock rows
    unmapped_channels: list[str]  # supply channels in commercetools without a rule
    missing_channels: list[str]  # channels in the rules that commercetools does not have
    silent_locations: list[str]  # mapped locations with no stock rows in the feed
    unknown_channel_ids: dict[str, int]

    @property
    def problems(self) -> int:
        return (
            len(self.unmapped_locations)
            + len(self.unmapped_channels)
            + len(self.missing_channels)
            + len(self.unknown_channel_ids)
        )


def mapping_report(
    targets: TargetSet,
    current: CtInventory,
    rules: InventoryRules,
    channels: Mapping[str, Collection[str]],
) -> MappingReport:
    """``channels`` maps every commercetools channel key to its roles. A channel counts as a
    supply channel when it has the InventorySupply role or holds inventory entries."""
    supply = {k for k, roles in channels.items() if INVENTORY_SUPPLY in roles}
    supply |= set(current.unmapped_channels)
    unmapped_channels = sorted(
        k for k in supply if k not in rules.channels and k not in rules.ignored_channels
    )
    missing = sorted(k for k in rules.channels if k not in channels)
    silent = sorted(loc for loc in rules.locations if loc not in targets.locations_seen)
    return MappingReport(
        unmapped_locations=dict(sorted(targets.unmapped_locations.items())),
        unmapped_channels=unmapped_channels,
        missing_channels=missing,
        silent_locations=silent,
        unknown_channel_ids=dict(current.unknown_channel_ids),
    )


__all__ = [
    "NO_STOCK",
    "Change",
    "ChannelCounts",
    "CtInventory",
    "CtStock",
    "EntryTable",
    "InventoryPlan",
    "MappingReport",
    "index_entries",
    "mapping_report",
    "plan_changes",
]
