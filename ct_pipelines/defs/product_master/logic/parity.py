"""Parity between the master and commercetools, for the product asset checks.

Compares what buyers and order imports see: by default the current (published) data of
commercetools products. Money is compared in integer minor units per price scope (currency,
country, channel), the unit the ERP books; high-precision prices are rounded half-even first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from ct_pipelines.defs.product_master.logic.master import MasterCatalog
from ct_pipelines.defs.product_master.logic.planner import CommercetoolsCatalog, variants_of
from ct_pipelines.kernel.money import MoneyError, to_minor_units

View = Literal["current", "staged"]


@dataclass(frozen=True, slots=True)
class PriceMismatch:
    sku: str
    scope: str  # CURRENCY/country/channel
    master_minor: int | None  # None: commercetools has a price the master does not
    commercetools_minor: int | None  # None: missing in commercetools


@dataclass(frozen=True, slots=True)
class TaxMismatch:
    product_key: str
    master: str | None
    commercetools: str | None


@dataclass(slots=True)
class ParityReport:
    view: View
    master_skus: int = 0
    commercetools_skus: int = 0
    missing_in_commercetools: list[str] = field(default_factory=list)
    missing_in_master: list[str] = field(default_factory=list)
    prices_compared: int = 0
    price_mismatches: list[PriceMismatch] = field(default_factory=list)
    products_compared: int = 0
    tax_mismatches: list[TaxMismatch] = field(default_factory=list)
    variants_without_price: list[str] = field(default_factory=list)
    duplicate_skus_master: list[str] = field(default_factory=list)
    duplicate_skus_commercetools: list[str] = field(default_factory=list)

    def price_mismatches_by_currency(self) -> dict[str, int]:
        counts = Counter(m.scope.split("/", 1)[0] for m in self.price_mismatches)
        return dict(sorted(counts.items()))


def _minor(money: dict) -> int | None:
    try:
        return to_minor_units(money)
    except MoneyError:
        return None


def compare(
    master: MasterCatalog, commercetools: CommercetoolsCatalog, view: View = "current"
) -> ParityReport:
    report = ParityReport(view=view, duplicate_skus_master=list(master.duplicate_skus))
    ct_variants: dict[str, tuple[str, dict]] = {}  # sku -> (product id, variant)
    sku_counts: Counter[str] = Counter()
    for product_id, doc in commercetools.products.items():
        for doc_variant in variants_of(doc["masterData"][view]):
            sku = doc_variant.get("sku")
            if not sku:
                continue
            sku_counts[sku] += 1
            ct_variants.setdefault(sku, (product_id, doc_variant))
            if not doc_variant.get("prices"):
                report.variants_without_price.append(sku)
    report.duplicate_skus_commercetools = sorted(s for s, n in sku_counts.items() if n > 1)
    report.commercetools_skus = len(ct_variants)

    master_skus: set[str] = set()
    for product in master.products:
        product_ids: set[str] = set()
        for variant in product.variants:
            master_skus.add(variant.sku)
            found = ct_variants.get(variant.sku)
            if found is None:
                if variant.active:
                    report.missing_in_commercetools.append(variant.sku)
                continue
            product_id, ct_variant = found
            product_ids.add(product_id)
            ct_prices: dict[str, int | None] = {}
            for price in ct_variant.get("prices") or []:
                label = commercetools.price_scope(price).label()
                ct_prices.setdefault(label, _minor(price["value"]))
            for price in variant.prices:
                report.prices_compared += 1
                label = price.scope.label()
                ct_minor = ct_prices.pop(label, None)
                if ct_minor != price.amount_minor:
                    report.price_mismatches.append(
                        PriceMismatch(variant.sku, label, price.amount_minor, ct_minor)
                    )
            for label, ct_minor in ct_prices.items():
                report.price_mismatches.append(PriceMismatch(variant.sku, label, None, ct_minor))
        for product_id in sorted(product_ids):
            report.products_compared += 1
            ct_tax = commercetools.tax_category_key(commercetools.products[product_id])
            if ct_tax != product.tax_category_key:
                report.tax_mismatches.append(
                    TaxMismatch(product.key, product.tax_category_key, ct_tax)
                )
    report.master_skus = len(master_skus)
    report.missing_in_master = sorted(set(ct_variants) - master_skus)
    report.missing_in_commercetools.sort()
    report.variants_without_price.sort()
    return report
