"""The columnar diff against a plain-dict reference, on random inputs.

The reference below is the specification of :mod:`ct_pipelines.defs.inventory.logic` written
out with dicts, one row at a time, and using the rules' own scalar arithmetic
(``Source.share_of``, ``Buffer.units``). The columnar code must give the same targets, the same
index of entries, the same plan (the same changes in the same order) and the same counts, for
inputs with SKUs on one side only, new entries, unknown and unmapped channels, negative and zero
stock, split and shared locations, buffers at every level, and SKU/channel scopes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ct_pipelines.defs.inventory.logic import (
    ChannelCounts,
    CtInventory,
    CtStock,
    InventoryRules,
    compute_targets,
    index_entries,
    parse_rules,
    plan_changes,
)
from ct_pipelines.defs.inventory.logic.diff import Change
from ct_pipelines.defs.inventory.logic.targets import Target
from ct_pipelines_tests.defs.inventory.logic.fakes import Row

SKUS = ["A", "B", "C", "D", "E", "F", "G", "H"]
LOCATIONS = ["MAN", "BRS", "LDN", "SHARED", "RETURNS", "QUARANTINE"]
CHANNEL_IDS = {
    "c-north": "wh-north",
    "c-south": "wh-south",
    "c-store": "store-x",
    "c-outlet": "outlet",  # ignored by the rules
    "c-web": "web-uk",  # exists, no rule maps it
}
UNKNOWN_CHANNEL = "c-gone"  # an id that resolves to no channel
CHANNELS = ["wh-north", "wh-south", "store-x"]
PERCENTS = ["0", "5", "12.5", "33.3333", "50", "99.9999"]


# --- the reference -------------------------------------------------------------------------


@dataclass
class RefTargets:
    targets: dict[tuple[str, str], Target]
    unmapped: dict[str, int]
    skus: set[str]
    rows: int
    seen: set[str]
    negative: dict[str, int]


def ref_targets(
    rows: Iterable[Row], rules: InventoryRules, skus: Collection[str] | None
) -> RefTargets:
    sums: dict[tuple[str, str], int] = {}
    unmapped: Counter[str] = Counter()
    negative: Counter[str] = Counter()
    seen_skus: set[str] = set()
    seen: set[str] = set()
    count = 0
    for row in rows:
        seen.add(row.location)
        if skus is not None and row.sku not in skus:
            continue
        count += 1
        seen_skus.add(row.sku)
        if row.available < 0 or row.on_hand < 0:
            negative[row.location] += 1
        feeds = rules.feeds.get(row.location)
        if feeds is None:
            if row.location not in rules.ignored_locations:
                unmapped[row.location] += 1
            continue
        for feed in feeds:
            key = (row.sku, feed.channel)
            sums[key] = sums.get(key, 0) + feed.source.share_of(row.available)
    targets = {}
    for (sku, channel), available in sums.items():
        buffer = rules.buffer_for(sku, channel).units(available)
        targets[(sku, channel)] = Target(max(available - buffer, 0), available, buffer)
    return RefTargets(targets, dict(unmapped), seen_skus, count, seen, dict(negative))


def ref_index(
    docs: Iterable[Mapping[str, Any]], rules: InventoryRules
) -> tuple[dict[tuple[str, str], CtStock], dict[str, int], dict[str, int], int, dict[str, int]]:
    entries: dict[tuple[str, str], CtStock] = {}
    unmapped: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    negative: Counter[str] = Counter()
    without = 0
    for doc in docs:
        if "supplyChannel" not in doc:
            without += 1
            continue
        channel_id = doc["supplyChannel"]["id"]
        key = CHANNEL_IDS.get(channel_id)
        if key is None:
            unknown[channel_id] += 1
            continue
        on_stock = doc["quantityOnStock"]
        available = doc.get("availableQuantity", on_stock)
        if on_stock < 0 or available < 0:
            negative[key] += 1
        if key not in rules.channels:
            if key not in rules.ignored_channels:
                unmapped[key] += 1
            continue
        entries[(doc["sku"], key)] = CtStock(doc["id"], doc["version"], on_stock, available)
    return entries, dict(unmapped), dict(unknown), without, dict(negative)


def ref_plan(
    targets: RefTargets,
    entries: dict[tuple[str, str], CtStock],
    rules: InventoryRules,
    skus: Collection[str] | None,
    channels: Collection[str] | None,
) -> tuple[list[Change], dict[str, ChannelCounts], int, int, int]:
    scope_channels = set(channels) if channels is not None else set(rules.channels)
    per_channel = {c: ChannelCounts() for c in sorted(scope_channels)}
    changes: list[Change] = []
    unchanged = zero_without_entry = commercetools_only = 0

    def in_scope(sku: str, channel: str) -> bool:
        return channel in scope_channels and (skus is None or sku in skus)

    for (sku, channel), target in targets.targets.items():
        if not in_scope(sku, channel):
            continue
        counts = per_channel[channel]
        counts.compared += 1
        entry = entries.get((sku, channel))
        if entry is None:
            if target.quantity > 0 or rules.create_zero_entries:
                counts.to_create += 1
                counts.absolute_drift += target.quantity
                changes.append(Change(sku, channel, target.quantity, None, None, None))
            else:
                zero_without_entry += 1
                counts.in_step += 1
            continue
        if entry.available_quantity > max(target.erp_available, 0):
            counts.oversell_risk += 1
        if entry.quantity_on_stock == target.quantity:
            unchanged += 1
            counts.in_step += 1
        else:
            counts.to_update += 1
            counts.absolute_drift += abs(entry.quantity_on_stock - target.quantity)
            changes.append(
                Change(sku, channel, target.quantity, *entry[:2], entry.quantity_on_stock)
            )
    for (sku, channel), entry in entries.items():
        if (sku, channel) in targets.targets or not in_scope(sku, channel):
            continue
        counts = per_channel[channel]
        counts.compared += 1
        if sku not in targets.skus:
            commercetools_only += 1
        if entry.available_quantity > 0:
            counts.oversell_risk += 1
        if entry.quantity_on_stock == 0:
            unchanged += 1
            counts.in_step += 1
        else:
            counts.to_update += 1
            counts.absolute_drift += abs(entry.quantity_on_stock)
            changes.append(Change(sku, channel, 0, *entry[:2], entry.quantity_on_stock))
    return changes, per_channel, unchanged, zero_without_entry, commercetools_only


# --- random inputs -------------------------------------------------------------------------

percents = st.sampled_from(PERCENTS).map(float)
buffers = st.fixed_dictionaries(
    {"absolute": st.integers(0, 4), "percent": percents},
)


@st.composite
def rules_data(draw: st.DrawFn) -> dict[str, Any]:
    south_share = draw(st.sampled_from([12.5, 33.3333, 50.0, 90.0]))
    store_share = draw(st.sampled_from([s for s in (10.0, 25.0, 50.0) if s + south_share <= 100]))
    channels: dict[str, Any] = {
        "wh-north": {"sources": ["MAN", "SHARED"]},
        "wh-south": {"sources": ["BRS", {"location": "LDN", "share_percent": south_share}]},
        "store-x": {"sources": [{"location": "LDN", "share_percent": store_share}, "SHARED"]},
    }
    for key in CHANNELS:
        if draw(st.booleans()):
            channels[key]["buffer"] = draw(buffers)
    sku_buffers = []
    for sku, channel in draw(
        st.lists(
            st.tuples(st.sampled_from([*SKUS, "UNSOLD"]), st.sampled_from([None, *CHANNELS])),
            max_size=6,
            unique=True,
        )
    ):
        rule = {"sku": sku, **draw(buffers)}
        if channel is not None:
            rule["channel"] = channel
        sku_buffers.append(rule)
    return {
        "default_buffer": draw(buffers),
        "channels": channels,
        "sku_buffers": sku_buffers,
        "shared_locations": ["SHARED"],
        "ignored_locations": ["QUARANTINE"],
        "ignored_channels": ["outlet"],
        "create_zero_entries": draw(st.booleans()),
    }


erp_rows = st.lists(
    st.builds(
        Row,
        st.sampled_from(SKUS),
        st.sampled_from(LOCATIONS),
        st.integers(-6, 40),
        st.integers(0, 6),
    ),
    max_size=40,
)


@st.composite
def entry_docs(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs = []
    for n, (sku, channel, on_stock, reserved, has_available) in enumerate(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(SKUS),
                    st.sampled_from([None, UNKNOWN_CHANNEL, *CHANNEL_IDS]),
                    st.integers(-3, 40),
                    st.integers(-2, 6),
                    st.booleans(),
                ),
                max_size=40,
            )
        )
    ):
        doc: dict[str, Any] = {"id": f"e{n}", "version": n % 5 + 1, "sku": sku}
        doc["quantityOnStock"] = on_stock
        if has_available:
            doc["availableQuantity"] = on_stock - reserved
        if channel is not None:
            doc["supplyChannel"] = {"typeId": "channel", "id": channel}
        docs.append(doc)
    return docs


scopes = st.one_of(st.none(), st.sets(st.sampled_from([*SKUS, "UNSOLD"]), max_size=4))
channel_scopes = st.one_of(st.none(), st.sets(st.sampled_from(CHANNELS), min_size=1))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=rules_data(),
    rows=erp_rows,
    docs=entry_docs(),
    skus=scopes,
    channels=channel_scopes,
)
def test_the_columnar_diff_equals_the_dict_reference(
    data: dict[str, Any],
    rows: list[Row],
    docs: list[dict[str, Any]],
    skus: set[str] | None,
    channels: set[str] | None,
) -> None:
    rules = parse_rules(data)

    targets = compute_targets(rows, rules, skus=skus)
    expected = ref_targets(rows, rules, skus)
    assert list(targets.targets.items()) == list(expected.targets.items())
    assert dict(targets.targets) == expected.targets
    assert targets.unmapped_locations == expected.unmapped
    assert targets.skus == expected.skus
    assert targets.erp_rows == expected.rows
    assert targets.locations_seen == expected.seen
    assert targets.negative_rows == expected.negative

    current = index_entries(docs, CHANNEL_IDS, rules)
    entries, unmapped, unknown, without, negative = ref_index(docs, rules)
    assert list(current.entries.items()) == list(entries.items())
    assert (current.unmapped_channels, current.unknown_channel_ids) == (unmapped, unknown)
    assert (current.without_channel, current.negative) == (without, negative)

    changes, per_channel, unchanged, zero_without_entry, ct_only = ref_plan(
        expected, entries, rules, skus, channels
    )
    # From the columns, and from a plain dict of entries (as tests and callers may build).
    for inventory in (current, CtInventory(dict(entries))):
        plan = plan_changes(targets, inventory, rules, skus=skus, channels=channels)
        assert plan.changes == changes
        assert plan.per_channel == per_channel
        assert (plan.unchanged, plan.zero_without_entry, plan.commercetools_only) == (
            unchanged,
            zero_without_entry,
            ct_only,
        )
        # Writes are exactly the entries that differ from their target.
        assert plan.drifted == sum(c.drifted for c in per_channel.values())

    stocked: dict[str, tuple[int, int]] = {}
    for (_, channel), entry in entries.items():
        if entry.quantity_on_stock > 0:
            n, units = stocked.get(channel, (0, 0))
            stocked[channel] = (n + 1, units + entry.quantity_on_stock)
    assert current.table.stocked_by_channel() == stocked


def test_lookups_on_the_tables_behave_like_dicts() -> None:
    rules = parse_rules({"channels": {"wh-north": {"sources": ["MAN"]}}})
    targets = compute_targets([Row("A", "MAN", 3), Row("B", "MAN", -1)], rules)
    assert targets.targets[("A", "wh-north")] == Target(3, 3, 0)
    assert ("B", "wh-north") in targets.targets
    assert ("A", "wh-south") not in targets.targets
    assert ("Z", "wh-north") not in targets.targets
    assert targets.targets.get(("Z", "wh-north")) is None
    docs = [
        {"id": "1", "version": 4, "sku": "A", "supplyChannel": {"id": "c"}, "quantityOnStock": 2}
    ]
    current = index_entries(docs, {"c": "wh-north"}, rules)
    assert current.entries[("A", "wh-north")] == CtStock("1", 4, 2, 2)
    assert ("A", "elsewhere") not in current.entries
    assert len(current.entries) == 1 and bool(current.entries)
    empty = index_entries([], {}, rules)
    assert not empty.entries and list(empty.entries) == []
