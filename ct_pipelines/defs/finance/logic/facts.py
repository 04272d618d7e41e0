"""The money facts finance needs from commercetools: one row per order, one per transaction.

All amounts are integer minor units of the row's currency; ``fraction_digits`` travels with
them (0 for JPY, 2 for GBP, 3 for KWD), so no figure is ever scaled or rounded here.

- An order's tax per rate comes from its ``taxedPrice.taxPortions``, what the customer was
  charged; its net per ERP tax code and its shipping come from the lines, what the ERP adds up.
  When commercetools rounded the two differently the gap shows in ``tax_rounding``.
- An order-level cart discount (``discountOnTotalPrice``) leaves the lines as they were and
  discounts the order's totals: its net (``discountedNetAmount``, which must equal the lines'
  and shipping's net minus ``totalNet``) is shared out over the sales tax codes by their net
  (``discount_by_tax_code``, booked against sales); its tax is already in the tax portions, so
  such an order has no separate ``tax_rounding`` (the portions' gap to the lines is the
  discount's tax).
- A transaction belongs to the shop day of its ``timestamp`` (the payment's creation time when
  the PSP sent none), not to the day of its order: a refund is booked when it happens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from ct_pipelines.defs.order_to_cash.logic.orders import tax_rounding_differences
from ct_pipelines.kernel.documents import external_document_number
from ct_pipelines.kernel.eligibility import EligibilityRule, eligibility
from ct_pipelines.kernel.money import allocate, round_minor, to_minor_units
from ct_pipelines.kernel.tax import MappingError, TaxCodeTable

# Tax code for a line commercetools never taxed (tax mode Disabled): sales without VAT.
UNTAXED = "UNTAXED"
FINANCE_TRANSACTION_TYPES = ("Charge", "Refund", "Chargeback")
DEFAULT_RULE = EligibilityRule()
DEFAULT_TAX_CODES = TaxCodeTable()


def rate_key(rate: Any) -> str:
    """A tax rate as a stable text key: 0.2, 0.05, 0 (never 0.20 or 2E-1)."""
    try:
        value = Decimal(str(getattr(rate, "amount", rate)))
    except InvalidOperation:
        raise ValueError(f"tax rate {rate!r} is not a number") from None
    text = format(value.normalize(), "f")
    return "0" if Decimal(text) == 0 else text


def _value(enum_or_str: Any) -> str | None:
    if enum_or_str is None:
        return None
    return str(getattr(enum_or_str, "value", enum_or_str))


def _add(target: dict[str, int], key: str, amount: int) -> None:
    target[key] = target.get(key, 0) + amount


@dataclass(frozen=True)
class OrderFact:
    day: date
    order_id: str
    document: str  # the ERP's external document number
    order_version: int
    created_at: datetime
    currency: str
    fraction_digits: int
    eligible: bool  # the order-to-cash rule: this order belongs in the ERP
    eligibility_reason: str
    order_state: str
    payment_state: str | None
    net_minor: int
    tax_minor: int
    gross_minor: int
    shipping_minor: int  # shipping gross, as charged
    shipping_net_minor: int
    shipping_tax_minor: int
    tax_by_rate: dict[str, int] = field(default_factory=dict)
    net_by_tax_code: dict[str, int] = field(default_factory=dict)  # lines without shipping
    tax_rounding: dict[str, int] = field(default_factory=dict)  # portion minus line taxes
    problem: str | None = None
    # Order-level discount's net per sales tax code, positive (booked as a debit to sales).
    discount_by_tax_code: dict[str, int] = field(default_factory=dict)

    @property
    def unexplained_minor(self) -> int:
        """Gross not covered by line nets, shipping net and tax portions (rounding gaps)."""
        return (
            self.gross_minor
            - sum(self.net_by_tax_code.values())
            + sum(self.discount_by_tax_code.values())
            - self.shipping_net_minor
            - sum(self.tax_by_rate.values())
        )


def _line_amounts(total: Any, taxed: Any) -> tuple[int, int]:
    """(net, tax) of a line: from its taxed price, else untaxed at its total."""
    if taxed is None:
        return to_minor_units(total), 0
    net = to_minor_units(taxed.total_net)
    gross = to_minor_units(taxed.total_gross)
    tax = to_minor_units(taxed.total_tax) if taxed.total_tax is not None else gross - net
    return net, tax


def _tax_code(line: Any, tax_codes: TaxCodeTable) -> str:
    if getattr(line, "taxed_price", None) is None and getattr(line, "tax_rate", None) is None:
        return UNTAXED
    category = getattr(line, "tax_category", None)
    key = None
    if category is not None:
        obj = getattr(category, "obj", None)
        key = getattr(obj, "key", None) or getattr(category, "key", None)
    try:
        return tax_codes.code_for(line.tax_rate, key)
    except MappingError:
        # Still counted: the journal books it on the default sales account.
        rate = getattr(line, "tax_rate", None)
        return f"RATE-{rate_key(rate)}" if rate is not None else UNTAXED


def order_fact(
    order: Any,
    tz: ZoneInfo,
    rule: EligibilityRule = DEFAULT_RULE,
    tax_codes: TaxCodeTable = DEFAULT_TAX_CODES,
) -> OrderFact:
    """One commercetools order (model) as finance sees it."""
    currency = order.total_price.currency_code
    digits = int(order.total_price.fraction_digits)
    gross = to_minor_units(order.total_price)
    problem = None
    tax_by_rate: dict[str, int] = {}
    taxed = order.taxed_price
    if taxed is not None:
        net = to_minor_units(taxed.total_net)
        gross = to_minor_units(taxed.total_gross)
        tax = to_minor_units(taxed.total_tax) if taxed.total_tax is not None else gross - net
        for portion in taxed.tax_portions:
            _add(tax_by_rate, rate_key(portion.rate), to_minor_units(portion.amount))
        if not taxed.tax_portions and tax:
            tax_by_rate["unknown"] = tax
    else:
        problem = "order has no taxedPrice: taxes were never calculated"
        net, tax = gross, 0
    net_by_code: dict[str, int] = {}
    for line in [*order.line_items, *order.custom_line_items]:
        line_net, _ = _line_amounts(line.total_price, line.taxed_price)
        _add(net_by_code, _tax_code(line, tax_codes), line_net)
    shipping = ship_net = ship_tax = 0
    info = order.shipping_info
    if info is not None and info.price is not None:
        shipping = to_minor_units(info.price)
        if info.taxed_price is not None:
            ship_net, ship_tax = _line_amounts(info.price, info.taxed_price)
            shipping = ship_net + ship_tax
        else:
            ship_net = shipping
    discount_by_code: dict[str, int] = {}
    rounding = tax_rounding_differences(order)
    on_total = order.discount_on_total_price
    if on_total and taxed is not None:
        discount_net = sum(net_by_code.values()) + ship_net - net
        given = on_total.get("discountedNetAmount")
        if given is not None and to_minor_units(given) != discount_net:
            problem = (
                f"discountOnTotalPrice.discountedNetAmount is {to_minor_units(given)}, the lines' "
                f"net minus totalNet is {discount_net}"
            )
        discount_by_code = {
            code: amount
            for code, amount in allocate(discount_net, dict(sorted(net_by_code.items()))).items()
            if amount
        }
        rounding = {}
    verdict = eligibility(order, rule)
    return OrderFact(
        day=order.created_at.astimezone(tz).date(),
        order_id=order.id,
        document=external_document_number(order),
        order_version=int(order.version),
        created_at=order.created_at,
        currency=currency,
        fraction_digits=digits,
        eligible=verdict.eligible,
        eligibility_reason=verdict.reason,
        order_state=str(_value(order.order_state)),
        payment_state=_value(order.payment_state),
        net_minor=net,
        tax_minor=tax,
        gross_minor=gross,
        shipping_minor=shipping,
        shipping_net_minor=ship_net,
        shipping_tax_minor=ship_tax,
        tax_by_rate=tax_by_rate,
        net_by_tax_code=net_by_code,
        tax_rounding=rounding,
        problem=problem,
        discount_by_tax_code=discount_by_code,
    )


@dataclass(frozen=True)
class TransactionFact:
    day: date
    transaction_id: str
    payment_id: str
    order_id: str | None
    document: str | None
    type: str  # Charge, Refund, Chargeback (Authorization and its cancellation move no money)
    state: str
    timestamp: datetime
    currency: str
    fraction_digits: int
    amount_minor: int
    provider: str  # paymentMethodInfo.paymentInterface (stripe, paypal, ...)
    method: str  # paymentMethodInfo.method (card, paypal, klarna, ...)
    # Output VAT a refund gives back, per rate (``refund_tax_by_rate``); empty when unknown.
    tax_by_rate: dict[str, int] = field(default_factory=dict)
    # The PSP's ids: the transaction's ``interactionId`` (Stripe: the charge, refund or dispute
    # id) and the payment's ``interfaceId`` (Stripe: the PaymentIntent), for the settlement file.
    interaction_id: str | None = None
    payment_interface_id: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == "Success"


def transaction_facts(
    payment: Any,
    day: date,
    tz: ZoneInfo,
    order: tuple[str, str] | None = None,
    types: Sequence[str] = FINANCE_TRANSACTION_TYPES,
) -> list[TransactionFact]:
    """The payment's money-moving transactions that happened on the shop day ``day``.

    ``order`` is (order id, external document number) of the order that holds the payment.
    """
    info = payment.payment_method_info
    found = []
    for tx in payment.transactions:
        kind = str(_value(tx.type))
        if kind not in types:
            continue
        moment = tx.timestamp or payment.created_at
        if moment.astimezone(tz).date() != day:
            continue
        found.append(
            TransactionFact(
                day=day,
                transaction_id=tx.id,
                payment_id=payment.id,
                order_id=order[0] if order else None,
                document=order[1] if order else None,
                type=kind,
                state=str(_value(tx.state)),
                timestamp=moment,
                currency=tx.amount.currency_code,
                fraction_digits=int(tx.amount.fraction_digits),
                amount_minor=to_minor_units(tx.amount),
                provider=(getattr(info, "payment_interface", None) or "unknown"),
                method=(getattr(info, "method", None) or "unknown"),
                interaction_id=getattr(tx, "interaction_id", None),
                payment_interface_id=getattr(payment, "interface_id", None),
            )
        )
    return found


def refund_tax_by_rate(amount_minor: int, order: Any) -> dict[str, int]:
    """The output VAT inside a refund of ``amount_minor`` (gross) of ``order``, per rate.

    The refund takes each rate's share of the order's VAT in proportion to the refunded share
    of its gross, rounded with the order's taxRoundingMode (half-even by default): a full
    refund gives back exactly the order's tax portions. An order without taxes gives none.
    """
    taxed = getattr(order, "taxed_price", None)
    if taxed is None or not amount_minor:
        return {}
    gross = to_minor_units(taxed.total_gross)
    if gross <= 0:
        return {}
    mode = getattr(order, "tax_rounding_mode", None)
    found: dict[str, int] = {}
    for portion in taxed.tax_portions:
        share = Decimal(to_minor_units(portion.amount)) * Decimal(amount_minor) / Decimal(gross)
        tax = round_minor(share, mode)
        if tax:
            _add(found, rate_key(portion.rate), tax)
    return dict(sorted(found.items()))


# -- frames: how the facts are stored as snapshots ------------------------------------------

_JSON_FIELDS = {"tax_by_rate", "net_by_tax_code", "tax_rounding", "discount_by_tax_code"}
ORDER_FACT_COLUMNS = [f.name for f in fields(OrderFact)]
TRANSACTION_FACT_COLUMNS = [f.name for f in fields(TransactionFact)]


def _row(fact: Any) -> dict[str, Any]:
    row = asdict(fact)
    for name, value in row.items():
        if name in _JSON_FIELDS:
            row[name] = json.dumps(value, sort_keys=True)
        elif isinstance(value, datetime | date):
            row[name] = value.isoformat()
    return row


def orders_frame(facts: Iterable[OrderFact]) -> pd.DataFrame:
    return pd.DataFrame([_row(f) for f in facts], columns=ORDER_FACT_COLUMNS)


def transactions_frame(facts: Iterable[TransactionFact]) -> pd.DataFrame:
    return pd.DataFrame([_row(f) for f in facts], columns=TRANSACTION_FACT_COLUMNS)


def _none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def _json(value: Any) -> dict[str, int]:
    value = _none(value)
    if not value:
        return {}
    return {str(k): int(v) for k, v in json.loads(value).items()}


def orders_from_frame(frame: pd.DataFrame) -> list[OrderFact]:
    facts = []
    for record in frame.to_dict("records"):
        facts.append(
            OrderFact(
                day=date.fromisoformat(str(record["day"])),
                order_id=str(record["order_id"]),
                document=str(record["document"]),
                order_version=int(record["order_version"]),
                created_at=datetime.fromisoformat(str(record["created_at"])),
                currency=str(record["currency"]),
                fraction_digits=int(record["fraction_digits"]),
                eligible=bool(record["eligible"]),
                eligibility_reason=str(record["eligibility_reason"]),
                order_state=str(record["order_state"]),
                payment_state=_none(record["payment_state"]),
                net_minor=int(record["net_minor"]),
                tax_minor=int(record["tax_minor"]),
                gross_minor=int(record["gross_minor"]),
                shipping_minor=int(record["shipping_minor"]),
                shipping_net_minor=int(record["shipping_net_minor"]),
                shipping_tax_minor=int(record["shipping_tax_minor"]),
                tax_by_rate=_json(record["tax_by_rate"]),
                net_by_tax_code=_json(record["net_by_tax_code"]),
                tax_rounding=_json(record["tax_rounding"]),
                problem=_none(record["problem"]),
                # Snapshots written before order-level discounts were booked lack the column.
                discount_by_tax_code=_json(record.get("discount_by_tax_code")),
            )
        )
    return facts


def transactions_from_frame(frame: pd.DataFrame) -> list[TransactionFact]:
    facts = []
    for record in frame.to_dict("records"):
        facts.append(
            TransactionFact(
                day=date.fromisoformat(str(record["day"])),
                transaction_id=str(record["transaction_id"]),
                payment_id=str(record["payment_id"]),
                order_id=_none(record["order_id"]),
                document=_none(record["document"]),
                type=str(record["type"]),
                state=str(record["state"]),
                timestamp=datetime.fromisoformat(str(record["timestamp"])),
                currency=str(record["currency"]),
                fraction_digits=int(record["fraction_digits"]),
                amount_minor=int(record["amount_minor"]),
                provider=str(record["provider"]),
                method=str(record["method"]),
                tax_by_rate=_json(record.get("tax_by_rate")),
                # Snapshots written before the settlement reconciliation lack these columns.
                interaction_id=_none(record.get("interaction_id")),
                payment_interface_id=_none(record.get("payment_interface_id")),
            )
        )
    return facts


def sums_by(
    facts: Iterable[TransactionFact], *keys: str, succeeded_only: bool = True
) -> dict[tuple[Any, ...], int]:
    """Transaction amounts summed by the named fields, e.g. ("currency", "type", "provider")."""
    totals: dict[tuple[Any, ...], int] = {}
    for fact in facts:
        if succeeded_only and not fact.succeeded:
            continue
        key = tuple(getattr(fact, name) for name in keys)
        totals[key] = totals.get(key, 0) + fact.amount_minor
    return totals


def currency_digits(facts: Iterable[Any]) -> Mapping[str, int]:
    """Fraction digits per currency; one currency with two precisions is a data error."""
    digits: dict[str, int] = {}
    for fact in facts:
        known = digits.setdefault(fact.currency, fact.fraction_digits)
        if known != fact.fraction_digits:
            raise ValueError(
                f"{fact.currency} appears with {known} and {fact.fraction_digits} fraction digits"
            )
    return digits
