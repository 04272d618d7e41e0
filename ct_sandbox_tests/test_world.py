"""The simulated clock, bulk orders, drift injection and sharing one world between processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ct_sandbox import DRIFT_KINDS, SandboxWorld
from ct_sandbox import db as sandbox_db
from ct_sandbox.seed import LOCATION_CHANNELS


@pytest.fixture
def world(sandbox_dir: Path) -> Iterator[SandboxWorld]:
    world = SandboxWorld.open(sandbox_dir)
    yield world
    world.close()


def _ts(moment: datetime) -> str:
    return sandbox_db.format_timestamp(moment)


def test_advance_moves_the_clock_and_trades(world: SandboxWorld) -> None:
    before = world.now()
    orders_before = world.documents.count("orders")
    happened = world.advance(240)
    assert world.now() >= before + timedelta(minutes=240)
    assert happened["order_ids"] and happened["stock_movement_ids"] and happened["shipment_numbers"]
    assert world.documents.count("orders") == orders_before + len(happened["order_ids"])
    for order_id in happened["order_ids"]:
        order = world.documents.get("orders", order_id)
        assert order is not None
        assert happened["from"] <= order["createdAt"] == order["lastModifiedAt"] <= happened["to"]
        for ref in order["paymentInfo"]["payments"]:
            assert world.documents.get("payments", ref["id"]) is not None
    conn = sandbox_db.connect(world.db_path)
    shipped = conn.execute(
        "SELECT s.shipped_at, o.status FROM erp_shipments AS s JOIN erp_sales_orders AS o "
        f"ON o.sales_order_no = s.sales_order_no WHERE s.shipment_number IN "
        f"({','.join('?' * len(happened['shipment_numbers']))})",
        happened["shipment_numbers"],
    ).fetchall()
    assert all(
        happened["from"] < at <= happened["to"] and status == "shipped" for at, status in shipped
    )
    # The next stretch starts where this one ended: nothing lands in already simulated time.
    later = world.advance(30)
    assert later["from"] >= happened["to"]


def test_advance_is_cheap_per_simulated_minute(world: SandboxWorld) -> None:
    import time

    started = time.process_time()
    world.advance(600)
    assert (time.process_time() - started) / 600 < 0.005


def test_bulk_orders_on_a_day_are_valid(world: SandboxWorld) -> None:
    day = date(2026, 3, 29)  # the clocks go forward in the UK: a 23-hour day
    ids = world.bulk_orders(1500, day)
    assert len(ids) == len(set(ids)) == 1500
    start = datetime.combine(day, datetime.min.time(), tzinfo=world.tz)
    window = (_ts(start), _ts(start + timedelta(days=1)))
    numbers = set()
    for order_id in ids[::50]:
        order = world.documents.get("orders", order_id)
        assert order is not None
        assert window[0] <= order["createdAt"] < window[1]
        taxed = order["taxedPrice"]
        assert (
            taxed["totalNet"]["centAmount"] + taxed["totalTax"]["centAmount"]
            == (order["totalPrice"]["centAmount"])
        )
        assert order["paymentState"] == "Paid" and "paymentInfo" not in order
        numbers.add(order["orderNumber"])
    assert len(numbers) == len(ids[::50])
    more = world.bulk_orders(10, with_payments=True, payment_kind=None)
    order = world.documents.get("orders", more[0])
    assert (
        order is not None
        and world.documents.get("payments", order["paymentInfo"]["payments"][0]["id"]) is not None
    )


def _price_mismatches(world: SandboxWorld) -> set[str]:
    conn = sandbox_db.connect(world.db_path)
    erp = dict(
        conn.execute(
            "SELECT i.sku, p.amount_minor FROM erp_item_prices AS p JOIN erp_items AS i "
            "ON i.item_no = p.item_no WHERE p.currency = 'GBP'"
        )
    )
    found = set()
    for product in world.documents.iter_all("products"):
        data = product["masterData"]["current"]
        for variant in [data["masterVariant"], *data["variants"]]:
            price = next(p for p in variant["prices"] if p["value"]["currencyCode"] == "GBP")
            if variant["sku"] in erp and erp[variant["sku"]] != price["value"]["centAmount"]:
                found.add(variant["sku"])
    return found


def _skus_missing_in_erp(world: SandboxWorld) -> set[str]:
    conn = sandbox_db.connect(world.db_path)
    erp = {row[0] for row in conn.execute("SELECT sku FROM erp_items WHERE sku IS NOT NULL")}
    ct = {
        v["sku"]
        for p in world.documents.iter_all("products")
        for v in [
            p["masterData"]["current"]["masterVariant"],
            *p["masterData"]["current"]["variants"],
        ]
    }
    return ct - erp


def _orders_with_tax_errors(world: SandboxWorld) -> set[str]:
    found = set()
    for order in world.documents.iter_all("orders"):
        if "taxedPrice" not in order:
            continue
        lines = [*order["lineItems"], *order["customLineItems"], order["shippingInfo"]]
        line_tax = sum(line["taxedPrice"]["totalTax"]["centAmount"] for line in lines)
        if line_tax != order["taxedPrice"]["totalTax"]["centAmount"]:
            found.add(order["id"])
    return found


def _shipped_in_erp_only(world: SandboxWorld) -> set[str]:
    conn = sandbox_db.connect(world.db_path)
    documents = {
        row[0] for row in conn.execute("SELECT external_document_number FROM erp_shipments")
    }
    return {
        o["id"]
        for o in world.documents.iter_all("orders")
        if (o.get("orderNumber") or o["id"]) in documents and o.get("shipmentState") != "Shipped"
    }


def _stock_mismatches(world: SandboxWorld) -> set[tuple[str, str]]:
    conn = sandbox_db.connect(world.db_path)
    erp = {
        (s, loc): a
        for s, loc, a in conn.execute("SELECT sku, location, on_hand - reserved FROM erp_stock")
    }
    channels = {c["id"]: c["key"] for c in world.documents.iter_all("channels")}
    location = {channel: code for code, channel in LOCATION_CHANNELS.items()}
    found = set()
    for entry in world.documents.iter_all("inventory"):
        key = (entry["sku"], location[channels[entry["supplyChannel"]["id"]]])
        if erp.get(key) != entry["availableQuantity"]:
            found.add(key)
    return found


CHECKS: dict[str, Any] = {
    "price_mismatch": (_price_mismatches, lambda r: set(r["skus"])),
    "sku_missing_in_erp": (_skus_missing_in_erp, lambda r: set(r["skus"])),
    "tax_rounding_error": (_orders_with_tax_errors, lambda r: set(r["order_ids"])),
    "failed_dispatch_update": (_shipped_in_erp_only, lambda r: set(r["order_ids"])),
    "stock_mismatch": (
        _stock_mismatches,
        lambda r: {(d["sku"], d["location"]) for d in r["details"]},
    ),
}


@pytest.mark.parametrize("kind", DRIFT_KINDS)
def test_each_drift_is_caught_exactly(world: SandboxWorld, kind: str) -> None:
    check, changed = CHECKS[kind]
    before = check(world)
    result = world.inject_drift(kind, count=2)
    after = check(world)
    assert result["kind"] == kind and len(result["details"]) == 2
    assert after - before == changed(result)
    assert before <= after


def test_drift_details_say_what_differs(world: SandboxWorld) -> None:
    price = world.inject_drift("price_mismatch", skus=["TSH-NAVY-M"])["details"][0]
    assert price["erp_amount_minor"] == 2500 != price["commercetools_amount_minor"]
    stock = world.inject_drift("stock_mismatch")["details"][0]
    entry = world.documents.get("inventory", stock["entry_id"])
    assert entry is not None and entry["availableQuantity"] == stock["commercetools_available"]
    assert stock["commercetools_available"] != stock["erp_available"]
    tax = world.inject_drift("tax_rounding_error")["details"][0]
    assert tax["order_tax_minor"] - tax["line_tax_minor"] == 1
    with pytest.raises(ValueError, match="unknown drift kind"):
        world.inject_drift("gremlins")


def test_price_drift_leaves_high_precision_prices_alone(world: SandboxWorld) -> None:
    result = world.inject_drift("price_mismatch", count=20)
    for sku in result["skus"]:
        product = world.documents.get_by("products", "sku", sku)
        assert product is not None
        data = product["masterData"]["current"]
        variant = next(v for v in [data["masterVariant"], *data["variants"]] if v["sku"] == sku)
        gbp = next(p for p in variant["prices"] if p["value"]["currencyCode"] == "GBP")
        assert gbp["value"]["type"] == "centPrecision"
    assert "SWT" not in {sku.split("-")[0] for sku in result["skus"]}


def test_another_process_sees_the_same_world(world: SandboxWorld) -> None:
    code = (
        "import sys, json; from ct_sandbox import SandboxWorld; "
        "w = SandboxWorld.open(sys.argv[1]); r = w.advance(120); w.close(); "
        "print(json.dumps(r['order_ids']))"
    )
    world.close()
    output = subprocess.run(
        [sys.executable, "-c", code, str(world.directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    import json

    created = json.loads(output.strip().splitlines()[-1])
    assert created
    assert all(world.documents.get("orders", order_id) for order_id in created)
    assert world.now() > datetime.now(world.now().tzinfo) + timedelta(minutes=119)
