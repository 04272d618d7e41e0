"""The sync engine against an in-memory commercetools: writes, conflicts, failures, guards."""

from __future__ import annotations

from typing import Any

import pytest

from ct_pipelines.commercetools.errors import BadRequestError
from ct_pipelines.defs.inventory.logic import InventoryOptions, InventorySync, InventorySyncRefused
from ct_pipelines.defs.inventory.logic.sync import entry_key, source_locations
from ct_pipelines_tests.defs.inventory.logic.fakes import FakeCommercetools, Row, rules


def _world() -> FakeCommercetools:
    ct = FakeCommercetools()
    for key in ("wh-north", "wh-south"):
        ct.add_channel(key)
    ct.sell("A")  # the shop's catalogue: most tests feed A only
    return ct


def test_a_full_sync_writes_exactly_the_changed_entries() -> None:
    ct = _world()
    ct.sell("B", "C", "D")
    ct.put("A", "wh-north", 5)
    ct.put("B", "wh-north", 9)
    ct.put("GLOBAL", None, 40)  # the SKU's channel-less entry is never touched
    rows = [Row("A", "MAN", 5), Row("B", "MAN", 7), Row("C", "BRS", 4), Row("D", "BRS", 0)]
    result = InventorySync(ct, rules(), InventoryOptions(max_workers=3)).run(rows)

    assert ct.quantity("B", "wh-north") == 7
    assert ct.quantity("C", "wh-south") == 4
    assert ct.quantity("D", "wh-south") is None
    stats = result.stats
    assert (stats.created, stats.updated, stats.unchanged, stats.failed) == (1, 1, 2, 0)
    assert stats.write_requests == len(ct.writes()) == result.minimum_writes == 2
    # one page of channels, one page of entries, one page of products (the shop's SKUs)
    assert stats.read_requests == 3
    assert result.current.without_channel == 1
    created = next(e for e in ct.entries.values() if e["sku"] == "C")
    assert created["key"] == "C_wh-south"

    again = InventorySync(ct, rules()).run(rows)
    assert again.plan.changes == []
    assert again.stats.unchanged == 4


def test_a_conflict_is_re_read_and_converges() -> None:
    ct = _world()
    entry_id = ct.put("A", "wh-north", 5, reserved=1)
    bumped: list[str] = []

    def order_placed(entry: dict[str, Any]) -> None:
        # Another writer (a checkout) changes the entry between our read and our write.
        if entry["id"] == entry_id and not bumped:
            bumped.append(entry["id"])
            entry["version"] += 1
            entry["availableQuantity"] -= 1

    ct.before_update = order_placed
    result = InventorySync(ct, rules()).run([Row("A", "MAN", 8)])
    assert ct.quantity("A", "wh-north") == 8
    assert ct.entries[entry_id]["availableQuantity"] == 6  # its 2 reservations kept
    stats = result.stats
    assert (stats.updated, stats.conflicts, stats.failed) == (1, 1, 0)
    assert stats.write_requests == 2  # the stale write and the one with the fresh version


def test_a_conflict_where_the_target_is_already_in_place_converges_without_writing() -> None:
    ct = _world()
    entry_id = ct.put("A", "wh-north", 5)

    def someone_else_synced(entry: dict[str, Any]) -> None:
        if entry["id"] == entry_id and entry["version"] == 1:
            entry.update(version=2, quantityOnStock=8, availableQuantity=8)

    ct.before_update = someone_else_synced
    result = InventorySync(ct, rules()).run([Row("A", "MAN", 8)])
    stats = result.stats
    assert (stats.updated, stats.unchanged, stats.converged_on_reread) == (0, 1, 1)
    assert stats.write_requests == 1
    assert ct.entries[entry_id]["version"] == 2


