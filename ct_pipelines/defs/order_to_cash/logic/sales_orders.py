"""A commercetools order as the ERP's sales order: lines, tax codes, minor units, item numbers.

Rules (each has a unit test):
- Amounts are integer minor units of the order's currency. Line net, tax and gross come from the
  line's ``taxedPrice`` (what commercetools charged); a line without one is computed from its
  ``totalPrice`` and tax rate, rounding half-even per line as commercetools does by default.
- A discounted line becomes the item at its list price plus a ``discount`` line carrying the
  difference, so the ERP sees the discount and the lines still add up to what was charged.
- Shipping is a line of its own (item ``SHIPPING`` by default) with its own tax code.
- Tax codes come from a table: by tax category key or name first, then by rate.
- A SKU becomes the ERP item number through the catalogue; an unknown SKU, or an item number
  longer than the ERP accepts, is a permanent mapping error with a readable reason.
- Custom line items have no SKU: they map by slug/key through ``custom_items`` or to the
  default item (``CUSTOM``).
- Personal data: only the customer reference and the shipping country travel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ct_pipelines.erp.port import (
    LineKind,
    SalesOrderCustomer,
    SalesOrderDraft,
    SalesOrderLine,
    SalesOrderTotals,
)
from ct_pipelines.kernel.documents import external_document_number
from ct_pipelines.kernel.money import to_minor_units
from ct_pipelines.kernel.tax import MappingError, TaxCodeTable


@dataclass(frozen=True)
class SalesOrderMapping:
    """Everything the mapping needs to know about the ERP side."""

    item_numbers: Mapping[str, str]  # SKU -> ERP item number
    tax_codes: TaxCodeTable = field(default_factory=TaxCodeTable)
    custom_items: Mapping[str, str] = field(default_factory=dict)  # custom line slug/key -> item
    default_custom_item: str = "CUSTOM"
    shipping_item: str = "SHIPPING"
    discount_item: str = "DISCOUNT"
    max_item_number_length: int = 20
    max_document_number_length: int = 35
    # The ERP's order date is the shop's calendar day, as the daily batches and finance use.
    shop_timezone: str = "Europe/London"

    def item_for_sku(self, sku: str | None, line_name: str) -> str:
        if not sku:
            raise MappingError("unknown_sku", f"line item {line_name!r} has no SKU")
        item = self.item_numbers.get(sku)
        if item is None:
            raise MappingError("unknown_sku", f"SKU {sku} is not an ERP item", sku=sku)
        if len(item) > self.max_item_number_length:
            raise MappingError(
                "validation",
                f"ERP item number {item!r} for SKU {sku} is longer than {self.max_item_number_length} characters",
                sku=sku,
            )
        return item


def _name(localized: Any) -> str:
    if isinstance(localized, Mapping):
        for locale in ("en-GB", "en", *localized.keys()):
            if localized.get(locale):
                return str(localized[locale])
        return ""
    return str(localized or "")


def _split_gross(gross: int, rate: Decimal) -> tuple[int, int]:
    """(net, tax) of a tax-inclusive amount, net rounded half-even."""
    net = int((Decimal(gross) / (1 + rate)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return net, gross - net


def _amounts(total_minor: int, rate: Any, taxed: Any) -> tuple[int, int, int]:
    """(net, tax, gross) of a line: from its taxedPrice, else computed from its total and rate."""
    if taxed is not None:
        net = to_minor_units(taxed.total_net)
        gross = to_minor_units(taxed.total_gross)
        tax = to_minor_units(taxed.total_tax) if getattr(taxed, "total_tax", None) else gross - net
        return net, tax, gross
    if rate is None:
        raise MappingError("unknown_tax_code", "line has neither a taxed price nor a tax rate")
    amount = Decimal(str(rate.amount))
    if getattr(rate, "included_in_price", False):
        net, tax = _split_gross(total_minor, amount)
        return net, tax, total_minor
    tax = int((Decimal(total_minor) * amount).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return total_minor, tax, total_minor + tax


def _category_key(line: Any) -> str | None:
    category = getattr(line, "tax_category", None)
    if category is None:
        return None
    obj = getattr(category, "obj", None)
    return (
        getattr(obj, "key", None) or getattr(category, "key", None) or getattr(category, "id", None)
    )


def _line(
    line_no: int,
    item: str,
    description: str,
    quantity: int,
    unit_minor: int,
    amounts: tuple[int, int, int],
    tax_code: str,
    kind: LineKind,
) -> SalesOrderLine:
    net, tax, gross = amounts
    return SalesOrderLine(
        line_no=line_no,
        item_no=item,
        description=description[:100],
        quantity=quantity,
        unit_price_minor=unit_minor,
        net_minor=net,
        tax_minor=tax,
        gross_minor=gross,
        tax_code=tax_code,
        kind=kind,
    )


def _with_discount(
    lines: list[SalesOrderLine],
    mapping: SalesOrderMapping,
    line: Any,
    item: str,
    description: str,
    unit_minor: int,
    amounts: tuple[int, int, int],
    tax_code: str,
) -> None:
    """Append the item line and, when it was discounted, a discount line for the difference."""
    quantity = int(line.quantity)
    list_total = unit_minor * quantity
    net, tax, gross = amounts
    charged = gross if getattr(line.tax_rate, "included_in_price", True) else net
    if list_total == charged or not getattr(line, "discounted_price_per_quantity", None):
        lines.append(
            _line(
                len(lines) + 1, item, description, quantity, unit_minor, amounts, tax_code, "item"
            )
        )
        return
    rate = Decimal(str(line.tax_rate.amount)) if line.tax_rate is not None else Decimal(0)
    if getattr(line.tax_rate, "included_in_price", True):
        list_net, list_tax = _split_gross(list_total, rate)
        list_amounts = (list_net, list_tax, list_total)
    else:
        list_tax = int((Decimal(list_total) * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        list_amounts = (list_total, list_tax, list_total + list_tax)
    lines.append(
        _line(
            len(lines) + 1, item, description, quantity, unit_minor, list_amounts, tax_code, "item"
        )
    )
    discount = (net - list_amounts[0], tax - list_amounts[1], gross - list_amounts[2])
    lines.append(
        _line(
            len(lines) + 1,
            mapping.discount_item,
            f"Discount: {description}",
            1,
            discount[2],
            discount,
            tax_code,
            "discount",
        )
    )


def to_sales_order(order: Any, mapping: SalesOrderMapping) -> SalesOrderDraft:
    """Map one commercetools order; raises MappingError for what the ERP cannot take."""
    document = external_document_number(order, mapping.max_document_number_length)
    if len(document) > mapping.max_document_number_length:
        raise MappingError(
            "validation",
            f"external document number {document!r} is longer than {mapping.max_document_number_length} characters",
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in document):
        raise MappingError(
            "validation",
            f"external document number {document!r} contains control characters (NUL, escape, ...)",
        )
    if order.taxed_price is None:
        # Tax mode Disabled (or a cart that never had taxes calculated): nothing to post tax on.
        raise MappingError("validation", "order has no taxedPrice: taxes were never calculated")
    currency = order.total_price.currency_code
    digits = order.total_price.fraction_digits
    lines: list[SalesOrderLine] = []
    for line in order.line_items:
        name = _name(line.name)
        sku = getattr(line.variant, "sku", None)
        item = mapping.item_for_sku(sku, name)
        if line.price.value.currency_code != currency:
            raise MappingError(
                "validation",
                f"line {sku} is in {line.price.value.currency_code}, the order in {currency}",
            )
        tax_code = mapping.tax_codes.code_for(line.tax_rate, _category_key(line))
        amounts = _amounts(to_minor_units(line.total_price), line.tax_rate, line.taxed_price)
        _with_discount(
            lines,
            mapping,
            line,
            item,
            name or str(sku),  # item_for_sku refused a line without a SKU
            to_minor_units(line.price.value),
            amounts,
            tax_code,
        )
    for custom in order.custom_line_items:
        name = _name(custom.name)
        custom_item = mapping.custom_items.get(custom.slug) or mapping.custom_items.get(
            getattr(custom, "key", None) or ""
        )
        tax_code = mapping.tax_codes.code_for(custom.tax_rate, _category_key(custom))
        amounts = _amounts(to_minor_units(custom.total_price), custom.tax_rate, custom.taxed_price)
        lines.append(
            _line(
                len(lines) + 1,
                custom_item or mapping.default_custom_item,
                name or custom.slug,
                int(custom.quantity),
                to_minor_units(custom.money),
                amounts,
                tax_code,
                "custom",
            )
        )
    shipping = order.shipping_info
    if shipping is not None and shipping.price is not None:
        tax_code = mapping.tax_codes.code_for(shipping.tax_rate, _category_key(shipping))
        price = to_minor_units(shipping.price)
        amounts = _amounts(price, shipping.tax_rate, shipping.taxed_price)
        lines.append(
            _line(
                len(lines) + 1,
                mapping.shipping_item,
                shipping.shipping_method_name or "Shipping",
                1,
                price,
                amounts,
                tax_code,
                "shipping",
            )
        )
    net = to_minor_units(order.taxed_price.total_net)
    gross = to_minor_units(order.taxed_price.total_gross)
    tax = (
        to_minor_units(order.taxed_price.total_tax)
        if order.taxed_price.total_tax is not None
        else gross - net
    )
    address = order.shipping_address or order.billing_address
    return SalesOrderDraft(
        external_document_number=document,
        order_date=order.created_at.astimezone(ZoneInfo(mapping.shop_timezone)).date(),
        currency=currency,
        fraction_digits=digits,
        customer=SalesOrderCustomer(
            ref=order.customer_id or "guest",
            country=getattr(address, "country", None),
        ),
        lines=lines,
        totals=SalesOrderTotals(net_minor=net, tax_minor=tax, gross_minor=gross),
        source_order_id=order.id,
        source_order_version=order.version,
    )
