"""A commercetools order as the ERP's sales order: lines, tax codes, minor units, item numbers.

Rules (each has a unit test):
- Amounts are integer minor units of the order's currency. Line net, tax and gross come from the
  line's ``taxedPrice`` (what commercetools charged); a line without one is computed from its
  ``totalPrice`` and tax rate, rounding half-even per line as commercetools does by default.
- A line charged other than unit price x quantity (product discount, discounted shipping rate,
  high-precision price) becomes the item at its list price plus a ``discount`` line carrying
  the difference, so every line's unit price x quantity is its amount and the lines still add
  up to what was charged. A discount line's unit price is gross for tax-inclusive prices, net
  otherwise.
- An order-level cart discount (``discountOnTotalPrice``) becomes one ``discount`` line per tax
  rate and code: tax from the order's ``taxPortions``, net from ``discountedNetAmount``
  (rules and sources in ``kernel/money.py``). Re-derived splits follow the order's
  ``taxRoundingMode`` and ``taxCalculationMode``.
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
from decimal import Decimal
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
from ct_pipelines.kernel.money import allocate, rate_text, tax_split, to_minor_units
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


def _amounts(
    total_minor: int, rate: Any, taxed: Any, order: Any = None, quantity: int = 1
) -> tuple[int, int, int]:
    """(net, tax, gross) of a line: from its taxedPrice, else computed from its total and rate
    with the order's taxCalculationMode and taxRoundingMode."""
    if taxed is not None:
        net = to_minor_units(taxed.total_net)
        gross = to_minor_units(taxed.total_gross)
        tax = to_minor_units(taxed.total_tax) if getattr(taxed, "total_tax", None) else gross - net
        return net, tax, gross
    if rate is None:
        raise MappingError("unknown_tax_code", "line has neither a taxed price nor a tax rate")
    return tax_split(
        total_minor,
        Decimal(str(rate.amount)),
        bool(getattr(rate, "included_in_price", False)),
        quantity,
        getattr(order, "tax_calculation_mode", None),
        getattr(order, "tax_rounding_mode", None),
    )


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


@dataclass
class _Lines:
    """The draft's lines, and per (tax rate, tax code) what they add up to before any
    order-level discount (the base that discount is shared out over)."""

    lines: list[SalesOrderLine] = field(default_factory=list)
    groups: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # net, tax
    included: dict[tuple[str, str], bool] = field(default_factory=dict)

    def add(
        self,
        item: str,
        description: str,
        quantity: int,
        unit_minor: int,
        amounts: tuple[int, int, int],
        tax_code: str,
        kind: LineKind,
        rate: Any,
    ) -> None:
        self.lines.append(
            _line(
                len(self.lines) + 1,
                item,
                description,
                quantity,
                unit_minor,
                amounts,
                tax_code,
                kind,
            )
        )
        key = (rate_text(rate) if rate is not None else "0", tax_code)
        group = self.groups.setdefault(key, [0, 0])
        group[0] += amounts[0]
        group[1] += amounts[1]
        self.included.setdefault(key, bool(getattr(rate, "included_in_price", True)))


def _with_discount(
    lines: _Lines,
    mapping: SalesOrderMapping,
    order: Any,
    rate: Any,
    item: str,
    description: str,
    quantity: int,
    unit_minor: int,
    amounts: tuple[int, int, int],
    tax_code: str,
    kind: LineKind = "item",
) -> None:
    """Append the line at its unit price and, when commercetools charged something else than
    unit price x quantity (a product discount, a discounted shipping rate, a high-precision
    price rounded per line), a discount line for the difference: every line's unit price times
    its quantity is its amount (gross for tax-inclusive prices, net otherwise)."""
    included = bool(getattr(rate, "included_in_price", True)) if rate is not None else True
    net, tax, gross = amounts
    charged = gross if included else net
    list_total = unit_minor * quantity
    if list_total == charged:
        lines.add(item, description, quantity, unit_minor, amounts, tax_code, kind, rate)
        return
    amount = Decimal(str(rate.amount)) if rate is not None else Decimal(0)
    list_amounts = tax_split(
        list_total,
        amount,
        included,
        quantity,
        getattr(order, "tax_calculation_mode", None),
        getattr(order, "tax_rounding_mode", None),
    )
    lines.add(item, description, quantity, unit_minor, list_amounts, tax_code, kind, rate)
    discount = (net - list_amounts[0], tax - list_amounts[1], gross - list_amounts[2])
    lines.lines.append(
        _line(
            len(lines.lines) + 1,
            mapping.discount_item,
            f"Discount: {description}",
            1,
            discount[2] if included else discount[0],
            discount,
            tax_code,
            "discount",
        )
    )
    key = (rate_text(rate) if rate is not None else "0", tax_code)
    lines.groups[key][0] += discount[0]
    lines.groups[key][1] += discount[1]


