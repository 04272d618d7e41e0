"""Property test: generated orders in 0/2/3-digit currencies, every tax rounding and calculation
mode and tax rounding target (``taxRoundingTarget`` Net or Tax), tax-inclusive and net prices, high-precision prices, product and order-level discounts,
through the order
mapping, the finance facts, the journal and the reconciliation.

The orders are built here the way commercetools documents it (``kernel/money.py`` has the
rules), independently of the code under test: line taxes per line (or per unit at
``UnitPriceLevel``) with the order's ``taxRoundingMode``; an order-level discount leaves the
lines alone and takes each rate's share off the order's totals, whose tax is then split again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ct_pipelines.commercetools.models import Order
from ct_pipelines.defs.finance.logic.facts import order_fact
from ct_pipelines.defs.finance.logic.journal import JournalAccounts, build_journals
from ct_pipelines.defs.finance.logic.reconcile import erp_order_fact, reconcile_day
from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping, to_sales_order
from ct_pipelines.erp.port import ErpSalesOrder
from ct_pipelines.kernel.tax import TaxCodeTable

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 26)
CURRENCIES = {"JPY": 0, "GBP": 2, "EUR": 2, "KWD": 3}
RATES = ("0.2", "0.05", "0", "0.081")
CODES = {"0.2": "S", "0.05": "R", "0": "Z", "0.081": "CH"}
TAX_CODES = TaxCodeTable(by_rate={Decimal(rate): code for rate, code in CODES.items()})
MAPPING = SalesOrderMapping(
    item_numbers={f"SKU-{i}": f"ITEM-{i}" for i in range(6)}, tax_codes=TAX_CODES
)
ROUNDINGS = {"HalfEven": ROUND_HALF_EVEN, "HalfUp": ROUND_HALF_UP, "HalfDown": ROUND_HALF_DOWN}
ACCOUNTS = JournalAccounts(
    sales_by_tax_code={"S": "4000", "R": "4010", "Z": "4020", "CH": "4030"},
    vat_by_rate={"0.2": "2200", "0.05": "2205", "0": "2210", "0.081": "2215"},
)
RATES_BY_CODE = {code: rate for rate, code in CODES.items()}


def _round(value: Decimal, mode: str) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUNDINGS[mode]))


def _split(
    amount: int,
    rate: str,
    included: bool,
    quantity: int,
    mode: str,
    unit_level: bool,
    target: str = "Net",
):
    """(net, tax, gross) as commercetools taxes a line total (or a unit, at UnitPriceLevel).

    ``target`` is the tax rate's ``taxRoundingTarget`` for tax-inclusive prices: ``Net`` rounds
    the net (the default), ``Tax`` rounds the tax and the net is what is left.
    """
    r = Decimal(rate)
    if unit_level and quantity > 1:
        net, tax, gross = _split(amount // quantity, rate, included, 1, mode, False, target)
        return net * quantity, tax * quantity, gross * quantity
    if included and target == "Tax":
        tax = _round(Decimal(amount) * r / (1 + r), mode)
        return amount - tax, tax, amount
    if included:
        net = _round(Decimal(amount) / (1 + r), mode)
        return net, amount - net, amount
    tax = _round(Decimal(amount) * r, mode)
    return amount, tax, amount + tax


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": currency,
        "centAmount": amount,
        "fractionDigits": CURRENCIES[currency],
    }


def line_strategy(rates: Sequence[str] = RATES) -> st.SearchStrategy[Any]:
    return st.tuples(
        st.integers(1, 5),  # quantity
        st.integers(1, 50_000),  # unit price in minor units
        st.sampled_from(list(rates)),
        st.integers(0, 90),  # product discount, percent off the unit price
        st.one_of(st.none(), st.integers(0, 99)),  # high precision: 2 more digits, these
    )


@st.composite
def orders(
    draw: Any,
    number: int = 0,
    currencies: Sequence[str] = tuple(sorted(CURRENCIES)),
    rates: Sequence[str] = RATES,
) -> Order:
    currency = draw(st.sampled_from(list(currencies)))
    mode = draw(st.sampled_from(sorted(ROUNDINGS)))
    unit_level = draw(st.booleans())
    included = draw(st.booleans())
    target = draw(st.sampled_from(["Net", "Tax"])) if included else "Net"
    lines = draw(st.lists(line_strategy(rates), min_size=1, max_size=4))
    shipping = draw(
        st.one_of(st.none(), st.tuples(st.integers(0, 2000), st.sampled_from(list(rates))))
    )
    by_rate: dict[str, list[int]] = {}  # rate -> [net, tax, price total]

    def taxed(amount: int, rate: str, quantity: int) -> dict[str, Any]:
        net, tax, gross = _split(amount, rate, included, quantity, mode, unit_level, target)
        entry = by_rate.setdefault(rate, [0, 0, 0])
        entry[0] += net
        entry[1] += tax
        entry[2] += amount
        return {
            "totalNet": _money(net, currency),
            "totalGross": _money(gross, currency),
            "totalTax": _money(tax, currency),
        }

    def tax_rate(rate: str) -> dict[str, Any]:
        return {
            "name": f"VAT {rate}",
            "amount": rate,
            "includedInPrice": included,
            "country": "GB",
            "taxRoundingTarget": target,
        }

    items = []
    for index, (quantity, unit, rate, off, extra) in enumerate(lines):
        paid = unit - unit * off // 100
        total = paid * quantity
        price_value = _money(unit, currency)
        if extra is not None:
            # An external high-precision price: the unit's centAmount and the line total
            # (precise price x quantity) both round half-even to cent precision.
            off, precise = 0, (unit - 1) * 100 + extra
            paid = unit = _round(Decimal(precise) / 100, "HalfEven")
            total = _round(Decimal(precise * quantity) / 100, "HalfEven")
            price_value = {
                **_money(unit, currency),
                "type": "highPrecision",
                "preciseAmount": precise,
                "fractionDigits": CURRENCIES[currency] + 2,
            }
        items.append(
            {
                "id": f"line-{index}",
                "productId": "p",
                "name": {"en-GB": f"Item {index}"},
                "variant": {"id": 1, "sku": f"SKU-{index}"},
                "price": {"id": "price", "value": price_value},
                "quantity": quantity,
                "totalPrice": _money(total, currency),
                "taxRate": tax_rate(rate),
                "taxedPrice": taxed(total, rate, quantity if total % quantity == 0 else 1),
                "discountedPricePerQuantity": (
                    [
                        {
                            "quantity": quantity,
                            "discountedPrice": {
                                "value": _money(paid, currency),
                                "includedDiscounts": [],
                            },
                        }
                    ]
                    if paid != unit and extra is None
                    else []
                ),
                "state": [],
            }
        )
    doc: dict[str, Any] = {
        "id": f"order-{number}",
        "version": 1,
        "orderNumber": f"WEB-{number}",
        "createdAt": "2026-11-26T12:00:00.000Z",
        "lastModifiedAt": "2026-11-26T12:00:00.000Z",
        "lineItems": items,
        "customLineItems": [],
        "orderState": "Confirmed",
        "paymentState": "Paid",
        "shippingMode": "Single",
        "taxRoundingMode": mode,
        "taxCalculationMode": "UnitPriceLevel" if unit_level else "LineItemLevel",
        "syncInfo": [],
        "origin": "Customer",
    }
    if shipping is not None:
        price, rate = shipping
        doc["shippingInfo"] = {
            "shippingMethodName": "Standard",
            "price": _money(price, currency),
            "taxRate": tax_rate(rate),
            "taxedPrice": taxed(price, rate, 1),
            "shippingMethodState": "MatchesCart",
        }
    before_net = sum(entry[0] for entry in by_rate.values())
    before_gross = sum(entry[0] + entry[1] for entry in by_rate.values())
    price_total = sum(entry[2] for entry in by_rate.values())
    discount = draw(st.integers(0, max(price_total - 1, 0))) if draw(st.booleans()) else 0
    portions = {rate: (entry[0], entry[1]) for rate, entry in by_rate.items()}
    if discount:
        # The discount on the total price shared over the rates by their price total; each
        # rate's tax is split again on what is left.
        rates = sorted(by_rate)
        left = discount
        for position, rate in enumerate(rates):
            share = (
                left if position == len(rates) - 1 else discount * by_rate[rate][2] // price_total
            )
            left -= share
            remaining = by_rate[rate][2] - share
            net, tax, _ = _split(remaining, rate, included, 1, mode, False, target)
            portions[rate] = (net, tax)
    net = sum(p[0] for p in portions.values())
    tax = sum(p[1] for p in portions.values())
    doc["totalPrice"] = _money(net + tax, currency)
    doc["taxedPrice"] = {
        "totalNet": _money(net, currency),
        "totalGross": _money(net + tax, currency),
        "totalTax": _money(tax, currency),
        "taxPortions": [
            {"rate": rate, "amount": _money(p[1], currency), "name": f"VAT {rate}"}
            for rate, p in sorted(portions.items())
        ],
    }
    if discount:
        doc["discountOnTotalPrice"] = {
            "discountedAmount": _money(discount, currency),
            "discountedNetAmount": _money(before_net - net, currency),
            "discountedGrossAmount": _money(before_gross - net - tax, currency),
            "includedDiscounts": [],
        }
    return Order.model_validate(doc)


def _erp_order(draft: Any, number: int) -> ErpSalesOrder:
    return ErpSalesOrder.model_validate(
        {
            **draft.model_dump(),
            "sales_order_no": f"SO-{number}",
            "status": "open",
            "created_at": "2026-11-26T12:00:00Z",
            "updated_at": "2026-11-26T12:00:00Z",
        }
    )


def _line_groups(draft: Any) -> list[list[Any]]:
    """The ERP lines per commercetools line: an item (or shipping) line and its discount line."""
    groups: list[list[Any]] = []
    for line in draft.lines:
        if line.kind == "discount" and line.description.startswith("Discount: ") and groups:
            groups[-1].append(line)
        elif line.kind != "discount":
            groups.append([line])
    return groups


def _check_lines(order: Order, mapping: SalesOrderMapping = MAPPING) -> Any:
    draft = to_sales_order(order, mapping)
    assert draft.lines_add_up()
    # Each commercetools line is exactly its ERP line plus its discount line, to the minor unit.
    items = [g for g in _line_groups(draft) if g[0].kind == "item"]
    assert len(items) == len(order.line_items)
    for source, group in zip(order.line_items, items, strict=True):
        own = source.taxed_price
        assert sum(x.net_minor for x in group) == own.total_net.cent_amount, (source, group)
        assert sum(x.tax_minor for x in group) == own.total_tax.cent_amount, (source, group)
        assert sum(x.gross_minor for x in group) == own.total_gross.cent_amount, (source, group)
    shipping = [g for g in _line_groups(draft) if g[0].kind == "shipping"]
    if order.shipping_info is not None and shipping:
        own = order.shipping_info.taxed_price
        assert sum(x.net_minor for x in shipping[0]) == own.total_net.cent_amount
        assert sum(x.gross_minor for x in shipping[0]) == own.total_gross.cent_amount
    taxed = order.taxed_price
    assert draft.totals.net_minor == taxed.total_net.cent_amount
    assert draft.totals.gross_minor == taxed.total_gross.cent_amount
    included = order.line_items[0].tax_rate.included_in_price
    for line in draft.lines:
        charged = line.gross_minor if included else line.net_minor
        assert line.unit_price_minor * line.quantity == charged, line
    per_code: dict[str, int] = {}
    for line in draft.lines:
        per_code[line.tax_code] = per_code.get(line.tax_code, 0) + line.tax_minor
    portions = {format(p.rate.normalize(), "f"): p.amount.cent_amount for p in taxed.tax_portions}
    if order.discount_on_total_price:
        # commercetools' own tax per rate, to the minor unit.
        assert {RATES_BY_CODE[c]: t for c, t in per_code.items()} == {
            ("0" if Decimal(r) == 0 else r): t for r, t in portions.items()
        }
    return draft


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=orders())
def test_generated_orders_map_to_lines_that_add_up(order: Order) -> None:
    _check_lines(order)
    fact = order_fact(order, LONDON, tax_codes=TAX_CODES)
    assert fact.problem is None
    if order.discount_on_total_price:
        # Nothing of the discount lands on the rounding account.
        assert fact.unexplained_minor == 0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    day=st.lists(st.integers(0, 10_000), min_size=1, max_size=5).flatmap(
        lambda seeds: st.tuples(*[orders(number=i) for i in range(len(seeds))])
    ),
    variance=st.integers(-5_000, 5_000).filter(lambda v: v != 0),
)
def test_a_clean_day_reconciles_to_zero_and_an_injected_variance_to_exactly_it(
    day: tuple[Order, ...], variance: int
) -> None:
    facts = [order_fact(o, LONDON, tax_codes=TAX_CODES) for o in day]
    erp = [erp_order_fact(_erp_order(_check_lines(o), n), RATES_BY_CODE) for n, o in enumerate(day)]
    journals = build_journals(DAY, facts, [], ACCOUNTS)
    for batch in journals:
        assert sum(x.debit_minor for x in batch.lines) == sum(x.credit_minor for x in batch.lines)
        discounted = any(f.discount_by_tax_code for f in facts if f.currency == batch.currency)
        rounding = [x for x in batch.lines if x.account == ACCOUNTS.rounding]
        if discounted and all(not f.tax_rounding for f in facts if f.currency == batch.currency):
            assert rounding == []
    clean = reconcile_day(DAY, facts, [], erp, journals, ACCOUNTS)
    assert clean.balanced, clean.variances
    assert all(t.variance_minor == 0 and t.variance_abs_minor == 0 for t in clean.totals)

    erp[0] = replace(erp[0], gross_minor=erp[0].gross_minor + variance)
    off = reconcile_day(DAY, facts, [], erp, journals, ACCOUNTS)
    gross = next(t for t in off.totals if t.metric == "gross" and t.currency == erp[0].currency)
    assert gross.variance_minor == variance
    assert gross.variance_abs_minor == abs(variance)
    assert [(v.document, v.metric, v.variance_minor) for v in off.variances] == [
        (erp[0].document, "gross", variance)
    ]
    others = [t for t in off.totals if t is not gross]
    assert all(t.variance_minor == 0 and t.variance_abs_minor == 0 for t in others)
