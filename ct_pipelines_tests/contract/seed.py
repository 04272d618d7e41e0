"""Seeding a mock project through the mock's own HTTP endpoints (plain httpx, not our client).

Drafts are the public API's drafts; where the mock needs something the real API would not
(or lacks an endpoint), README.md says so.
"""

from __future__ import annotations

from typing import Any

from ct_pipelines_tests.contract.conftest import MockProject

GBP = "GBP"
UK_VAT = {"name": "UK VAT", "amount": 0.2, "includedInPrice": True, "country": "GB"}


def money(cent_amount: int, currency: str = GBP) -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": currency,
        "centAmount": cent_amount,
        "fractionDigits": 2,
    }


def tax_category(project: MockProject, key: str = "standard") -> dict[str, Any]:
    return project.post("tax-categories", {"key": key, "name": key, "rates": [UK_VAT]})


def channel(project: MockProject, key: str, roles: list[str]) -> dict[str, Any]:
    return project.post("channels", {"key": key, "roles": roles, "name": {"en-GB": key}})


def product_type(
    project: MockProject, key: str = "default", attributes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return project.post(
        "product-types",
        {"key": key, "name": key, "description": key, "attributes": attributes or []},
    )


def product(
    project: MockProject,
    product_type_id: str,
    skus: list[str],
    *,
    key: str | None = None,
    publish: bool = True,
    tax_category_id: str | None = None,
) -> dict[str, Any]:
    variants = [{"sku": sku, "key": sku} for sku in skus]
    draft: dict[str, Any] = {
        "key": key or skus[0],
        "productType": {"typeId": "product-type", "id": product_type_id},
        "name": {"en-GB": key or skus[0]},
        "slug": {"en-GB": (key or skus[0]).lower()},
        "masterVariant": variants[0],
        "variants": variants[1:],
        "publish": publish,
    }
    if tax_category_id:
        draft["taxCategory"] = {"typeId": "tax-category", "id": tax_category_id}
    return project.post("products", draft)


def shipping_method(
    project: MockProject, tax_category_id: str, cent_amount: int = 395
) -> dict[str, Any]:
    """A UK zone and a shipping method with one rate (the mock prices imported shipping by it)."""
    zone = project.post("zones", {"key": "uk", "name": "UK", "locations": [{"country": "GB"}]})
    return project.post(
        "shipping-methods",
        {
            "key": "standard",
            "name": "standard",
            "isDefault": True,
            "taxCategory": {"typeId": "tax-category", "id": tax_category_id},
            "zoneRates": [
                {
                    "zone": {"typeId": "zone", "id": zone["id"]},
                    "shippingRates": [{"price": money(cent_amount)}],
                }
            ],
        },
    )


def paid_order(
    project: MockProject,
    order_number: str,
    sku: str,
    *,
    quantity: int = 1,
    unit_cent_amount: int = 1200,
    payment_state: str = "Paid",
    shipping: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An order through the order import endpoint (the mock cannot check out carts for us).

    ``shipping`` is a shipping method from :func:`shipping_method`: the order then has shipping
    info (dispatch needs it to take deliveries) and its total includes the shipping rate.
    """
    total = unit_cent_amount * quantity
    extra: dict[str, Any] = {}
    if shipping is not None:
        rate = shipping["zoneRates"][0]["shippingRates"][0]["price"]
        total += rate["centAmount"]
        extra["shippingInfo"] = {
            "shippingMethodName": shipping["name"],
            "price": money(rate["centAmount"]),
            "shippingRate": {"price": money(rate["centAmount"])},
            "taxRate": UK_VAT,
            "taxCategory": shipping["taxCategory"],
            "shippingMethod": {"typeId": "shipping-method", "id": shipping["id"]},
        }
    return project.post(
        "orders/import",
        {
            **extra,
            "orderNumber": order_number,
            "totalPrice": money(total),
            "paymentState": payment_state,
            "orderState": "Open",
            "shippingAddress": {"country": "GB"},
            "lineItems": [
                {
                    "variant": {"sku": sku},
                    "name": {"en-GB": sku},
                    "price": {"value": money(unit_cent_amount)},
                    "quantity": quantity,
                    "taxRate": UK_VAT,
                }
            ],
        },
    )
