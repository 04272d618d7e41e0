"""The systems at the ends of every flow, as external assets: what is read and what is written.

Dagster materialises none of these; they put commercetools and the ERP/WMS into the global
lineage, so each business process reads as one graph from the system it starts in to the
system it ends in:

- order to cash: commercetools orders -> order_batches -> erp_sales_orders -> ERP sales orders,
  which finance reconciles (finance_reconciliation);
- inventory: ERP stock -> inventory_sync -> commercetools inventory;
- product master: ERP items -> product_master -> commercetools_products -> commercetools products;
- dispatch: ERP shipments -> erp_shipments -> commercetools_deliveries -> commercetools deliveries;
- finance: commercetools orders and payments -> finance_* -> ERP journals.

A source is an upstream of the assets that read it (their decorators name the keys below). A
target depends on the asset that writes it (``deps=[writer]``), since an external asset cannot be
materialised. A write back into a system the flow also reads (``erp_sales_orders`` marking the
commercetools order exported, ``inventory_sync`` reading commercetools stock before it writes)
would be a cycle in the graph, so those edges are told in the descriptions instead.

This module imports nothing from the flows: their asset modules import the keys from here.
"""

import sys
import warnings

import dagster as dg

COMMERCETOOLS = "commercetools"
ERP = "erp"

ECOMMERCE_OPS = "team:ecommerce-ops"
FINANCE = "team:finance"
WAREHOUSE = "team:warehouse"
MERCHANDISING = "team:merchandising"

# Sources: read by the flows.
COMMERCETOOLS_ORDERS = dg.AssetKey([COMMERCETOOLS, "orders"])
COMMERCETOOLS_PAYMENTS = dg.AssetKey([COMMERCETOOLS, "payments"])
ERP_ITEMS = dg.AssetKey([ERP, "items"])
ERP_STOCK = dg.AssetKey([ERP, "stock"])
ERP_SHIPMENTS = dg.AssetKey([ERP, "shipments"])
# Targets: written by the flows.
ERP_SALES_ORDERS = dg.AssetKey([ERP, "sales_orders"])
ERP_JOURNALS = dg.AssetKey([ERP, "journals"])
COMMERCETOOLS_INVENTORY = dg.AssetKey([COMMERCETOOLS, "inventory"])
COMMERCETOOLS_PRODUCTS = dg.AssetKey([COMMERCETOOLS, "products"])
COMMERCETOOLS_DELIVERIES = dg.AssetKey([COMMERCETOOLS, "deliveries"])


def _system(
    system: str,
    key: dg.AssetKey,
    description: str,
    owners: list[str],
    deps: list[str] | None = None,
) -> dg.AssetSpec:
    # A spec has no function for with_source_code_references to point at: the reference is the
    # line below that declares it.
    caller = sys._getframe(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # code references are beta in 1.13
        references = dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(file_path=__file__, line_number=caller.f_lineno)
            ]
        )
    return dg.AssetSpec(
        key,
        description=description,
        group_name=system,
        kinds={system},
        owners=owners,
        deps=deps or [],
        tags={"ct/system": system},
        metadata={"dagster/code_references": references},
    )


def _commercetools(
    key: dg.AssetKey, description: str, owners: list[str], deps: list[str] | None = None
) -> dg.AssetSpec:
    return _system(COMMERCETOOLS, key, description, owners, deps)


def _erp(
    key: dg.AssetKey, description: str, owners: list[str], deps: list[str] | None = None
) -> dg.AssetSpec:
    return _system(ERP, key, description, owners, deps)


commercetools_orders = _commercetools(
    COMMERCETOOLS_ORDERS,
    "Orders placed in the commercetools storefront (Order API): line items, taxed prices, "
    "shipping, payment state. order_to_cash exports the eligible ones to the ERP and marks them "
    "exported (syncInfo on the export channel); finance totals them per shop day.",
    [ECOMMERCE_OPS],
)
commercetools_payments = _commercetools(
    COMMERCETOOLS_PAYMENTS,
    "Payments of the commercetools orders (Payment API) with their charge, refund and chargeback "
    "transactions; finance reads them per shop day.",
    [FINANCE],
)
commercetools_inventory = _commercetools(
    COMMERCETOOLS_INVENTORY,
    "Stock per SKU and supply channel in commercetools (InventoryEntry quantityOnStock), as "
    "inventory_sync writes it from the ERP/WMS; inventory_sync reads it first to write only what "
    "differs.",
    [WAREHOUSE],
    deps=["inventory_sync"],
)
commercetools_products = _commercetools(
    COMMERCETOOLS_PRODUCTS,
    "Products, variants, prices and tax categories in commercetools, as commercetools_products "
    "syndicates them from the product master.",
    [MERCHANDISING],
    deps=["commercetools_products"],
)
commercetools_deliveries = _commercetools(
    COMMERCETOOLS_DELIVERIES,
    "Deliveries, parcels with tracking, and shipmentState (Shipped, Partial) on the commercetools "
    "orders, as commercetools_deliveries records the ERP's shipments.",
    [WAREHOUSE],
    deps=["commercetools_deliveries"],
)

erp_items = _erp(
    ERP_ITEMS,
    "The ERP's item master (item number, SKU, VAT code, prices, active): the product master "
    "syndication reads it, and order_to_cash maps SKUs to item numbers with it.",
    [MERCHANDISING],
)
erp_stock = _erp(
    ERP_STOCK,
    "Stock on hand and reserved per SKU and location in the ERP/WMS; inventory_sync turns it "
    "into commercetools stock per supply channel.",
    [WAREHOUSE],
)
erp_shipments = _erp(
    ERP_SHIPMENTS,
    "Shipments the ERP/WMS dispatched (order, lines, carrier, tracking), read by erp_shipments "
    "after its cursor.",
    [WAREHOUSE],
)
erp_sales_orders = _erp(
    ERP_SALES_ORDERS,
    "Sales orders in the ERP, created once per eligible commercetools order by erp_sales_orders; "
    "finance reconciles them against commercetools.",
    [FINANCE, ECOMMERCE_OPS],
    deps=["erp_sales_orders"],
)
erp_journals = _erp(
    ERP_JOURNALS,
    "Journal batches in the ERP's general ledger, one per shop day and currency "
    "(fin-<day>-<currency>), posted by finance_journal_batches.",
    [FINANCE],
    deps=["finance_journal_batches"],
)

SOURCES = (commercetools_orders, commercetools_payments, erp_items, erp_stock, erp_shipments)
TARGETS = (
    erp_sales_orders,
    erp_journals,
    commercetools_inventory,
    commercetools_products,
    commercetools_deliveries,
)
