"""Compare targets with commercetools inventory entries: what to write, and what is wrong.

Everything here is pure (no I/O), so the sync, the asset checks and the bench share one logic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ct_pipelines.defs.inventory.logic.rules import InventoryRules
from ct_pipelines.defs.inventory.logic.targets import Key, Target, TargetSet

NO_STOCK = Target(0, 0, 0)
INVENTORY_SUPPLY = "InventorySupply"


class CtStock(NamedTuple):
    """One commercetools inventory entry, as much of it as the sync needs."""

    entry_id: str
    version: int
    quantity_on_stock: int
    available_quantity: int


@dataclass
class CtInventory:
    """commercetools entries of the mapped channels, keyed by (SKU, channel key)."""

    entries: dict[Key, CtStock]
    #: entries in channels that exist but no rule maps (and none ignores), per channel key
    unmapped_channels: dict[str, int] = field(default_factory=dict)
    #: entries pointing at a channel id that does not resolve to a channel
    unknown_channel_ids: dict[str, int] = field(default_factory=dict)
    #: entries without a supply channel (the SKU's global entry): never written by this flow
    without_channel: int = 0
    #: entries with negative quantityOnStock or availableQuantity, per channel key
    negative: dict[str, int] = field(default_factory=dict)


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
    "InventoryPlan",
    "MappingReport",
    "index_entries",
    "mapping_report",
    "plan_changes",
]
