"""What happens in the Tryton back office between our flows, and what Tryton itself holds.

- ``ship_sale``: a warehouse ships a confirmed sale as Tryton's own client would: carrier,
  assign (only what the warehouse's storage holds: a sale it cannot cover is refused with
  ``NotInStock``, as Tryton's assign wizard would leave it waiting, rather than forced into
  negative stock), pick, a package with its tracking number, pack, done
  (``stock_package_shipping`` wants the carrier and the packages before ``pack``). The dispatch
  flow then reads the done shipment.
- ``shop_summary``: counts read back from Tryton's own models (sales orders, stock, customer
  shipments, posted journals), so a demo or an operator can compare them with what the flows
  report, without trusting our store.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ct_pipelines.erp.tryton.rpc import TrytonRpc


class NotInStock(ValueError):
    """The warehouse does not hold what the sale's shipment needs; nothing was changed."""


def _check_in_stock(rpc: TrytonRpc, shipment_id: int) -> None:
    (shipment,) = rpc.model(
        "stock.shipment.out",
        "read",
        [shipment_id],
        ["warehouse_storage", "inventory_moves", "outgoing_moves", "number"],
    )
    # Two-step warehouses (storage -> output -> customer) assign the inventory moves.
    move_ids = shipment["inventory_moves"] or shipment["outgoing_moves"]
    moves = rpc.model("stock.move", "read", move_ids, ["product", "quantity"])
    needed: dict[int, float] = {}
    for move in moves:
        needed[move["product"]] = needed.get(move["product"], 0.0) + float(move["quantity"])
    # What storage holds and no other shipment has been assigned yet.
    context = {
        "locations": [shipment["warehouse_storage"]],
        "with_childs": True,
        "stock_assign": True,
    }
    held = {
        row["id"]: float(row["quantity"] or 0)
        for row in rpc.search_read(
            "product.product", [("id", "in", list(needed))], ["quantity", "code"], context=context
        )
    }
    short = {product: qty for product, qty in needed.items() if held.get(product, 0.0) < qty}
    if short:
        raise NotInStock(
            f"shipment {shipment['number']}: storage holds too little of products {sorted(short)}"
        )


def ship_sale(rpc: TrytonRpc, reference: str, tracking: str) -> int:
    """Ship the whole sale with this reference in one package; the shipment id. Refuses with
    ``NotInStock`` (changing nothing) when the warehouse cannot cover it."""
    (sale,) = rpc.search_read("sale.sale", [("reference", "=", reference)], ["shipments"])
    (shipment_id,) = sale["shipments"]
    _check_in_stock(rpc, shipment_id)
    (carrier,) = rpc.search_read("carrier", [], ["id"], limit=1)
    rpc.model("stock.shipment.out", "write", [shipment_id], {"carrier": carrier["id"]})
    rpc.model("stock.shipment.out", "assign_try", [shipment_id])
    (assigned,) = rpc.model("stock.shipment.out", "read", [shipment_id], ["state"])
    if assigned["state"] != "assigned":
        raise NotInStock(f"shipment {shipment_id} stayed {assigned['state']} after assign_try")
    rpc.model("stock.shipment.out", "pick", [shipment_id])
    (shipment,) = rpc.model("stock.shipment.out", "read", [shipment_id], ["outgoing_moves"])
    (package_type,) = rpc.search_read("stock.package.type", [], ["id"], limit=1)
    packages = rpc.model(
        "stock.package",
        "create",
        [
            {
                "shipment": f"stock.shipment.out,{shipment_id}",
                "type": package_type["id"],
                "moves": [["add", shipment["outgoing_moves"]]],
            }
        ],
    )
    rpc.model("stock.package", "write", packages, {"shipping_reference": tracking})
    rpc.model("stock.shipment.out", "pack", [shipment_id])
    rpc.model("stock.shipment.out", "do", [shipment_id])
    return int(shipment_id)


@dataclass(frozen=True)
class ShopSummary:
    """Tryton's own counts; money as ``Decimal`` in the company currency."""

    sales_by_state: dict[str, int]
    sales_with_reference: int
    duplicate_references: int
    stock_rows: int
    stock_units: int
    done_moves: int
    shipments_done: int
    packages_with_tracking: int
    journals_posted: int
    journal_debit: Decimal
    journal_credit: Decimal


def _all(rpc: TrytonRpc, model: str, domain: list[Any], fields: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    last = 0
    while True:
        page = rpc.search_read(
            model, [*domain, ("id", ">", last)], fields, limit=1000, order=[("id", "ASC")]
        )
        rows.extend(page)
        if len(page) < 1000:
            return rows
        last = page[-1]["id"]


def shop_summary(rpc: TrytonRpc, journal_code: str = "SHOP") -> ShopSummary:
    sales = _all(rpc, "sale.sale", [], ["state", "reference"])
    by_state: dict[str, int] = {}
    for sale in sales:
        by_state[sale["state"]] = by_state.get(sale["state"], 0) + 1
    references = [s["reference"] for s in sales if s["reference"] and s["state"] != "cancelled"]
    warehouses = rpc.search_read("stock.location", [("type", "=", "warehouse")], ["id"])
    stock_rows = stock_units = 0
    for warehouse in warehouses:
        context = {"locations": [warehouse["id"]], "with_childs": True, "active_test": False}
        for row in rpc.search_read(
            "product.product", [("type", "=", "goods")], ["quantity"], context=context
        ):
            if row["quantity"]:
                stock_rows += 1
                stock_units += int(row["quantity"])
    done_moves = int(rpc.model("stock.move", "search_count", [("state", "=", "done")]))
    shipments = int(rpc.model("stock.shipment.out", "search_count", [("state", "=", "done")]))
    tracked = int(
        rpc.model(
            "stock.package",
            "search_count",
            [
                ("shipping_reference", "!=", None),
                ("shipment.state", "=", "done", "stock.shipment.out"),
            ],
        )
    )
    journal = rpc.search_read("account.journal", [("code", "=", journal_code)], ["id"])
    moves = (
        _all(
            rpc,
            "account.move",
            [("journal", "=", journal[0]["id"]), ("state", "=", "posted")],
            ["id"],
        )
        if journal
        else []
    )
    debit = credit = Decimal(0)
    if moves:
        for line in _all(
            rpc,
            "account.move.line",
            [("move", "in", [m["id"] for m in moves])],
            ["debit", "credit"],
        ):
            debit += Decimal(line["debit"])
            credit += Decimal(line["credit"])
    return ShopSummary(
        sales_by_state=dict(sorted(by_state.items())),
        sales_with_reference=len(references),
        duplicate_references=len(references) - len(set(references)),
        stock_rows=stock_rows,
        stock_units=stock_units,
        done_moves=done_moves,
        shipments_done=shipments,
        packages_with_tracking=tracked,
        journals_posted=len(moves),
        journal_debit=debit,
        journal_credit=credit,
    )
