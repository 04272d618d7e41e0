"""The inventory guard: pure judgement of a plan (no I/O)."""

from __future__ import annotations

import pytest

from ct_pipelines.defs.inventory.logic import InventoryOptions, InventorySync, InventorySyncRefused
from ct_pipelines.defs.inventory.logic.guard import GuardLimits, product_skus
from ct_pipelines_tests.defs.inventory.logic.fakes import FakeCommercetools, Row, rules


def _world(*skus: str) -> FakeCommercetools:
    ct = FakeCommercetools()
    ct.add_channel("wh-north")
    ct.add_channel("wh-south")
    ct.sell(*skus)
    return ct


def test_product_skus_reads_current_and_staged_variants() -> None:
    docs = [
        {
            "masterData": {
                "current": {"masterVariant": {"sku": "A"}, "variants": [{"sku": "B"}, {}]},
                "staged": {"masterVariant": {"sku": "A"}, "variants": [{"sku": "C"}]},
            }
        },
        {"masterData": {"current": {"masterVariant": {}}}},
    ]
    assert product_skus(docs) == {"A", "B", "C"}


def test_an_entry_for_a_sku_no_product_has_is_never_created() -> None:
    ct = _world("A")
    result = InventorySync(ct, rules()).run([Row("A", "MAN", 3), Row("GHOST", "MAN", 9)])
    assert ct.quantity("A", "wh-north") == 3
    assert ct.quantity("GHOST", "wh-north") is None
    assert result.guard is not None
    assert (result.guard.unknown_sku_creates, result.guard.unknown_skus) == (1, ("GHOST",))
    assert result.stats.write_requests == 1


def test_a_delta_also_never_creates_an_unknown_sku() -> None:
    ct = _world("A")
    InventorySync(ct, rules()).run([Row("GHOST", "MAN", 9)], skus={"GHOST"})
    assert ct.writes() == []


def test_zeroing_more_than_the_share_of_a_channel_is_refused_before_any_write() -> None:
    ct = _world(*"ABCDE")
    for sku in "ABCDE":
        ct.put(sku, "wh-north", 10)
    rows = [Row("A", "MAN", 10), Row("B", "MAN", 10), Row("C", "MAN", 10), Row("D", "MAN", 10)]
    rows.append(Row("E", "BRS", 0))  # E: gone from MAN -> zeroed (1 of 5 = 20 %, allowed)
    result = InventorySync(ct, rules()).run(rows)
    assert result.guard is not None and not result.guard.refused
    assert ct.quantity("E", "wh-north") == 0

    ct2 = _world(*"ABCDE")
    for sku in "ABCDE":
        ct2.put(sku, "wh-north", 10)
    rows2 = [Row("A", "MAN", 10), Row("B", "MAN", 10), Row("C", "MAN", 10), Row("E", "BRS", 1)]
    with pytest.raises(InventorySyncRefused, match=r"channel wh-north: 2 of 5") as refused:
        InventorySync(ct2, rules()).run(rows2)  # D and E zeroed: 40 %
    assert ct2.writes() == []
    verdict = refused.value.verdict
    assert verdict is not None
    north = next(c for c in verdict.channels if c.channel == "wh-north")
    assert (north.entries_zeroed, north.units_removed, north.zeroed_skus) == (2, 20, ("D", "E"))


def test_removing_too_many_units_is_refused_even_without_zeroing() -> None:
    ct = _world("A", "B")
    ct.put("A", "wh-north", 100)
    ct.put("B", "wh-north", 100)
    with pytest.raises(InventorySyncRefused, match=r"60 of 200 units removed \(30.0 %\)"):
        InventorySync(ct, rules()).run([Row("A", "MAN", 40), Row("B", "MAN", 100)])
    assert ct.writes() == []


def test_a_feed_matching_too_few_shop_skus_is_refused_and_names_them() -> None:
    ct = _world("A", "B", "C", "D")
    with pytest.raises(InventorySyncRefused, match=r"matches 1 of 4 shop SKUs \(25.0 %") as raised:
        InventorySync(ct, rules()).run([Row("A", "MAN", 1), Row("X1", "MAN", 5)])
    verdict = raised.value.verdict
    assert verdict is not None and verdict.feed is not None
    assert verdict.feed.unmatched_skus == ("B", "C", "D")
    assert verdict.feed.feed_only_skus == 1
    assert ct.writes() == []


def test_limits_are_configurable_and_force_overrides() -> None:
    ct = _world("A", "B", "C", "D")
    loose = InventoryOptions(limits=GuardLimits(min_feed_match=0.2))
    InventorySync(ct, rules(), loose).run([Row("A", "MAN", 1)])
    assert ct.quantity("A", "wh-north") == 1

    ct.put("B", "wh-north", 50)
    forced = InventorySync(ct, rules(), InventoryOptions(force=True)).run([Row("A", "MAN", 1)])
    assert forced.forced and forced.guard is not None and forced.guard.refused
    assert ct.quantity("B", "wh-north") == 0
    with pytest.raises(ValueError, match="max_removal must be a share"):
        GuardLimits(max_removal=20)
