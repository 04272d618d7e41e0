"""Orders as the integration sees them: eligibility for the ERP and one batch row per order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ct_pipelines.kernel.documents import external_document_number
from ct_pipelines.kernel.eligibility import EligibilityRule, eligibility
from ct_pipelines.kernel.eligibility import enum_value as _value
from ct_pipelines.kernel.money import to_minor_units

DEFAULT_RULE = EligibilityRule()


@dataclass
class OrderBatchRow:
    order_id: str
    external_document_number: str
    order_version: int
    created_at: str
    order_date: str
    currency: str
    fraction_digits: int
    net_minor: int
    tax_minor: int
    gross_minor: int
    shipping_minor: int
    line_count: int
    custom_line_count: int
    order_state: str
    payment_state: str | None
    shipment_state: str | None
    country: str | None
    eligible: bool
    eligibility_reason: str
    problems: list[str] = field(default_factory=list)


def order_batch_row(
    order: Any, tz: ZoneInfo, rule: EligibilityRule = DEFAULT_RULE
) -> OrderBatchRow:
    """One order as a batch row; missing tax data is a problem on the row, not a crash."""
    problems: list[str] = []
    total = order.total_price
    gross = to_minor_units(total)
    taxed = order.taxed_price
    if taxed is not None:
        net = to_minor_units(taxed.total_net)
        gross = to_minor_units(taxed.total_gross)
        tax = to_minor_units(taxed.total_tax) if taxed.total_tax is not None else gross - net
    else:
        problems.append("order has no taxedPrice")
        net, tax = gross, 0
    shipping = 0
    if order.shipping_info is not None and order.shipping_info.price is not None:
        shipping = to_minor_units(order.shipping_info.price)
    created: datetime = order.created_at
    verdict = eligibility(order, rule)
    address = order.shipping_address or order.billing_address
    return OrderBatchRow(
        order_id=order.id,
        external_document_number=external_document_number(order),
        order_version=order.version,
        created_at=created.isoformat(),
        order_date=created.astimezone(tz).date().isoformat(),
        currency=total.currency_code,
        fraction_digits=total.fraction_digits,
        net_minor=net,
        tax_minor=tax,
        gross_minor=gross,
        shipping_minor=shipping,
        line_count=len(order.line_items),
        custom_line_count=len(order.custom_line_items),
        order_state=str(_value(order.order_state)),
        payment_state=_value(order.payment_state),
        shipment_state=_value(order.shipment_state),
        # Country only: the batch needs where the order ships, not who the customer is.
        country=getattr(address, "country", None),
        eligible=verdict.eligible,
        eligibility_reason=verdict.reason,
        problems=problems,
    )


def created_window_predicate() -> str:
    """The ``where`` that selects a day's orders by creation time, with input variables."""
    return "createdAt >= :windowStart and createdAt < :windowEnd"


def as_utc_literal(moment: datetime) -> str:
    """A datetime as commercetools expects it in predicates: UTC with milliseconds and Z."""
    utc = moment.astimezone(ZoneInfo("UTC"))
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def tax_rounding_differences(order: Any) -> dict[str, int]:
    """Per tax rate: the order's tax portion minus the sum of its lines' taxes, in minor units.

    commercetools rounds tax per line by default, so the portions equal the line sums; a non-zero
    difference means the order was taxed with another rounding (unit-price level, or a bug
    upstream) and the ERP, which adds up lines, will disagree with the storefront.
    """
    from ct_pipelines.kernel.money import to_minor_units

    if order.taxed_price is None:
        return {}
    lines: dict[str, int] = {}

    def add(rate: Any, taxed: Any) -> None:
        if rate is None or taxed is None:
            return
        net = to_minor_units(taxed.total_net)
        gross = to_minor_units(taxed.total_gross)
        tax = to_minor_units(taxed.total_tax) if getattr(taxed, "total_tax", None) else gross - net
        key = str(rate.amount.normalize() if hasattr(rate.amount, "normalize") else rate.amount)
        lines[key] = lines.get(key, 0) + tax

    for line in order.line_items:
        add(line.tax_rate, line.taxed_price)
    for custom in order.custom_line_items:
        add(custom.tax_rate, custom.taxed_price)
    if order.shipping_info is not None:
        add(order.shipping_info.tax_rate, order.shipping_info.taxed_price)
    portions: dict[str, int] = {}
    for portion in order.taxed_price.tax_portions:
        key = str(portion.rate.normalize() if hasattr(portion.rate, "normalize") else portion.rate)
        portions[key] = portions.get(key, 0) + to_minor_units(portion.amount)
    return {
        rate: portions.get(rate, 0) - lines.get(rate, 0)
        for rate in sorted(set(lines) | set(portions))
        if portions.get(rate, 0) != lines.get(rate, 0)
    }
