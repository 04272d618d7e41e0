"""Master items and commercetools product JSON for the product-sync tests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ct_pipelines.defs.product_master.logic.planner import CommercetoolsCatalog
from ct_pipelines.erp.port import ErpItem, ErpPrice

CHANNELS = {"ch-web": "web-uk", "ch-store": "store-london"}
TAX_CATEGORIES = {"tc-std": "standard", "tc-red": "reduced", "tc-zero": "zero"}
PRODUCT_TYPE = {"typeId": "product-type", "id": "pt-1"}
UPDATED = datetime(2025, 1, 1, tzinfo=UTC)


def gbp(amount_minor: int, **kwargs: Any) -> ErpPrice:
    return ErpPrice(
        currency="GBP", amount_minor=amount_minor, fraction_digits=2, country="GB", **kwargs
    )


def item(
    sku: str,
    *,
    product: str | None = None,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    prices: list[ErpPrice] | None = None,
    tax_code: str = "S",
    active: bool = True,
) -> ErpItem:
    attrs = dict(attributes or {})
    if product:
        attrs["product_key"] = product
    attrs.setdefault("category", "Clothing")
    return ErpItem(
        item_no=f"I-{sku}",
        sku=sku,
        name=name or sku,
        attributes=attrs,
        prices=prices if prices is not None else [gbp(1999)],
        tax_code=tax_code,
        active=active,
        updated_at=UPDATED,
    )


def ct_money(amount_minor: int, currency: str = "GBP") -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": currency,
        "centAmount": amount_minor,
        "fractionDigits": 2,
    }


def ct_price(
    price_id: str, money: dict[str, Any], *, country: str | None = "GB", channel: str | None = None
) -> dict[str, Any]:
    price: dict[str, Any] = {"id": price_id, "value": money}
    if country:
        price["country"] = country
    if channel:
        price["channel"] = {"typeId": "channel", "id": channel}
    return price


def ct_variant(
    variant_id: int,
    sku: str,
    prices: list[dict[str, Any]],
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": variant_id,
        "sku": sku,
        "prices": prices,
        "attributes": [{"name": n, "value": v} for n, v in (attributes or {}).items()],
        "images": [],
    }


def ct_product(
    product_id: str,
    key: str,
    name: str,
    variants: list[dict[str, Any]],
    *,
    tax: str = "tc-std",
    published: bool = True,
    version: int = 3,
) -> dict[str, Any]:
    data = {
        "name": {"en-GB": name},
        "slug": {"en-GB": key},
        "masterVariant": variants[0],
        "variants": variants[1:],
        "categories": [],
    }
    return {
        "id": product_id,
        "version": version,
        "key": key,
        "productType": PRODUCT_TYPE,
        "taxCategory": {"typeId": "tax-category", "id": tax},
        "masterData": {
            "published": published,
            "hasStagedChanges": False,
            "current": data,
            "staged": copy.deepcopy(data),
        },
    }


def catalog(*docs: dict[str, Any]) -> CommercetoolsCatalog:
    return CommercetoolsCatalog(docs, channel_keys=CHANNELS, tax_category_keys=TAX_CATEGORIES)


def tshirt_items() -> list[ErpItem]:
    """A two-variant product as the sandbox ERP names it."""
    return [
        item(
            "TSH-WHT-S",
            product="tsh",
            name="Organic Cotton T-Shirt, White, S",
            attributes={"colour": "White", "size": "S"},
            prices=[
                gbp(2500),
                ErpPrice(currency="EUR", amount_minor=2995, fraction_digits=2, country="IE"),
            ],
        ),
        item(
            "TSH-WHT-M",
            product="tsh",
            name="Organic Cotton T-Shirt, White, M",
            attributes={"colour": "White", "size": "M"},
            prices=[
                gbp(2500),
                ErpPrice(currency="EUR", amount_minor=2995, fraction_digits=2, country="IE"),
            ],
        ),
    ]


def tshirt_doc() -> dict[str, Any]:
    """The same product in commercetools, in step with ``tshirt_items``."""
    return ct_product(
        "p-tsh",
        "tsh",
        "Organic Cotton T-Shirt",
        [
            ct_variant(
                1,
                "TSH-WHT-S",
                [
                    ct_price("pr-1", ct_money(2500)),
                    ct_price("pr-2", ct_money(2995, "EUR"), country="IE"),
                ],
                {"colour": "White", "size": "S"},
            ),
            ct_variant(
                2,
                "TSH-WHT-M",
                [
                    ct_price("pr-3", ct_money(2500)),
                    ct_price("pr-4", ct_money(2995, "EUR"), country="IE"),
                ],
                {"colour": "White", "size": "M"},
            ),
        ],
    )


def sweets_item(precise: str = "1.2495", minor: int = 125) -> ErpItem:
    return item(
        "SWT",
        name="Pick & Mix Sweets (per 100 g)",
        prices=[gbp(minor, precise_amount=Decimal(precise))],
        tax_code="S",
    )