def _order_discount(
    lines: _Lines, mapping: SalesOrderMapping, order: Any, net: int, tax: int
) -> None:
    """Discount lines for an order-level cart discount (``discountOnTotalPrice``), one per tax
    rate and code the lines carry: tax from the order's ``taxPortions`` minus the lines' tax at
    that rate, net from ``discountedNetAmount`` shared out over the rates by the lines' net
    (``kernel.money`` has the rules). The lines then add up to the order's totals."""
    on_total = order.discount_on_total_price
    if not on_total:
        return
    lines_net = sum(group[0] for group in lines.groups.values())
    discount_net = lines_net - net  # positive: what the discount took off the net
    given = on_total.get("discountedNetAmount")
    if given is not None and to_minor_units(given) != discount_net:
        raise MappingError(
            "validation",
            f"discountOnTotalPrice.discountedNetAmount is {to_minor_units(given)} but the lines' "
            f"net {lines_net} minus the order's totalNet {net} is {discount_net}",
        )
    portions: dict[str, int] = {}
    for portion in order.taxed_price.tax_portions:
        key = rate_text(portion.rate)
        portions[key] = portions.get(key, 0) + to_minor_units(portion.amount)
    line_tax: dict[str, int] = {}
    for (rate, _code), (_net, group_tax) in lines.groups.items():
        line_tax[rate] = line_tax.get(rate, 0) + group_tax
    unknown = sorted(set(portions) - set(line_tax))
    if unknown:
        raise MappingError(
            "validation",
            f"the order has tax portions at {', '.join(unknown)} that no line carries",
        )
    if sum(portions.values()) != tax:
        raise MappingError(
            "validation",
            f"the order's tax portions add up to {sum(portions.values())}, its totalTax is {tax}",
        )
    discount_gross = on_total.get("discountedGrossAmount")
    lines_gross = lines_net + sum(line_tax.values())
    if discount_gross is not None and to_minor_units(discount_gross) != lines_gross - net - tax:
        raise MappingError(
            "validation",
            f"discountOnTotalPrice.discountedGrossAmount is {to_minor_units(discount_gross)} but "
            f"the lines' gross {lines_gross} minus the order's totalGross {net + tax} "
            f"is {lines_gross - net - tax}",
        )
    net_shares = allocate(-discount_net, {key: group[0] for key, group in lines.groups.items()})
    tax_shares: dict[tuple[str, str], int] = {}
    for tax_rate in line_tax:
        at_rate = {key: lines.groups[key][0] for key in lines.groups if key[0] == tax_rate}
        tax_shares.update(allocate(portions.get(tax_rate, 0) - line_tax[tax_rate], at_rate))
    for group_key in sorted(lines.groups):
        share_net, share_tax = net_shares.get(group_key, 0), tax_shares.get(group_key, 0)
        if share_net == 0 and share_tax == 0:
            continue
        rate, code = group_key
        included = lines.included.get(group_key, True)
        gross = share_net + share_tax
        lines.lines.append(
            _line(
                len(lines.lines) + 1,
                mapping.discount_item,
                f"Order discount at {rate}",
                1,
                gross if included else share_net,
                (share_net, share_tax, gross),
                code,
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
    lines = _Lines()
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
        quantity = int(line.quantity)
        amounts = _amounts(
            to_minor_units(line.total_price), line.tax_rate, line.taxed_price, order, quantity
        )
        _with_discount(
            lines,
            mapping,
            order,
            line.tax_rate,
            item,
            name or str(sku),  # item_for_sku refused a line without a SKU
            quantity,
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
        quantity = int(custom.quantity)
        amounts = _amounts(
            to_minor_units(custom.total_price), custom.tax_rate, custom.taxed_price, order, quantity
        )
        _with_discount(
            lines,
            mapping,
            order,
            custom.tax_rate,
            custom_item or mapping.default_custom_item,
            name or custom.slug,
            quantity,
            to_minor_units(custom.money),
            amounts,
            tax_code,
            "custom",
        )
    shipping = order.shipping_info
    if shipping is not None and shipping.price is not None:
        tax_code = mapping.tax_codes.code_for(shipping.tax_rate, _category_key(shipping))
        price = to_minor_units(shipping.price)
        amounts = _amounts(price, shipping.tax_rate, shipping.taxed_price, order)
        _with_discount(
            lines,
            mapping,
            order,
            shipping.tax_rate,
            mapping.shipping_item,
            shipping.shipping_method_name or "Shipping",
            1,
            price,
            amounts,
            tax_code,
            "shipping",
        )
    net = to_minor_units(order.taxed_price.total_net)
    gross = to_minor_units(order.taxed_price.total_gross)
    tax = (
        to_minor_units(order.taxed_price.total_tax)
        if order.taxed_price.total_tax is not None
        else gross - net
    )
    _order_discount(lines, mapping, order, net, tax)
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
        lines=lines.lines,
        totals=SalesOrderTotals(net_minor=net, tax_minor=tax, gross_minor=gross),
        source_order_id=order.id,
        source_order_version=order.version,
    )
