"""The diff: only differences become writes; drift, oversell and mapping gaps are counted."""

from __future__ import annotations

from ct_pipelines.defs.inventory.logic import (
    Change,
    CtInventory,
    CtStock,
    compute_targets,
    index_entries,
    mapping_report,
    plan_changes,
)
from ct_pipelines_tests.defs.inventory.logic.fakes import Row, rules


def _current(entries: dict[tuple[str, str], tuple[int, int]]) -> CtInventory:
    """(sku, channel) -> (quantityOnStock, availableQuantity)."""
    return CtInventory(
        {
            key: CtStock(f"id-{key[0]}-{key[1]}", 3, on_stock, available)
            for key, (on_stock, available) in entries.items()
        }
    )


def test_only_differences_are_planned() -> None:
    r = rules()
    targets = compute_targets(
        [Row("A", "MAN", 5), Row("B", "MAN", 7), Row("C", "MAN", 4), Row("A", "BRS", 0)], r
    )
    current = _current({("A", "wh-north"): (5, 5), ("B", "wh-north"): (9, 8)})
    plan = plan_changes(targets, current, r)
    assert plan.changes == [
        Change("B", "wh-north", 7, "id-B-wh-north", 3, 9),
        Change("C", "wh-north", 4, None, None, None),
    ]
    assert (plan.updates, plan.creates, plan.unchanged) == (1, 1, 1)
    # Target 0 and no entry: nothing to write.
    assert plan.zero_without_entry == 1
    north = plan.per_channel["wh-north"]
    assert (north.compared, north.in_step, north.to_update, north.to_create) == (3, 1, 1, 1)
    assert north.absolute_drift == 2 + 4
    assert north.oversell_risk == 1  # B: 8 available in commercetools, 7 in the ERP
    assert plan.per_channel["wh-south"].compared == 1


def test_zero_targets_create_entries_when_the_rules_ask() -> None:
    r = rules(create_zero_entries=True)
    plan = plan_changes(compute_targets([Row("A", "MAN", 0)], r), _current({}), r)
    assert plan.changes == [Change("A", "wh-north", 0, None, None, None)]


def test_entries_without_erp_stock_in_the_channel_are_set_to_zero() -> None:
    r = rules()
    targets = compute_targets([Row("A", "BRS", 3)], r)
    current = _current(
        {
            ("A", "wh-north"): (4, 4),  # the ERP has A, but not at MAN
            ("GONE", "wh-north"): (2, 1),  # the ERP does not know GONE at all
            ("ZERO", "wh-north"): (0, 0),
            ("A", "wh-south"): (3, 3),
        }
    )
    plan = plan_changes(targets, current, r)
    assert sorted((c.sku, c.channel, c.target) for c in plan.changes) == [
        ("A", "wh-north", 0),
        ("GONE", "wh-north", 0),
    ]
    assert plan.commercetools_only == 2  # GONE and ZERO
    assert plan.unchanged == 2
    assert plan.per_channel["wh-north"].oversell_risk == 2


def test_scope_limits_the_plan_to_skus_and_channels() -> None:
    r = rules()
    rows = [Row("A", "MAN", 1), Row("B", "MAN", 2), Row("A", "BRS", 3)]
    current = _current({("B", "wh-north"): (0, 0), ("C", "wh-north"): (5, 5)})
    plan = plan_changes(compute_targets(rows, r, skus={"A"}), current, r, skus={"A"})
    assert [(c.sku, c.channel) for c in plan.changes] == [("A", "wh-north"), ("A", "wh-south")]
    plan = plan_changes(compute_targets(rows, r), current, r, channels={"wh-south"})
    assert [(c.sku, c.channel) for c in plan.changes] == [("A", "wh-south")]
    assert set(plan.per_channel) == {"wh-south"}


def test_index_entries_sorts_entries_by_channel_rule() -> None:
    r = rules(ignored_channels=["outlet"])
    channel_keys = {"c1": "wh-north", "c2": "store-x", "c3": "outlet"}
    docs = [
        {"id": "1", "version": 2, "sku": "A", "supplyChannel": {"id": "c1"}, "quantityOnStock": 3, "availableQuantity": 2},
        {"id": "2", "version": 1, "sku": "A", "supplyChannel": {"id": "c2"}, "quantityOnStock": 1, "availableQuantity": 1},
        {"id": "3", "version": 1, "sku": "A", "supplyChannel": {"id": "c3"}, "quantityOnStock": -1, "availableQuantity": -1},
        {"id": "4", "version": 1, "sku": "A", "supplyChannel": {"id": "gone"}, "quantityOnStock": 1, "availableQuantity": 1},
        {"id": "5", "version": 1, "sku": "A", "quantityOnStock": 9, "availableQuantity": 9},
    ]  # fmt: skip
    current = index_entries(docs, channel_keys, r)
    assert current.entries == {("A", "wh-north"): CtStock("1", 2, 3, 2)}
    assert current.unmapped_channels == {"store-x": 1}
    assert current.unknown_channel_ids == {"gone": 1}
    assert current.without_channel == 1
    assert current.negative == {"outlet": 1}


def test_mapping_report_names_every_gap() -> None:
    r = rules(ignored_locations=["QUARANTINE"])
    targets = compute_targets(
        [Row("A", "MAN", 1), Row("A", "RETURNS", 1), Row("A", "QUARANTINE", 1)], r
    )
    current = CtInventory({}, unmapped_channels={"store-x": 4}, unknown_channel_ids={"zz": 1})
    channels = {
        "wh-north": ["InventorySupply"],
        "store-y": ["InventorySupply", "ProductDistribution"],
        "web-uk": ["ProductDistribution"],
    }
    report = mapping_report(targets, current, r, channels)
    assert report.unmapped_locations == {"RETURNS": 1}
    assert report.unmapped_channels == ["store-x", "store-y"]
    assert report.missing_channels == ["wh-south"]
    assert report.silent_locations == ["BRS"]
    assert report.problems == 1 + 2 + 1 + 1
