"""Each flow's happy path with commercetools on the npm mock and the ERP on the sandbox.

The resources are the production ones (``build_resources``): with every CTP_* variable set they
talk to the mock over HTTP as they would to a real project; the ERP side has no URL, so it stays
the local sandbox. The mock project starts empty and is seeded through its own endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.defs.inventory.assets import inventory_snapshots, inventory_sync
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.contract import seed
from ct_pipelines_tests.contract.conftest import MockProject

INVENTORY_CHANNELS = {
    "wh-manchester": ["InventorySupply", "Primary"],
    "wh-milton-keynes": ["InventorySupply"],
    "store-london": ["InventorySupply", "ProductDistribution"],
}


@pytest.fixture
def on_mock(
    ct_project: MockProject, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> MockProject:
    """commercetools = the mock project (live mode, over HTTP); ERP = a private sandbox copy."""
    for name, value in ct_project.env().items():
        monkeypatch.setenv(name, value)
    resources = build_resources()
    assert not resources["commercetools"].uses_sandbox
    assert resources["erp"].uses_sandbox
    return ct_project


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = result.asset_materializations_for_node(asset)
    assert events, f"{asset} did not materialise"
    return {k: v.value for k, v in events[-1].metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_inventory_sync_publishes_erp_stock_then_repairs_drift(on_mock: MockProject) -> None:
    for key, roles in INVENTORY_CHANNELS.items():
        seed.channel(on_mock, key, roles)
    # The sync never creates an entry for a SKU no product has, so the shop sells the ERP's SKUs.
    with build_resources()["erp"].open_port() as port:
        skus = sorted({level.sku for level in port.iter_stock()})
    product_type = seed.product_type(on_mock)
    for start in range(0, len(skus), 25):
        seed.product(on_mock, product_type["id"], skus[start : start + 25])

    first = dg.materialize([inventory_sync, inventory_snapshots], resources=build_resources())
    assert first.success
    sync = _metadata(first, "inventory_sync")
    assert sync["failed"] == 0
    assert sync["created"] > 0 and sync["updated"] == 0
    assert "commercetools project " + on_mock.key in sync["sources"]
    assert all(check.passed for check in _checks(first).values()), _checks(first)
    entries = on_mock.get("inventory", {"limit": 500, "where": "quantityOnStock > 0"})
    assert entries["total"] == sync["created"]

    # Someone edits one entry in the Merchant Center: the next run puts it back, and only it.
    entry = entries["results"][0]
    on_mock.post(
        f"inventory/{entry['id']}",
        {
            "version": entry["version"],
            "actions": [{"action": "changeQuantity", "quantity": entry["quantityOnStock"] + 7}],
        },
    )
    second = dg.materialize([inventory_sync, inventory_snapshots], resources=build_resources())
    assert second.success
    repaired = _metadata(second, "inventory_sync")
    assert (repaired["created"], repaired["updated"], repaired["failed"]) == (0, 1, 0)
    assert on_mock.get(f"inventory/{entry['id']}")["quantityOnStock"] == entry["quantityOnStock"]
    assert all(check.passed for check in _checks(second).values())


def _erp_items(count: int) -> list[Any]:
    """Active ERP items with a standard-rated tax code (the mock orders are taxed at 20%)."""
    with build_resources()["erp"].open_port() as port:
        items = [item for item in port.iter_items() if item.active and item.tax_code == "S"]
    assert len(items) >= count
    return items[:count]


def _order_days(orders: list[dict[str, Any]]) -> list[str]:
    from datetime import datetime

    from ct_pipelines.kernel.shop import SHOP

    return sorted(
        {
            datetime.fromisoformat(o["createdAt"].replace("Z", "+00:00"))
            .astimezone(SHOP.tz)
            .date()
            .isoformat()
            for o in orders
        }
    )


def _export_run(days: list[str]) -> list[dict[str, Any]]:
    """order_batches + erp_sales_orders for each day; the erp_sales_orders metadata per day."""
    from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders, order_batches

    exports = []
    for day in days:
        result = dg.materialize(
            [order_batches, erp_sales_orders],
            partition_key=day,
            resources=build_resources(),
            run_config={
                "ops": {"erp_sales_orders": {"config": {"workers": 2, "rate_per_second": 0.0}}}
            },
        )
        assert result.success
        batch = _metadata(result, "order_batches")
        assert batch["unreadable_orders"] == 0
        assert batch["unmappable_orders"] == 0
        exports.append(_metadata(result, "erp_sales_orders"))
    return exports


def _seed_shop(project: MockProject) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """Products for three ERP items, the export channel, a shipping method."""
    items = _erp_items(3)
    tax = seed.tax_category(project)
    kind = seed.product_type(project)
    for item in items:
        seed.product(project, kind["id"], [item.sku], key=item.item_no, tax_category_id=tax["id"])
    channel = seed.channel(project, "erp-order-export", ["OrderExport"])
    return items, channel, seed.shipping_method(project, tax["id"])


def test_order_to_cash_exports_paid_orders_once_and_marks_them_with_sync_info(
    on_mock: MockProject,
) -> None:
    items, channel, _ = _seed_shop(on_mock)
    paid = [
        seed.paid_order(on_mock, f"MOCK-{i:04d}", items[i % 3].sku, quantity=1 + i % 2)
        for i in range(12)
    ]
    pending = [
        seed.paid_order(on_mock, f"MOCK-P{i:03d}", items[0].sku, payment_state="Pending")
        for i in range(3)
    ]
    days = _order_days(paid + pending)

    first = _export_run(days)
    assert sum(e["orders_exported"] for e in first) == len(paid)
    assert sum(e["marked_in_commercetools"] for e in first) == len(paid)
    assert sum(e["write_back_failures"] for e in first) == 0

    with build_resources()["erp"].open_port() as port:
        for order in paid:
            found = port.find_sales_order(order["orderNumber"])
            assert found is not None, order["orderNumber"]
        assert port.find_sales_order(pending[0]["orderNumber"]) is None
    for order in paid:
        fresh = on_mock.get(f"orders/{order['id']}")
        (info,) = fresh["syncInfo"]
        assert info["channel"]["id"] == channel["id"]
        assert info["externalId"]
    for order in pending:
        assert on_mock.get(f"orders/{order['id']}")["syncInfo"] == []

    # Running the day again: nothing is sent twice, nothing is marked twice.
    again = _export_run(days)
    assert sum(e["orders_exported"] + e["orders_recovered"] for e in again) == 0
    assert sum(e["marked_in_commercetools"] for e in again) == 0
    assert all(len(on_mock.get(f"orders/{o['id']}")["syncInfo"]) == 1 for o in paid)


def test_dispatch_records_erp_shipments_as_deliveries_on_the_mock_orders(
    on_mock: MockProject, sandbox_dir: Path
) -> None:
    from datetime import UTC, datetime

    from ct_pipelines.defs.dispatch.assets import (
        SHIPMENTS_CURSOR,
        commercetools_deliveries,
        erp_shipments,
    )
    from ct_pipelines.defs.resources import sandbox_world
    from ct_sandbox import db as world_db
    from ct_sandbox.erp_app import record_shipment

    items, _, shipping = _seed_shop(on_mock)
    whole = seed.paid_order(on_mock, "SHIP-0001", items[0].sku, quantity=1, shipping=shipping)
    split = seed.paid_order(on_mock, "SHIP-0002", items[1].sku, quantity=3, shipping=shipping)
    assert sum(e["orders_exported"] for e in _export_run(_order_days([whole, split]))) == 2

    resources = build_resources()
    store = resources["store"].get_store()
    # The sandbox ERP holds the seed's shipments of orders the mock has never seen: start the
    # shipment cursor after them, as a first deployment would after a cut-over.
    cursor = None
    with resources["erp"].open_port() as port:
        while True:
            page = port.shipments_since(cursor, limit=500)
            cursor = page.next_cursor or cursor
            if not page.has_more or not page.shipments:
                break
        numbers = {
            ref: port.find_sales_order(ref).sales_order_no  # type: ignore[union-attr]
            for ref in ("SHIP-0001", "SHIP-0002")
        }
    if cursor is not None:
        store.set_cursor(SHIPMENTS_CURSOR, cursor)

    world = sandbox_world(sandbox_dir)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    conn = world_db.connect(world.db_path)
    with world_db.transaction(conn):
        record_shipment(
            conn, numbers["SHIP-0001"], "SHIP-0001", [{"sku": items[0].sku, "quantity": 1}],
            "DPD", ["TRK-1"], now,
        )  # fmt: skip
        record_shipment(
            conn, numbers["SHIP-0002"], "SHIP-0002", [{"sku": items[1].sku, "quantity": 1}],
            "DPD", ["TRK-2"], now,
        )  # fmt: skip

    first = dg.materialize([erp_shipments, commercetools_deliveries], resources=resources)
    assert first.success
    applied = _metadata(first, "commercetools_deliveries")
    assert applied["shipments_applied"] == 2 and applied["shipments_failed"] == 0, applied[
        "failures"
    ]
    shipped = on_mock.get(f"orders/{whole['id']}")
    partial = on_mock.get(f"orders/{split['id']}")
    assert shipped["shipmentState"] == "Shipped"
    assert partial["shipmentState"] == "Partial"
    (delivery,) = shipped["shippingInfo"]["deliveries"]
    assert [p["trackingData"]["trackingId"] for p in delivery["parcels"]] == ["TRK-1"]

    versions = {o["id"]: on_mock.get(f"orders/{o['id']}")["version"] for o in (whole, split)}
    second = dg.materialize([erp_shipments, commercetools_deliveries], resources=resources)
    assert second.success
    assert _metadata(second, "commercetools_deliveries")["dagster/row_count"] == 0
    assert {
        o["id"]: on_mock.get(f"orders/{o['id']}")["version"] for o in (whole, split)
    } == versions


def _text_attribute(name: str, kind: str = "text") -> dict[str, Any]:
    return {
        "name": name,
        "label": {"en-GB": name},
        "isRequired": False,
        "type": {"name": kind},
        "attributeConstraint": "None",
        "isSearchable": False,
        "inputHint": "SingleLine",
    }


def test_product_master_creates_products_then_has_nothing_to_do_then_reverts_an_edit(
    on_mock: MockProject,
) -> None:
    from ct_pipelines.defs.product_master.assets import commercetools_products, product_master
    from ct_pipelines.defs.product_master.resources import ProductCatalogResource

    for key, rate in (("standard", 0.2), ("reduced", 0.05), ("zero", 0)):
        on_mock.post(
            "tax-categories",
            {
                "key": key,
                "name": key,
                "rates": [
                    {"name": f"GB {key}", "amount": rate, "includedInPrice": True, "country": "GB"},
                    {"name": f"IE {key}", "amount": rate, "includedInPrice": True, "country": "IE"},
                ],
            },
        )
    seed.product_type(
        on_mock,
        "merchandise",
        attributes=[
            _text_attribute("colour"),
            _text_attribute("size"),
            _text_attribute("variant"),
            _text_attribute("discontinued", "boolean"),
        ],
    )

    def run() -> dict[str, Any]:
        result = dg.materialize(
            [product_master, commercetools_products],
            resources={
                **build_resources(),
                "product_catalog": ProductCatalogResource(product_type_key="merchandise"),
            },
        )
        assert result.success
        return _metadata(result, "commercetools_products")

    first = run()
    assert first["products_failed"] == 0, first
    assert first["products_created"] > 0
    assert "commercetools project " + on_mock.key in first["target"]
    products = on_mock.get("products", {"limit": 500})
    assert products["total"] == first["products_created"]
    assert all(p["masterData"]["published"] for p in products["results"])

    second = run()
    assert second["update_requests_planned"] == 0, second["actions_planned"]
    assert second["update_requests_sent"] == 0

    # A Merchant Center edit of a mastered field is reverted by the next sync.
    product = next(p for p in products["results"] if p["masterData"]["current"]["variants"])
    fresh = on_mock.get(f"products/{product['id']}")
    master_name = fresh["masterData"]["current"]["name"]["en-GB"]
    on_mock.post(
        f"products/{product['id']}",
        {
            "version": fresh["version"],
            "actions": [
                {"action": "changeName", "name": {"en-GB": "Edited by hand"}},
                {"action": "publish"},
            ],
        },
    )
    third = run()
    assert third["drift_detected"] >= 1 and third["drift_reverted"] >= 1
    assert third["products_failed"] == 0
    reverted = on_mock.get(f"products/{product['id']}")["masterData"]["current"]
    assert reverted["name"]["en-GB"] == master_name
