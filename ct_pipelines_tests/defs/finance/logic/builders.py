"""commercetools orders and payments built by hand, in any currency, for the finance tests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ct_pipelines.commercetools.models import Order, Payment
from ct_pipelines.defs.finance.logic.facts import TransactionFact
from ct_pipelines.erp.port import ErpSalesOrder

DIGITS = {"JPY": 0, "GBP": 2, "EUR": 2, "KWD": 3}


def money(amount: int, currency: str) -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": currency,
        "centAmount": amount,
        "fractionDigits": DIGITS[currency],
    }


def split(gross: int, rate: str) -> tuple[int, int]:
    """(net, tax) of a tax-inclusive amount, net rounded half-even, as commercetools does."""
    net = int((Decimal(gross) / (1 + Decimal(rate))).quantize(Decimal(1), ROUND_HALF_EVEN))
    return net, gross - net


def _taxed(gross: int, rate: str, currency: str) -> dict[str, Any]:
    net, tax = split(gross, rate)
    return {
        "totalNet": money(net, currency),
        "totalGross": money(gross, currency),
        "totalTax": money(tax, currency),
        "taxPortions": [{"rate": float(rate), "amount": money(tax, currency)}],
    }


def _rate(rate: str) -> dict[str, Any]:
    return {"name": f"VAT {rate}", "amount": float(rate), "includedInPrice": True, "country": "GB"}


def order_json(
    document: str,
    currency: str,
    lines: list[tuple[int, str]],
    *,
    shipping: int | None = None,
    created: str = "2026-11-26T10:00:00.000Z",
    payment_state: str = "Paid",
    order_state: str = "Confirmed",
    portion_off_by: int = 0,
) -> dict[str, Any]:
    """An order of tax-inclusive lines [(gross, rate)] and optional shipping at 20 %.

    ``portion_off_by`` moves that much of the order's net into its largest tax portion, as the
    sandbox's ``tax_rounding_error`` drift does (gross unchanged).
    """
    items = []
    portions: dict[str, int] = {}
    gross_total = tax_total = 0
    for index, (gross, rate) in enumerate(lines):
        taxed = _taxed(gross, rate, currency)
        items.append(
            {
                "id": f"{document}-l{index}",
                "productId": "product",
                "variant": {"id": 1, "sku": f"SKU-{index}"},
                "price": {"id": "price", "value": money(gross, currency)},
                "quantity": 1,
                "totalPrice": money(gross, currency),
                "taxRate": _rate(rate),
                "taxedPrice": taxed,
            }
        )
        portions[rate] = portions.get(rate, 0) + taxed["totalTax"]["centAmount"]
        gross_total += gross
        tax_total += taxed["totalTax"]["centAmount"]
    order: dict[str, Any] = {
        "id": f"id-{document}",
        "version": 3,
        "orderNumber": document,
        "createdAt": created,
        "lastModifiedAt": created,
        "lineItems": items,
        "customLineItems": [],
        "orderState": order_state,
        "paymentState": payment_state,
    }
    if shipping is not None:
        taxed = _taxed(shipping, "0.2", currency)
        order["shippingInfo"] = {
            "shippingMethodName": "Standard",
            "price": money(shipping, currency),
            "taxRate": _rate("0.2"),
            "taxedPrice": taxed,
        }
        portions["0.2"] = portions.get("0.2", 0) + taxed["totalTax"]["centAmount"]
        gross_total += shipping
        tax_total += taxed["totalTax"]["centAmount"]
    if portion_off_by:
        largest = max(portions, key=lambda r: portions[r])
        portions[largest] += portion_off_by
        tax_total += portion_off_by
    order["totalPrice"] = money(gross_total, currency)
    order["taxedPrice"] = {
        "totalNet": money(gross_total - tax_total, currency),
        "totalGross": money(gross_total, currency),
        "totalTax": money(tax_total, currency),
        "taxPortions": [
            {"rate": float(rate), "amount": money(amount, currency)}
            for rate, amount in portions.items()
        ],
    }
    return order


def order(*args: Any, **kwargs: Any) -> Order:
    return Order.model_validate(order_json(*args, **kwargs))


def payment(
    payment_id: str,
    currency: str,
    transactions: list[tuple[str, str, int, str]],
    *,
    provider: str = "stripe",
    method: str = "card",
    created: str = "2026-11-26T10:00:00.000Z",
) -> Payment:
    """A payment with transactions [(type, state, amount, timestamp)]."""
    return Payment.model_validate(
        {
            "id": payment_id,
            "version": 1,
            "createdAt": created,
            "lastModifiedAt": created,
            "amountPlanned": money(transactions[0][2], currency),
            "paymentMethodInfo": {"paymentInterface": provider, "method": method},
            "transactions": [
                {
                    "id": f"{payment_id}-t{index}",
                    "type": kind,
                    "state": state,
                    "amount": money(amount, currency),
                    "timestamp": at,
                }
                for index, (kind, state, amount, at) in enumerate(transactions)
            ],
        }
    )


def refund(
    day: date,
    transaction_id: str,
    amount: int,
    currency: str = "GBP",
    document: str | None = "UK-1",
    kind: str = "Refund",
    provider: str = "stripe",
) -> TransactionFact:
    return TransactionFact(
        day=day,
        transaction_id=transaction_id,
        payment_id=f"pay-{transaction_id}",
        order_id=f"id-{document}" if document else None,
        document=document,
        type=kind,
        state="Success",
        timestamp=datetime.fromisoformat(f"{day.isoformat()}T12:00:00+00:00"),
        currency=currency,
        fraction_digits=DIGITS[currency],
        amount_minor=amount,
        provider=provider,
        method="card",
    )


def erp_sales_order(source: Order, *, sales_order_no: str | None = None) -> ErpSalesOrder:
    """The ERP's sales order for an order as order-to-cash sends it: line by line.

    Totals are the sums of the lines, so an order whose tax portions were later rounded
    differently from its lines (the ``portion_off_by`` case) disagrees with it by that much.
    """
    codes = {"0.2": "S", "0.05": "R", "0.1": "T", "0": "Z"}
    built = []
    sources = [(line, "item") for line in source.line_items]
    if source.shipping_info is not None:
        sources.append((source.shipping_info, "shipping"))
    for number, (line, kind) in enumerate(sources, start=1):
        taxed = line.taxed_price
        net, gross = taxed.total_net.cent_amount, taxed.total_gross.cent_amount
        built.append(
            {
                "line_no": number,
                "item_no": "SHIPPING" if kind == "shipping" else "ITEM",
                "quantity": 1,
                "unit_price_minor": gross,
                "net_minor": net,
                "tax_minor": gross - net,
                "gross_minor": gross,
                "tax_code": codes[format(line.tax_rate.amount.normalize(), "f")],
                "kind": kind,
            }
        )
    return ErpSalesOrder.model_validate(
        {
            "external_document_number": source.order_number or source.id,
            "order_date": source.created_at.date(),
            "currency": source.total_price.currency_code,
            "fraction_digits": source.total_price.fraction_digits,
            "customer": {"ref": "guest"},
            "lines": built,
            "totals": {
                "net_minor": sum(line["net_minor"] for line in built),
                "tax_minor": sum(line["tax_minor"] for line in built),
                "gross_minor": sum(line["gross_minor"] for line in built),
            },
            "source_order_id": source.id,
            "source_order_version": source.version,
            "sales_order_no": sales_order_no or f"SO-{source.order_number}",
            "status": "open",
            "created_at": source.created_at,
            "updated_at": source.created_at,
        }
    )