def test_a_failed_entry_is_counted_and_the_others_still_sync() -> None:
    ct = _world()
    ct.put("A", "wh-north", 1)
    ct.put("B", "wh-north", 1)
    ct.fail[("A", "wh-north")] = BadRequestError(400, "bad", [{"code": "InvalidOperation"}])
    result = InventorySync(ct, rules()).run([Row("A", "MAN", 3), Row("B", "MAN", 3)])
    stats = result.stats
    assert (stats.updated, stats.failed) == (1, 1)
    failure = stats.failures[0]
    assert (failure.sku, failure.channel, failure.status, failure.codes) == (
        "A",
        "wh-north",
        400,
        ("InvalidOperation",),
    )
    assert stats.per_channel["wh-north"] == {"updated": 1, "failed": 1}


def test_a_create_that_meets_an_existing_entry_converges_on_it() -> None:
    ct = _world()
    real_create = ct.create

    def racing_create(resource: str, draft: dict[str, Any]) -> dict[str, Any]:
        # Someone creates the entry (with other stock) just before our create arrives.
        if ct.quantity(draft["sku"], "wh-north") is None:
            ct.put(draft["sku"], "wh-north", 1)
        return real_create(resource, draft)

    ct.create = racing_create  # type: ignore[method-assign]
    result = InventorySync(ct, rules()).run([Row("A", "MAN", 6)])
    assert ct.quantity("A", "wh-north") == 6
    assert result.stats.updated == 1
    assert result.stats.failed == 0


def test_a_delta_reads_only_the_skus_it_was_given() -> None:
    ct = _world()
    ct.put("A", "wh-north", 1)
    ct.put("B", "wh-north", 1)
    sync = InventorySync(ct, rules())
    result = sync.run([Row("A", "MAN", 3), Row("B", "MAN", 3)], skus={"A"}, channels={"wh-north"})
    assert ct.quantity("A", "wh-north") == 3
    assert ct.quantity("B", "wh-north") == 1
    assert result.mapping is None
    assert result.channels_in_scope == ["wh-north"]


def test_dry_run_plans_but_does_not_write() -> None:
    ct = _world()
    ct.put("A", "wh-north", 1)
    result = InventorySync(ct, rules(), InventoryOptions(dry_run=True)).run([Row("A", "MAN", 3)])
    assert len(result.plan.changes) == 1
    assert ct.writes() == []
    assert ct.quantity("A", "wh-north") == 1


def test_an_empty_erp_feed_is_refused_instead_of_zeroing_everything() -> None:
    ct = _world()
    ct.put("A", "wh-north", 5)
    with pytest.raises(InventorySyncRefused, match="ERP stock feed is empty"):
        InventorySync(ct, rules()).run([])
    assert ct.quantity("A", "wh-north") == 5


def test_a_channel_without_any_stock_feed_or_missing_in_commercetools_is_left_alone() -> None:
    ct = FakeCommercetools()
    ct.add_channel("wh-north")
    ct.add_channel("wh-south")
    ct.put("A", "wh-south", 5)
    r = rules(channels={
        "wh-north": {"sources": ["MAN"]},
        "wh-south": {"sources": ["BRS"]},
        "wh-west": {"sources": ["CDF"]},
    })  # fmt: skip
    result = InventorySync(ct, r).run([Row("A", "MAN", 2), Row("A", "CDF", 1)])
    assert ct.quantity("A", "wh-south") == 5  # BRS sent nothing: not zeroed
    assert result.channels_skipped == ["wh-south", "wh-west"]
    assert result.mapping is not None
    assert result.mapping.missing_channels == ["wh-west"]
    assert result.mapping.silent_locations == ["BRS"]


def test_entry_keys_follow_the_api_pattern() -> None:
    assert entry_key("wh-north", "TSHIRT-RED_M") == "TSHIRT-RED_M_wh-north"
    assert entry_key("wh-north", "MUG 350ml") is None
    assert entry_key("wh-north", "X" * 250) is None


def test_source_locations_of_a_delta() -> None:
    r = rules(channels={"web": {"sources": ["MAN", "BRS"]}, "store": {"sources": ["LDN"]}})
    assert source_locations(r, r.channels_fed_by(["BRS"])) == ["BRS", "MAN"]


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        InventoryOptions(max_workers=0)
