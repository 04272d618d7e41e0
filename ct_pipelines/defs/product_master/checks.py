"""Parity checks between the product master and commercetools.

One read of both systems feeds five checks: SKU parity both ways, price parity to the minor
unit per currency, country and channel, tax category parity, variants without a price and
duplicate SKUs. They read the systems afresh, so they also catch drift between syncs.
"""

from collections.abc import Iterator

import dagster as dg

from ct_pipelines.defs.metadata import check_text
from ct_pipelines.defs.product_master import assets as product_assets
from ct_pipelines.defs.product_master.logic.master import build_catalog
from ct_pipelines.defs.product_master.logic.parity import ParityReport, compare
from ct_pipelines.defs.product_master.logic.sync import read_commercetools
from ct_pipelines.defs.product_master.resources import ProductCatalogResource
from ct_pipelines.defs.resources import CommercetoolsResource, ErpResource
from ct_pipelines.kernel.money import display_money

SKU_PARITY = "sku_parity"
PRICE_PARITY = "price_parity"
TAX_CATEGORY_PARITY = "tax_category_parity"
VARIANTS_WITHOUT_PRICE = "variants_without_price"
DUPLICATE_SKUS = "duplicate_skus"
SAMPLE = 20

_ASSET = product_assets.commercetools_products.key
_ERROR = dg.AssetCheckSeverity.ERROR
_WARN = dg.AssetCheckSeverity.WARN


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=_ASSET, description=description)


def _first(values: list[str], n: int = 5) -> str:
    return ", ".join(str(v) for v in values[:n]) + (" …" if len(values) > n else "")


def _price(minor: int | None, scope: str) -> str:
    """A price as people read it, beside its minor units; ``none`` when the side has none."""
    if minor is None:
        return "none"
    return f"{display_money(minor, scope.split('/')[0])} ({minor} minor units)"


