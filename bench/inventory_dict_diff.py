"""The inventory diff as it was before it became columnar (dicts keyed by (SKU, channel)).

Kept here, outside the product, only as the baseline of ``bench/inventory_sync.py``: the bench
runs it and the columnar diff on the same data in the same run, and checks that both plan the
same changes. The code is the former ``targets.compute_targets``, ``diff.index_entries`` and
``diff.plan_changes``, unchanged but for the imports.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ct_pipelines.defs.inventory.logic.diff import (
    Change,
    ChannelCounts,
    CtStock,
    InventoryPlan,
)
from ct_pipelines.defs.inventory.logic.rules import InventoryRules
from ct_pipelines.defs.inventory.logic.targets import ErpStockRow, Key, Target


@dataclass
class TargetSet:
    targets: dict[Key, Target]
    unmapped_locations: dict[str, int] = field(default_factory=dict)
    skus: set[str] = field(default_factory=set)
    erp_rows: int = 0
    locations_seen: set[str] = field(default_factory=set)
    negative_rows: dict[str, int] = field(default_factory=dict)


@dataclass
class CtInventory:
    entries: dict[Key, CtStock]
    unmapped_channels: dict[str, int] = field(default_factory=dict)
    unknown_channel_ids: dict[str, int] = field(default_factory=dict)
    without_channel: int = 0
    negative: dict[str, int] = field(default_factory=dict)


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


def index_entries(
    docs: Iterable[Mapping[str, Any]],
    channel_keys: Mapping[str, str],
    rules: InventoryRules,
) -> CtInventory:
    """Index raw inventory entry JSON (``GET /inventory`` results) by (SKU, channel key).

    ``channel_keys`` maps channel id to key. Dict level on purpose: validating 200,000 entries
    into models costs seconds that the sync does not need.
    """
    entries: dict[Key, CtStock] = {}
    unmapped: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    negative: Counter[str] = Counter()
    without = 0
    mapped = rules.channels
    ignored = rules.ignored_channels
    for doc in docs:
        channel = doc.get("supplyChannel")
        if not channel:
            without += 1
            continue
        key = channel_keys.get(channel["id"])
        if key is None:
            unknown[channel["id"]] += 1
            continue
        on_stock = int(doc["quantityOnStock"])
        available = int(doc.get("availableQuantity", on_stock))
        if on_stock < 0 or available < 0:
            negative[key] += 1
        if key not in mapped:
            if key not in ignored:
                unmapped[key] += 1
            continue
        entries[(doc["sku"], key)] = CtStock(doc["id"], int(doc["version"]), on_stock, available)
    return CtInventory(entries, dict(unmapped), dict(unknown), without, dict(negative))


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
    """
    in_channels = set(channels) if channels is not None else set(rules.channels)
    in_skus = set(skus) if skus is not None else None
    # Every channel in scope is reported, even one with nothing to compare.
    per_channel = {channel: ChannelCounts() for channel in sorted(in_channels)}
    changes: list[Change] = []
    unchanged = zero_without_entry = commercetools_only = 0
    create_zero = rules.create_zero_entries
    entries = current.entries

    def in_scope(key: Key) -> bool:
        return key[1] in in_channels and (in_skus is None or key[0] in in_skus)

    for key, target in targets.targets.items():
        if not in_scope(key):
            continue
        counts = per_channel[key[1]]
        counts.compared += 1
        entry = entries.get(key)
        if entry is None:
            if target.quantity > 0 or create_zero:
                counts.to_create += 1
                counts.absolute_drift += target.quantity
                changes.append(Change(key[0], key[1], target.quantity, None, None, None))
            else:
                zero_without_entry += 1
                counts.in_step += 1
            continue
        if entry.available_quantity > max(target.erp_available, 0):
            counts.oversell_risk += 1
        if entry.quantity_on_stock == target.quantity:
            unchanged += 1
            counts.in_step += 1
            continue
        counts.to_update += 1
        counts.absolute_drift += abs(entry.quantity_on_stock - target.quantity)
        changes.append(
            Change(
                key[0],
                key[1],
                target.quantity,
                entry.entry_id,
                entry.version,
                entry.quantity_on_stock,
            )
        )
    known = targets.targets
    erp_skus = targets.skus
    for key, entry in entries.items():
        if key in known or not in_scope(key):
            continue
        counts = per_channel[key[1]]
        counts.compared += 1
        if key[0] not in erp_skus:
            commercetools_only += 1
        if entry.available_quantity > 0:
            counts.oversell_risk += 1
        if entry.quantity_on_stock == 0:
            unchanged += 1
            counts.in_step += 1
            continue
        counts.to_update += 1
        counts.absolute_drift += abs(entry.quantity_on_stock)
        changes.append(
            Change(key[0], key[1], 0, entry.entry_id, entry.version, entry.quantity_on_stock)
        )
    return InventoryPlan(changes, per_channel, unchanged, zero_without_entry, commercetools_only)
