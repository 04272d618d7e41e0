"""Master-side edits against the sandbox world, for product-sync tests.

Requests are counted with ``ct_sandbox.testing.CountingTransport``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ct_sandbox import db


def set_erp_price(sandbox: Path, sku: str, currency: str, amount_minor: int) -> None:
    """The ERP changes an item's price (what a price list update does)."""
    conn = db.connect(sandbox / "world.db")
    with db.transaction(conn):
        changed = conn.execute(
            "UPDATE erp_item_prices SET amount_minor = ?, precise_amount = NULL "
            "WHERE currency = ? AND item_no = (SELECT item_no FROM erp_items WHERE sku = ?)",
            (amount_minor, currency, sku),
        ).rowcount
    assert changed == 1, f"no {currency} price for {sku}"


def set_erp_active(sandbox: Path, skus: list[str], active: bool) -> None:
    conn = db.connect(sandbox / "world.db")
    with db.transaction(conn):
        for sku in skus:
            conn.execute("UPDATE erp_items SET active = ? WHERE sku = ?", (int(active), sku))


def product_by_sku(world: Any, sku: str) -> dict[str, Any]:
    product = world.documents.get_by("products", "sku", sku)
    assert product is not None, sku
    return product


def variant(product: dict[str, Any], sku: str, view: str = "current") -> dict[str, Any]:
    data = product["masterData"][view]
    for candidate in [data["masterVariant"], *data["variants"]]:
        if candidate.get("sku") == sku:
            return candidate
    raise AssertionError(f"{sku} not in {view} data")


def price_minor(
    product: dict[str, Any], sku: str, currency: str = "GBP", view: str = "current"
) -> int:
    for price in variant(product, sku, view)["prices"]:
        if price["value"]["currencyCode"] == currency:
            return int(price["value"]["centAmount"])
    raise AssertionError(f"no {currency} price for {sku}")


def erp_skus_of_product(sandbox: Path, product_key: str) -> list[str]:
    conn = db.connect(sandbox / "world.db")
    rows = conn.execute(
        "SELECT sku FROM erp_items WHERE json_extract(attributes, '$.product_key') = ? ORDER BY sku",
        (product_key,),
    ).fetchall()
    return [r[0] for r in rows]