def parity_results(report: ParityReport) -> Iterator[dg.AssetCheckResult]:
    """The five check results of one parity report (also used by tests and the bench)."""
    missing_ct, missing_master = report.missing_in_commercetools, report.missing_in_master
    yield dg.AssetCheckResult(
        asset_key=_ASSET,
        check_name=SKU_PARITY,
        # A SKU only commercetools sells cannot be imported as a sales order line.
        passed=not missing_ct and not missing_master,
        severity=_ERROR,
        description=check_text(
            SKU_PARITY,
            not missing_ct and not missing_master,
            f"all {report.master_skus} master SKUs are in commercetools and no other",
            f"{len(missing_ct)} master SKUs are missing in commercetools"
            + (f" ({_first(missing_ct)})" if missing_ct else "")
            + f", {len(missing_master)} commercetools SKUs are not in the master"
            + (f" ({_first(missing_master)})" if missing_master else ""),
            "missing in commercetools: run product_master_sync_job and look at the product "
            "master exceptions; extra in commercetools: retire it there or add it to the master",
        ),
        metadata={
            "view": report.view,
            "master_skus": report.master_skus,
            "commercetools_skus": report.commercetools_skus,
            "missing_in_commercetools": len(missing_ct),
            "missing_in_master": len(missing_master),
            "sample_missing_in_commercetools": dg.MetadataValue.json(missing_ct[:SAMPLE]),
            "sample_missing_in_master": dg.MetadataValue.json(missing_master[:SAMPLE]),
        },
    )
    mismatches = report.price_mismatches
    yield dg.AssetCheckResult(
        asset_key=_ASSET,
        check_name=PRICE_PARITY,
        passed=not mismatches,
        severity=_ERROR,
        description=check_text(
            PRICE_PARITY,
            not mismatches,
            f"all {report.prices_compared} prices agree to the minor unit",
            f"{len(mismatches)} prices differ between the master and commercetools (first: "
            + "; ".join(
                f"{m.sku} {m.scope} master {_price(m.master_minor, m.scope)}, commercetools "
                f"{_price(m.commercetools_minor, m.scope)}"
                for m in mismatches[:3]
            )
            + ")",
            "correct the price in the master (never only in commercetools: the next sync "
            "overwrites it), then run product_master_sync_job",
        ),
        metadata={
            "prices_compared": report.prices_compared,
            "mismatches": len(mismatches),
            "mismatches_by_currency": dg.MetadataValue.json(report.price_mismatches_by_currency()),
            "sample": dg.MetadataValue.json(
                [
                    {
                        "sku": m.sku,
                        "scope": m.scope,
                        "master_minor": m.master_minor,
                        "commercetools_minor": m.commercetools_minor,
                        "master": _price(m.master_minor, m.scope),
                        "commercetools": _price(m.commercetools_minor, m.scope),
                    }
                    for m in mismatches[:SAMPLE]
                ]
            ),
        },
    )
    taxes = report.tax_mismatches
    yield dg.AssetCheckResult(
        asset_key=_ASSET,
        check_name=TAX_CATEGORY_PARITY,
        # A wrong tax category makes the ERP journal disagree with the order's tax.
        passed=not taxes,
        severity=_ERROR,
        description=check_text(
            TAX_CATEGORY_PARITY,
            not taxes,
            f"all {report.products_compared} products have the master's tax category",
            f"{len(taxes)} products have another tax category in commercetools than the "
            "master's tax code (first: "
            + "; ".join(
                f"{t.product_key} master {t.master}, commercetools {t.commercetools}"
                for t in taxes[:3]
            )
            + ")",
            "finance confirms the right tax code in the master, then run product_master_sync_job",
        ),
        metadata={
            "products_compared": report.products_compared,
            "mismatches": len(taxes),
            "sample": dg.MetadataValue.json(
                [
                    {"product": t.product_key, "master": t.master, "commercetools": t.commercetools}
                    for t in taxes[:SAMPLE]
                ]
            ),
        },
    )
    unpriced = report.variants_without_price
    yield dg.AssetCheckResult(
        asset_key=_ASSET,
        check_name=VARIANTS_WITHOUT_PRICE,
        passed=not unpriced,
        severity=_WARN,
        description=check_text(
            VARIANTS_WITHOUT_PRICE,
            not unpriced,
            "every commercetools variant has a price",
            f"{len(unpriced)} commercetools variants have no price and cannot be bought "
            f"({_first([str(u) for u in unpriced])})",
            "add their prices in the master, or retire the variants",
        ),
        metadata={
            "variants_without_price": len(unpriced),
            "sample": dg.MetadataValue.json(unpriced[:SAMPLE]),
        },
    )
    dup_master, dup_ct = report.duplicate_skus_master, report.duplicate_skus_commercetools
    yield dg.AssetCheckResult(
        asset_key=_ASSET,
        check_name=DUPLICATE_SKUS,
        passed=not dup_master and not dup_ct,
        severity=_ERROR,
        description=check_text(
            DUPLICATE_SKUS,
            not dup_master and not dup_ct,
            "no SKU appears twice",
            f"{len(dup_master)} SKUs appear twice in the master"
            + (f" ({_first([str(d) for d in dup_master])})" if dup_master else "")
            + f", {len(dup_ct)} twice in commercetools"
            + (f" ({_first([str(d) for d in dup_ct])})" if dup_ct else ""),
            "the product team removes the duplicate at its source; until then orders for it "
            "may be parked as exceptions",
        ),
        metadata={
            "duplicates_in_master": len(dup_master),
            "duplicates_in_commercetools": len(dup_ct),
            "sample_master": dg.MetadataValue.json(dup_master[:SAMPLE]),
            "sample_commercetools": dg.MetadataValue.json(dup_ct[:SAMPLE]),
        },
    )


@dg.multi_asset_check(
    specs=[
        _spec(
            SKU_PARITY,
            "Every active master SKU is in commercetools, and commercetools sells no SKU the "
            "master lacks (such a SKU cannot become an ERP sales order line).",
        ),
        _spec(
            PRICE_PARITY,
            "Every price agrees between the master and commercetools to the minor unit, per "
            "currency, country and channel: the shop sells at the master's price.",
        ),
        _spec(
            TAX_CATEGORY_PARITY,
            "Each product's commercetools tax category matches the master's tax code, so its "
            "orders are taxed as the ERP books them.",
        ),
        _spec(
            VARIANTS_WITHOUT_PRICE,
            "No commercetools variant is without a price (a variant without one cannot be bought).",
        ),
        _spec(
            DUPLICATE_SKUS,
            "No SKU appears twice in the master or in commercetools (its orders and stock would "
            "be ambiguous).",
        ),
    ],
    name="product_parity",
)
def product_parity(
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    product_catalog: ProductCatalogResource,
) -> Iterator[dg.AssetCheckResult]:
    with erp.open_port() as port:
        master = build_catalog(port.iter_items(), product_catalog.rules())
    with commercetools.open_client() as client:
        catalog = read_commercetools(client)
    yield from parity_results(compare(master, catalog, product_catalog.parity_view))
