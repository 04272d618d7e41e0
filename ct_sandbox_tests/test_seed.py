"""Invariants of the seeded shop: what the pipelines and their checks rely on."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest

from ct_pipelines.erp.port import SalesOrderDraft
from ct_sandbox import SandboxWorld
from ct_sandbox import db as sandbox_db
from ct_sandbox.erp.schema import SalesOrderBody
from ct_sandbox.erp_app import sales_order_json, validate_sales_order
from ct_sandbox.seed import LOCATION_CHANNELS, build_catalogue


@pytest.fixture(scope="module")
def world(
    seeded_world_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxWorld]:
    directory = tmp_path_factory.mktemp("seed_invariants") / "sandbox"
    shutil.copytree(seeded_world_template, directory)
    world = SandboxWorld.open(directory)
    yield world
    world.close()


@pytest.fixture(scope="module")
def orders(world: SandboxWorld) -> list[dict[str, Any]]:
    return list(world.documents.iter_all("orders"))


@pytest.fixture(scope="module")
def products(world: SandboxWorld) -> list[dict[str, Any]]:
    return list(world.documents.iter_all("products"))


def _variants(product: dict[str, Any], data: str = "current") -> list[dict[str, Any]]:
    part = product["masterData"][data]
    return [part["masterVariant"], *part["variants"]]


def _cents(money: dict[str, Any]) -> int:
    assert money["type"] == "centPrecision" and money["fractionDigits"] == 2
    return money["centAmount"]


def _erp(world: SandboxWorld):
    return sandbox_db.connect(world.db_path)


def test_catalogue_size_and_unique_skus(products: list[dict[str, Any]]) -> None:
    skus = [v["sku"] for p in products for v in _variants(p)]
    assert len(products) >= 60
    assert len(skus) >= 200 and len(set(skus)) == len(skus)
    assert all(p["masterData"]["current"] == p["masterData"]["staged"] for p in products)
    assert all(p["masterData"]["published"] and "taxCategory" in p for p in products)
    sizes = {
        a["value"]
        for p in products
        for v in _variants(p)
        for a in v["attributes"]
        if a["name"] == "size"
    }
    assert {"S", "M", "L"} <= sizes
    assert len(build_catalogue()) == len(products)


def test_prices_gbp_eur_and_one_high_precision(products: list[dict[str, Any]]) -> None:
    prices = [price for p in products for v in _variants(p) for price in v["prices"]]
    currencies = Counter(price["value"]["currencyCode"] for price in prices)
    assert currencies["GBP"] == sum(len(_variants(p)) for p in products)
    assert currencies["EUR"] > 0
    precise = [price["value"] for price in prices if price["value"]["type"] == "highPrecision"]
    assert any(v["currencyCode"] == "GBP" for v in precise)
    for value in precise:
        assert value["fractionDigits"] == 4
        exact = Decimal(value["preciseAmount"]).scaleb(-4)
        assert value["centAmount"] == int(
            exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN).scaleb(2)
        )


def test_channels_and_tax_categories(world: SandboxWorld) -> None:
    channels = {c["key"]: c["roles"] for c in world.documents.iter_all("channels")}
    supply = [key for key, roles in channels.items() if "InventorySupply" in roles]
    assert set(LOCATION_CHANNELS.values()) <= set(supply) and len(supply) >= 3
    assert "OrderExport" in channels["erp-order-export"]
    taxes = {t["key"]: t for t in world.documents.iter_all("tax-categories")}
    gb = {key: next(r for r in t["rates"] if r["country"] == "GB") for key, t in taxes.items()}
    assert {k: Decimal(str(r["amount"])) for k, r in gb.items()} == {
        "standard": Decimal("0.2"),
        "reduced": Decimal("0.05"),
        "zero": Decimal("0"),
    }
    assert all(r["includedInPrice"] for r in gb.values())


def test_taxes_add_up_to_the_penny_in_every_order(orders: list[dict[str, Any]]) -> None:
    taxed_orders = [o for o in orders if "taxedPrice" in o]
    assert len(taxed_orders) >= len(orders) - 1
    for order in taxed_orders:
        lines = [*order["lineItems"], *order["customLineItems"], order["shippingInfo"]]
        total_gross = total_tax = 0
        per_rate: Counter[Decimal] = Counter()
        for line in lines:
            taxed = line["taxedPrice"]
            gross, net = _cents(taxed["totalGross"]), _cents(taxed["totalNet"])
            tax = _cents(taxed["totalTax"])
            rate = Decimal(str(line["taxRate"]["amount"]))
            assert net + tax == gross
            assert net == int((Decimal(gross) / (1 + rate)).quantize(Decimal(1), ROUND_HALF_EVEN))
            assert gross == _cents(line.get("totalPrice") or line["price"])
            total_gross += gross
            total_tax += tax
            per_rate[rate] += tax
        taxed = order["taxedPrice"]
        assert _cents(order["totalPrice"]) == _cents(taxed["totalGross"]) == total_gross
        assert _cents(taxed["totalTax"]) == total_tax
        assert _cents(taxed["totalNet"]) + total_tax == total_gross
        portions = {Decimal(str(p["rate"])): _cents(p["amount"]) for p in taxed["taxPortions"]}
        assert portions == dict(per_rate)


def test_line_totals_follow_price_quantity_and_discounts(orders: list[dict[str, Any]]) -> None:
    discounted = 0
    for line in (line for o in orders for line in o["lineItems"]):
        value = line["price"]["value"]
        if line["discountedPricePerQuantity"]:
            discounted += 1
            unit = _cents(line["discountedPricePerQuantity"][0]["discountedPrice"]["value"])
            assert _cents(line["totalPrice"]) == unit * line["quantity"]
        elif value["type"] == "highPrecision":
            exact = Decimal(value["preciseAmount"] * line["quantity"]).scaleb(-2)
            assert _cents(line["totalPrice"]) == int(exact.quantize(Decimal(1), ROUND_HALF_EVEN))
        else:
            assert _cents(line["totalPrice"]) == _cents(value) * line["quantity"]
    assert discounted > 0


def test_payments_cover_every_state_the_flows_meet(
    world: SandboxWorld, orders: list[dict[str, Any]]
) -> None:
    payments = {p["id"]: p for p in world.documents.iter_all("payments")}
    shapes: Counter[tuple[tuple[str, str], ...]] = Counter()
    for order in orders:
        refs = order["paymentInfo"]["payments"]
        assert all(ref["id"] in payments for ref in refs)
        for ref in refs:
            transactions = payments[ref["id"]]["transactions"]
            shapes[tuple(sorted((t["type"], t["state"]) for t in transactions))] += 1
            assert _cents(payments[ref["id"]]["amountPlanned"]) == _cents(order["totalPrice"])
    assert shapes[(("Authorization", "Success"),)] > 0  # authorised only
    assert shapes[(("Authorization", "Success"), ("Charge", "Success"))] > 0  # paid
    assert shapes[(("Authorization", "Pending"),)] > 0
    assert shapes[(("Authorization", "Failure"),)] > 0
    assert any(("Refund", "Success") in shape for shape in shapes)
    states = Counter(o["orderState"] for o in orders)
    assert states["Cancelled"] > 0 and states["Confirmed"] > 0


def test_optional_fields_are_missing_on_some_orders(
    world: SandboxWorld, orders: list[dict[str, Any]]
) -> None:
    edge = world.edge_cases()
    without_number = [o["id"] for o in orders if "orderNumber" not in o]
    assert sorted(without_number) == edge["orders_without_order_number"]
    assert [o["id"] for o in orders if "taxedPrice" not in o] == [edge["order_without_taxed_price"]]
    assert any("shipmentState" not in o for o in orders)
    assert any("customerId" not in o for o in orders)
    long = next(o for o in orders if o["id"] == edge["order_with_long_order_number"])
    assert len(long["orderNumber"]) > 35
    custom = [c for o in orders for c in o["customLineItems"]]
    assert {c["slug"] for c in custom} == {"gift-wrap", "engraving"}
    assert all("sku" not in c and "variant" not in c for c in custom)


def test_history_spans_seven_days(world: SandboxWorld, orders: list[dict[str, Any]]) -> None:
    created = sorted(o["createdAt"] for o in orders)
    assert len(orders) == 300
    now = sandbox_db.format_timestamp(world.now())
    assert created[-1] < now
    days = {c[:10] for c in created}
    assert len(days) >= 7


def test_erp_mirrors_the_catalogue(world: SandboxWorld, products: list[dict[str, Any]]) -> None:
    conn = _erp(world)
    erp_items = {
        sku: (code, active)
        for sku, code, active in conn.execute(
            "SELECT sku, tax_code, active FROM erp_items WHERE item_type = 'inventory'"
        )
    }
    ct_skus = {v["sku"] for p in products for v in _variants(p)}
    assert set(erp_items) == ct_skus
    assert {code for code, _ in erp_items.values()} == {"S", "R", "Z"}
    assert (
        sorted(s for s, (_, active) in erp_items.items() if not active)
        == world.edge_cases()["blocked_skus"]
    )
    gbp = dict(
        conn.execute(
            "SELECT i.sku, p.amount_minor FROM erp_item_prices AS p JOIN erp_items AS i "
            "ON i.item_no = p.item_no WHERE p.currency = 'GBP'"
        )
    )
    for product in products:
        for variant in _variants(product):
            price = next(p for p in variant["prices"] if p["value"]["currencyCode"] == "GBP")
            assert gbp[variant["sku"]] == price["value"]["centAmount"]


def test_commercetools_inventory_matches_erp_stock(world: SandboxWorld) -> None:
    channels = {c["id"]: c["key"] for c in world.documents.iter_all("channels")}
    location = {channel: code for code, channel in LOCATION_CHANNELS.items()}
    erp = {
        (sku, loc): avail
        for sku, loc, avail in _erp(world).execute(
            "SELECT sku, location, on_hand - reserved FROM erp_stock"
        )
    }
    ct = {}
    for entry in world.documents.iter_all("inventory"):
        key = (entry["sku"], location[channels[entry["supplyChannel"]["id"]]])
        ct[key] = entry["availableQuantity"]
        assert entry["quantityOnStock"] >= entry["availableQuantity"] >= 0
    assert ct == erp and len(ct) >= 600


def test_part_of_the_history_is_in_the_erp_and_shipped(
    world: SandboxWorld, orders: list[dict[str, Any]]
) -> None:
    conn = _erp(world)
    numbers = [row[0] for row in conn.execute("SELECT sales_order_no FROM erp_sales_orders")]
    assert 100 <= len(numbers) < len(orders)
    for number in numbers:
        order = sales_order_json(conn, number)
        assert order is not None
        draft = SalesOrderBody.model_validate(order)
        assert validate_sales_order(conn, draft, draft.external_document_number) == []
        # The seed builds its ERP documents itself; the pipelines' model must read them too.
        SalesOrderDraft.model_validate(order)
    synced = {o.get("orderNumber") or o["id"]: o for o in orders if o["syncInfo"]}
    assert len(synced) == len(numbers)
    shipments = dict(
        conn.execute("SELECT external_document_number, shipment_number FROM erp_shipments")
    )
    assert shipments and set(shipments) <= set(synced)
    in_ct = [d for d in shipments if synced[d].get("shipmentState") == "Shipped"]
    assert 0 < len(in_ct) < len(shipments)  # most dispatches synced, the latest still to do
    for document in in_ct:
        delivery = synced[document]["shippingInfo"]["deliveries"][0]
        assert delivery["key"] == f"shipment-{shipments[document]}"
        assert delivery["parcels"][0]["trackingData"]["trackingId"]


def test_opening_again_reuses_the_world(world: SandboxWorld) -> None:
    before = world.status()
    again = SandboxWorld.open(world.directory)
    assert again.status()["seeded_at"] == before["seeded_at"]
    assert again.status()["commercetools"] == before["commercetools"]


@pytest.mark.parametrize("hour", [0, 1, 9, 23])
def test_the_planted_orders_are_in_the_demo_window_whatever_the_hour_of_seeding(
    hour: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The history is laid out back from the clock; the planted orders still land in the last
    seven shop days (the demo's window) and are old enough to be reported."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/London")
    now = datetime(2026, 3, 10, hour, 20, tzinfo=tz).astimezone(UTC)
    monkeypatch.setattr(sandbox_db, "sandbox_now", lambda path: now)
    world = SandboxWorld.open(tmp_path / "sandbox", orders=60, timezone=tz, planted=True)
    try:
        edge = world.edge_cases()
        planted = [
            edge["order_with_long_order_number"],
            edge["order_without_taxed_price"],
            *edge["orders_without_order_number"],
        ]
        window_start = datetime(2026, 3, 4, tzinfo=tz)
        for order_id in planted:
            order = world.documents.get("orders", order_id)
            assert order is not None
            created = datetime.fromisoformat(order["createdAt"])
            assert window_start <= created < now - timedelta(hours=3), (order_id, created)
        numbers = [f["subjects"][0] for f in world.planted_findings()[:3:2]]
        assert numbers[0].startswith("MARKETPLACE-") and numbers[1].startswith("UK-")
    finally:
        world.close()
