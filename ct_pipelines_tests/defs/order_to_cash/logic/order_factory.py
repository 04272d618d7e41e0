"""Builds commercetools order JSON for mapping tests, with taxes computed as the platform does."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ct_pipelines.commercetools.models import Order
from ct_pipelines.kernel.money import allocate

RATES = {"0.2": "Standard UK", "0.05": "Reduced UK", "0": "Zero UK"}


def money(cents: int, currency: str = "GBP", digits: int = 2) -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": currency,
        "centAmount": cents,
        "fractionDigits": digits,
    }


def _split(gross: int, rate: Decimal) -> tuple[int, int]:
    net = int((Decimal(gross) / (1 + rate)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return net, gross - net


def tax_rate(rate: str) -> dict[str, Any]:
    return {
        "name": RATES.get(rate, f"rate {rate}"),
        "amount": rate,
        "includedInPrice": True,
        "country": "GB",
    }


def make_order(
    lines: list[tuple[str | None, int, int, str]],
    *,
    custom: list[tuple[str, int, int, str]] = (),
    shipping: tuple[int, str] | None = (495, "0.2"),
    currency: str = "GBP",
    digits: int = 2,
    discounts: dict[int, int] | None = None,
    order_number: str | None = "UK-1001",
    high_precision_unit: dict[int, tuple[int, int]] | None = None,
    payment_state: str | None = "Paid",
    order_state: str = "Open",
    total_discount: int | None = None,
) -> Order:
    """lines: (sku, quantity, unit gross in minor units, rate); discounts: line index -> discounted unit gross.

    ``total_discount``: an order-level cart discount (``discountOnTotalPrice``) of that much
    gross, as commercetools applies it: the lines keep their prices; the order's gross per rate
    loses a share in proportion to its gross and each rate's tax is split again.
    """
    discounts = discounts or {}
    high_precision_unit = high_precision_unit or {}
    portions: dict[str, list[int]] = {}

    def taxed(gross: int, rate: str) -> dict[str, Any]:
        net, tax = _split(gross, Decimal(rate))
        entry = portions.setdefault(rate, [0, 0])
        entry[0] += net
        entry[1] += tax
        return {
            "totalNet": money(net, currency, digits),
            "totalGross": money(gross, currency, digits),
            "totalTax": money(tax, currency, digits),
            "taxPortions": [
                {"rate": rate, "amount": money(tax, currency, digits), "name": RATES.get(rate)}
            ],
        }

    line_items = []
    for index, (sku, quantity, unit, rate) in enumerate(lines):
        unit_paid = discounts.get(index, unit)
        gross = unit_paid * quantity
        price_value = money(unit, currency, digits)
        if index in high_precision_unit:
            precise, precise_digits = high_precision_unit[index]
            price_value = {
                **price_value,
                "type": "highPrecision",
                "preciseAmount": precise,
                "fractionDigits": precise_digits,
            }
        item = {
            "id": str(uuid.uuid4()),
            "productId": str(uuid.uuid4()),
            "name": {"en-GB": f"Product {sku}"},
            "variant": {"id": 1, **({"sku": sku} if sku else {})},
            "price": {"id": str(uuid.uuid4()), "value": price_value},
            "quantity": quantity,
            "totalPrice": money(gross, currency, digits),
            "taxRate": tax_rate(rate),
            "taxedPrice": taxed(gross, rate),
            "discountedPricePerQuantity": (
                [
                    {
                        "quantity": quantity,
                        "discountedPrice": {
                            "value": money(unit_paid, currency, digits),
                            "includedDiscounts": [],
                        },
                    }
                ]
                if index in discounts
                else []
            ),
            "state": [],
        }
        line_items.append(item)
    custom_items = []
    for slug, quantity, unit, rate in custom:
        gross = unit * quantity
        custom_items.append(
            {
                "id": str(uuid.uuid4()),
                "name": {"en-GB": slug.replace("-", " ").title()},
                "slug": slug,
                "money": money(unit, currency, digits),
                "quantity": quantity,
                "totalPrice": money(gross, currency, digits),
                "taxRate": tax_rate(rate),
                "taxedPrice": taxed(gross, rate),
                "state": [],
            }
        )
    shipping_info = None
    if shipping is not None:
        price, rate = shipping
        shipping_info = {
            "shippingMethodName": "Royal Mail Tracked 48",
            "price": money(price, currency, digits),
            "shippingRate": {"price": money(price, currency, digits)},
            "taxRate": tax_rate(rate),
            "taxedPrice": {
                k: v
                for k, v in taxed(price, rate).items()
                if k in ("totalNet", "totalGross", "totalTax")
            },
            "shippingMethodState": "MatchesCart",
        }
    on_total = None
    if total_discount:
        before_net = sum(p[0] for p in portions.values())
        rates = sorted(portions)
        weights = {rate: portions[rate][0] + portions[rate][1] for rate in rates}
        shares = allocate(total_discount, weights)
        for rate in rates:
            net, tax = _split(weights[rate] - shares[rate], Decimal(rate))
            portions[rate] = [net, tax]
        on_total = {
            "discountedAmount": money(total_discount, currency, digits),
            "discountedGrossAmount": money(total_discount, currency, digits),
            "discountedNetAmount": money(
                before_net - sum(p[0] for p in portions.values()), currency, digits
            ),
            "includedDiscounts": [],
        }
    total_net = sum(p[0] for p in portions.values())
    total_tax = sum(p[1] for p in portions.values())
    order_id = str(uuid.uuid4())
    doc: dict[str, Any] = {
        "id": order_id,
        "version": 3,
        "createdAt": "2026-11-26T10:15:00.000Z",
        "lastModifiedAt": "2026-11-26T10:16:00.000Z",
        "customerId": "cust-42",
        "customerEmail": "jane@example.co.uk",
        "lineItems": line_items,
        "customLineItems": custom_items,
        "totalPrice": money(total_net + total_tax, currency, digits),
        "taxedPrice": {
            "totalNet": money(total_net, currency, digits),
            "totalGross": money(total_net + total_tax, currency, digits),
            "totalTax": money(total_tax, currency, digits),
            "taxPortions": [
                {"rate": rate, "amount": money(tax, currency, digits), "name": RATES.get(rate)}
                for rate, (_net, tax) in portions.items()
            ],
        },
        "shippingMode": "Single",
        "orderState": order_state,
        "shippingAddress": {
            "country": "GB",
            "firstName": "Jane",
            "lastName": "Doe",
            "streetName": "High St",
        },
        "syncInfo": [],
        "origin": "Customer",
    }
    if shipping_info:
        doc["shippingInfo"] = shipping_info
    if on_total:
        doc["discountOnTotalPrice"] = on_total
    if order_number:
        doc["orderNumber"] = order_number
    if payment_state:
        doc["paymentState"] = payment_state
    return Order.model_validate(doc)
