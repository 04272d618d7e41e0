"""Shipping a confirmed Tryton sale as a warehouse would: carrier, pick, a package with its
tracking number, pack, done (stock_package_shipping wants the carrier and packages before pack)."""

from __future__ import annotations

from typing import Any


def ship_sale(rpc: Any, reference: str, tracking: str) -> int:
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
