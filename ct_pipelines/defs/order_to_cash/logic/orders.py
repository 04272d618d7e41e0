"""Orders as the integration sees them: eligibility for the ERP and one batch row per order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ct_pipelines.kernel.money import to_minor_units

DEFAULT_PAYMENT_STATES = frozenset({"Paid"})
DEFAULT_TRANSACTION_TYPES = frozenset({"Authorization", "Charge"})


def _value(enum_or_str: Any) -> str | None:
    if enum_or_str is None:
        return None
    return str(getattr(enum_or_str, "value", enum_or_str))


@dataclass(frozen=True)
class EligibilityRule:
    """When an order may go to the ERP: paid or authorised, and not cancelled.

    An order qualifies when its ``paymentState`` is one of ``payment_states`` or, failing that,
    when one of its payments carries a successful transaction of ``transaction_types``
    (an authorisation is enough for most merchants; set ``transaction_types`` to ``{"Charge"}``
    to export only captured payments).
    """

    payment_states: frozenset[str] = DEFAULT_PAYMENT_STATES
    transaction_types: frozenset[str] = DEFAULT_TRANSACTION_TYPES


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str


def successful_transaction_types(order: Any) -> set[str]:
    """Types of the Success transactions on the order's expanded payments."""
    found: set[str] = set()
    info = getattr(order, "payment_info", None)
    for ref in getattr(info, "payments", None) or []:
        payment = getattr(ref, "obj", None)
        for tx in getattr(payment, "transactions", None) or []:
            if _value(tx.state) == "Success":
                found.add(str(_value(tx.type)))
    return found


def eligibility(order: Any, rule: EligibilityRule = EligibilityRule()) -> Eligibility:
    if _value(order.order_state) == "Cancelled":
        return Eligibility(False, "order is cancelled")
    payment_state = _value(order.payment_state)
    if payment_state in rule.payment_states:
        return Eligibility(True, f"paymentState {payment_state}")
    matched = successful_transaction_types(order) & rule.transaction_types
    if matched:
        return Eligibility(True, "successful " + "/".join(sorted(matched)) + " transaction")
    if payment_state:
        return Eligibility(
            False, f"paymentState {payment_state} and no successful payment transaction"
        )
    return Eligibility(False, "no paymentState and no successful payment transaction")


ERP_DOCUMENT_NUMBER_LENGTH = 35
_UUID_HEX = re.compile(r"^[0-9a-f]{32}$")


def external_document_number(order: Any, max_length: int = ERP_DOCUMENT_NUMBER_LENGTH) -> str:
    """The ERP's external document number: ``orderNumber``, or the order id when it has none.

    An id is a UUID of 36 characters, one more than many ERPs take (35), so when it does not fit
    it travels without its hyphens: still the id, and ``order_id_from_document_number`` restores it.
    """
    if order.order_number and str(order.order_number).strip():
        return str(order.order_number)
    return order.id if len(order.id) <= max_length else order.id.replace("-", "")


def id_document_numbers(order_id: str) -> tuple[str, ...]:
    """Every document number an order may have had before its ``orderNumber``: its id, with and
    without hyphens (which one depends on the ERP's length limit at the time)."""
    return tuple(dict.fromkeys((order_id, order_id.replace("-", ""))))


def order_id_from_document_number(document: str) -> str | None:
    """The commercetools order id behind a document number made from an id, else None."""
    if _UUID_HEX.match(document):
        d = document
        return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"
    if len(document) == 36 and document.count("-") == 4:
        return document
    return None


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
    order: Any, tz: ZoneInfo, rule: EligibilityRule = EligibilityRule()
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
