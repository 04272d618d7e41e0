"""The first assets materialise real data from the sandbox, with useful metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from ct_pipelines.defs.inventory.assets import inventory_snapshots
from ct_pipelines.defs.order_to_cash.assets import order_batches
from ct_pipelines.defs.product_master.assets import product_master
from ct_pipelines.defs.resources import build_resources
from ct_pipelines.kernel.shop import SHOP


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    events = result.asset_materializations_for_node(asset)
    assert events, f"{asset} did not materialise"
    return events[-1].metadata


def test_product_master_and_inventory_snapshots_from_the_sandbox(sandbox_dir: Path) -> None:
    resources = build_resources()
    result = dg.materialize([product_master, inventory_snapshots], resources=resources)
    assert result.success

    products = _metadata(result, "product_master")
    assert products["dagster/row_count"].value >= 200
    columns = {c.name for c in products["dagster/column_schema"].schema.columns}
    assert {"sku", "item_no", "tax_code", "active", "prices"} <= columns
    assert "| sku" in products["preview"].value

    stock = _metadata(result, "inventory_snapshots")
    assert stock["erp_rows"].value > 0
    assert stock["commercetools_rows"].value > 0
    assert stock["commercetools_channels"].value >= 3

    store = resources["store"].get_store()
    snapshot = store.read_snapshot("inventory_snapshots")
    assert len(snapshot) == stock["dagster/row_count"].value
    assert set(snapshot["system"]) == {"erp", "commercetools"}


def test_order_batches_backfills_a_week_in_one_run_and_reruns_safely(sandbox_dir: Path) -> None:
    resources = build_resources()
    today = datetime.now(UTC).astimezone(SHOP.tz).date()
    start, end = (today - timedelta(days=6)).isoformat(), today.isoformat()
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}

    first = dg.materialize([order_batches], resources=resources, tags=tags)
    assert first.success
    meta = _metadata(first, "order_batches")
    assert meta["partitions"].value == 7
    totals = meta["run_totals"].value
    total = totals["row_count"]
    assert total > 0
    assert totals["eligible_orders"] > 0
    assert totals["ineligible_orders"] > 0  # pending and failed payments are in the seed
    events = first.asset_materializations_for_node("order_batches")
    assert sum(e.metadata["dagster/row_count"].value for e in events) == total

    store = resources["store"].get_store()
    days = [(today - timedelta(days=i)).isoformat() for i in range(7)]
    per_day = {day: store.read_snapshot("order_batches", partition_key=day) for day in days}
    assert sum(len(frame) for frame in per_day.values()) == total
    for day, frame in per_day.items():
        assert (frame["order_date"] == day).all()
        assert frame["external_document_number"].is_unique

    # Re-running is safe: the same days are replaced, not appended.
    again = dg.materialize([order_batches], resources=resources, tags=tags)
    assert again.success
    assert sum(len(store.read_snapshot("order_batches", partition_key=d)) for d in days) == total
