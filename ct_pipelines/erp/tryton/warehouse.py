"""What happens in the Tryton back office between our flows, and what Tryton itself holds.

- ``ship_sale``: a warehouse ships a confirmed sale as Tryton's own client would: carrier, pick,
  a package with its tracking number, pack, done (``stock_package_shipping`` wants the carrier
  and the packages before ``pack``). The dispatch flow then reads the done shipment.
- ``shop_summary``: counts read back from Tryton's own models (sales orders, stock, customer
  shipments, posted journals), so a demo or an operator can compare them with what the flows
  report, without trusting our store.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ct_pipelines.erp.tryton.rpc import TrytonRpc


def ship_sale(rpc: TrytonRpc, reference: str, tracking: str) -> int:
    """Ship the whole sale with this reference in one package; the shipment id."""
    (sale,) = rpc.search_read("sale.sale", [("reference", "=", reference)], ["shipments"])
    (shipment_id,) = sale["shipments"]
    (carrier,) = rpc.search_read("carrier", [], ["id"], limit=1)
    rpc.model("stock.shipment.out", "write", [shipment_id], {"carrier": carrier["id"]})
    rpc.model("stock.shipment.out", "assign_force", [shipment_id])
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
