from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from ct_pipelines.defs.finance.logic.facts import (
    UNTAXED,
    order_fact,
    orders_frame,
    orders_from_frame,
    rate_key,
    sums_by,
    transaction_facts,
    transactions_frame,
    transactions_from_frame,
)
from ct_pipelines_tests.defs.finance.logic.builders import order, order_json, payment

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("currency", "lines", "shipping", "expected"),
    [
        # JPY has no minor unit: 1,100 yen at 10 % is 1,000 net and 100 tax.
        ("JPY", [(1100, "0.1")], None, {"net": 1000, "tax": 100, "gross": 1100}),
        # GBP: 12.34 at 20 % -> 10.28 net (10.283 rounds down), 2.06 tax; shipping 3.95.
        ("GBP", [(1234, "0.2")], 395, {"net": 1028 + 329, "tax": 206 + 66, "gross": 1629}),
        # KWD has three: 12.345 at 5 % -> 11.757 net (11.757142...), 0.588 tax.
        ("KWD", [(12345, "0.05")], None, {"net": 11757, "tax": 588, "gross": 12345}),
    ],
)
def test_order_figures_stay_in_the_currencys_minor_units(
    currency: str, lines: list[tuple[int, str]], shipping: int | None, expected: dict[str, int]
) -> None:
    fact = order_fact(order("D-1", currency, lines, shipping=shipping), LONDON)
    assert (fact.net_minor, fact.tax_minor, fact.gross_minor) == (
        expected["net"],
        expected["tax"],
        expected["gross"],
    )
    assert fact.currency == currency
    assert fact.fraction_digits == {"JPY": 0, "GBP": 2, "KWD": 3}[currency]
    assert fact.unexplained_minor == 0
    assert fact.tax_rounding == {}


def test_net_per_tax_code_tax_per_rate_and_shipping() -> None:
    fact = order_fact(
        order("D-1", "GBP", [(1200, "0.2"), (1050, "0.05"), (500, "0")], shipping=395), LONDON
    )
    assert fact.net_by_tax_code == {"S": 1000, "R": 1000, "Z": 500}
    assert fact.tax_by_rate == {"0.2": 200 + 66, "0.05": 50, "0": 0}
    assert (fact.shipping_minor, fact.shipping_net_minor, fact.shipping_tax_minor) == (395, 329, 66)
    assert fact.eligible and fact.day == DAY


def test_tax_rounded_per_order_shows_as_unexplained_and_as_rounding_difference() -> None:
    fact = order_fact(order("D-1", "GBP", [(1234, "0.2")], portion_off_by=1), LONDON)
    assert fact.tax_by_rate == {"0.2": 207}
    assert fact.net_minor == 1027
    assert fact.tax_rounding == {"0.2": 1}
    assert fact.unexplained_minor == -1


def test_an_order_without_taxed_price_is_untaxed_and_says_why() -> None:
    raw = order_json("D-1", "GBP", [(1200, "0.2")])
    del raw["taxedPrice"]
    for line in raw["lineItems"]:
        del line["taxedPrice"], line["taxRate"]
    from ct_pipelines.commercetools.models import Order

    fact = order_fact(Order.model_validate(raw), LONDON)
    assert fact.net_by_tax_code == {UNTAXED: 1200}
    assert (fact.net_minor, fact.tax_minor, fact.gross_minor) == (1200, 0, 1200)
    assert "taxedPrice" in (fact.problem or "")


def test_cancelled_and_unpaid_orders_are_not_for_the_erp() -> None:
    cancelled = order_fact(order("D-1", "GBP", [(100, "0.2")], order_state="Cancelled"), LONDON)
    unpaid = order_fact(order("D-2", "GBP", [(100, "0.2")], payment_state="Pending"), LONDON)
    assert not cancelled.eligible and "cancelled" in cancelled.eligibility_reason
    assert not unpaid.eligible


def test_shop_day_is_local_in_summer() -> None:
    fact = order_fact(
        order("D-1", "GBP", [(100, "0.2")], created="2026-07-14T23:30:00.000Z"), LONDON
    )
    assert fact.day == date(2026, 7, 15)


def test_rate_keys_are_normalised() -> None:
    assert [rate_key(r) for r in ("0.20", 0.2, "0.050", "0", "0.00")] == [
        "0.2",
        "0.2",
        "0.05",
        "0",
        "0",
    ]


def test_transactions_belong_to_the_day_they_happened() -> None:
    pay = payment(
        "p1",
        "GBP",
        [
            ("Authorization", "Success", 3000, "2026-11-25T21:00:00.000Z"),
            ("Charge", "Success", 3000, "2026-11-25T21:05:00.000Z"),
            ("Refund", "Success", 1000, "2026-11-26T09:00:00.000Z"),
            ("Refund", "Failure", 500, "2026-11-26T09:30:00.000Z"),
        ],
        provider="paypal",
        method="paypal",
    )
    facts = transaction_facts(pay, DAY, LONDON, order=("id-UK-1", "UK-1"))
    assert [(f.type, f.state, f.amount_minor) for f in facts] == [
        ("Refund", "Success", 1000),
        ("Refund", "Failure", 500),
    ]
    assert {f.document for f in facts} == {"UK-1"}
    assert sums_by(facts, "currency", "type", "provider", "method") == {
        ("GBP", "Refund", "paypal", "paypal"): 1000
    }
    yesterday = transaction_facts(pay, date(2026, 11, 25), LONDON)
    assert [f.type for f in yesterday] == ["Charge"]  # authorisations move no money
    assert yesterday[0].order_id is None


def test_frames_round_trip() -> None:
    facts = [
        order_fact(order("D-1", "KWD", [(12345, "0.05")]), LONDON),
        order_fact(order("D-2", "GBP", [(1234, "0.2")], portion_off_by=1), LONDON),
    ]
    assert orders_from_frame(orders_frame(facts)) == facts
    pay = payment("p1", "JPY", [("Charge", "Success", 1100, "2026-11-26T10:00:00.000Z")])
    transactions = transaction_facts(pay, DAY, LONDON)
    assert transactions_from_frame(transactions_frame(transactions)) == transactions
