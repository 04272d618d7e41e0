from __future__ import annotations

from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from ct_pipelines.defs.finance.logic.facts import order_fact
from ct_pipelines.defs.finance.logic.journal import JournalAccounts, build_journals
from ct_pipelines_tests.defs.finance.logic.builders import order, refund

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 26)


def _lines(batch) -> list[tuple[str, int, int]]:
    return [(line.account, line.debit_minor, line.credit_minor) for line in batch.lines]


def test_sales_charges_and_refunds_of_a_gbp_day() -> None:
    orders = [
        order_fact(order("UK-1", "GBP", [(1200, "0.2"), (1050, "0.05")], shipping=395), LONDON),
        order_fact(order("UK-2", "GBP", [(500, "0")]), LONDON),
    ]
    charge = replace(refund(DAY, "t-charge", 2645, document="UK-1"), type="Charge")
    refunded = refund(DAY, "t-refund", 300, document="UK-9", provider="paypal")
    [batch] = build_journals(DAY, orders, [charge, refunded])
    assert batch.batch_id == "fin-2026-11-26-GBP"
    assert (batch.currency, batch.fraction_digits, batch.posting_date) == ("GBP", 2, DAY)
    assert _lines(batch) == [
        ("1250", 3145, 0),  # payment clearing: both orders' gross
        ("4010", 0, 1000),  # sales R (tax codes in code order)
        ("4000", 0, 1000),  # sales S
        ("4020", 0, 500),  # sales Z
        ("4100", 0, 329),  # shipping net
        ("2205", 0, 50),  # VAT 5 %
        ("2200", 0, 266),  # VAT 20 % (line 200 + shipping 66)
        ("1210", 2645, 0),  # PSP receivable: charges
        ("1250", 0, 2645),  # clearing: charges captured
        ("4900", 300, 0),  # the refund, on its own line
        ("1210", 0, 300),  # PSP receivable: refunds
    ]
    refund_line = batch.lines[9]
    assert refund_line.reference == "t-refund"
    assert "UK-9" in refund_line.description and "paypal" in refund_line.description


@pytest.mark.parametrize(
    ("currency", "lines", "digits"),
    [("JPY", [(1100, "0.1"), (333, "0.1")], 0), ("KWD", [(12345, "0.05"), (1, "0.05")], 3)],
)
def test_journals_balance_in_every_currency(
    currency: str, lines: list[tuple[int, str]], digits: int
) -> None:
    orders = [order_fact(order(f"D-{i}", currency, [line]), LONDON) for i, line in enumerate(lines)]
    [batch] = build_journals(DAY, orders, [refund(DAY, "t1", 7, currency=currency)])
    assert batch.fraction_digits == digits
    assert batch.batch_id == f"fin-2026-11-26-{currency}"
    debits = sum(line.debit_minor for line in batch.lines)
    assert debits == sum(line.credit_minor for line in batch.lines)
    assert debits == sum(amount for amount, _ in lines) + 7


def test_one_batch_per_currency_and_accounts_are_configurable() -> None:
    orders = [
        order_fact(order("UK-1", "GBP", [(1200, "0.2")]), LONDON),
        order_fact(order("EU-1", "EUR", [(1200, "0.2")]), LONDON),
    ]
    accounts = JournalAccounts(payment_clearing="1299", psp_by_provider={"stripe": "1211"})
    batches = build_journals(DAY, orders, [refund(DAY, "t1", 100, currency="EUR")], accounts)
    assert [b.batch_id for b in batches] == ["fin-2026-11-26-EUR", "fin-2026-11-26-GBP"]
    assert batches[0].lines[0].account == "1299"
    assert ("1211", 0, 100) in _lines(batches[0])


def test_a_per_order_tax_rounding_gap_goes_to_the_rounding_account() -> None:
    fact = order_fact(order("UK-1", "GBP", [(1234, "0.2")], portion_off_by=1), LONDON)
    [batch] = build_journals(DAY, [fact], [])
    assert _lines(batch) == [
        ("1250", 1234, 0),
        ("4000", 0, 1028),
        ("2200", 0, 207),
        ("7990", 1, 0),  # the order charged a penny more VAT than its lines
    ]


def test_rebuilding_a_day_gives_the_identical_batch() -> None:
    orders = [order_fact(order(f"UK-{i}", "GBP", [(1000 + i, "0.2")]), LONDON) for i in range(5)]
    transactions = [refund(DAY, f"t{i}", 10 + i) for i in range(3)]
    first = build_journals(DAY, orders, transactions)
    again = build_journals(DAY, list(reversed(orders)), list(reversed(transactions)))
    assert [b.model_dump_json() for b in first] == [b.model_dump_json() for b in again]


def test_no_money_no_batch_and_other_days_are_ignored() -> None:
    assert build_journals(DAY, [], []) == []
    other_day = order_fact(
        order("UK-1", "GBP", [(1000, "0.2")], created="2026-11-25T10:00:00.000Z"), LONDON
    )
    failed = replace(refund(DAY, "t1", 100), state="Failure")
    assert build_journals(DAY, [other_day], [failed]) == []


def test_a_currency_with_two_precisions_is_refused() -> None:
    fact = order_fact(order("UK-1", "GBP", [(1000, "0.2")]), LONDON)
    odd = replace(refund(DAY, "t1", 100), fraction_digits=3)
    with pytest.raises(ValueError, match="fraction digits"):
        build_journals(DAY, [fact], [odd])


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("GBP", 2), ("KWD", 3)])
def test_an_order_level_discount_is_booked_against_sales_not_rounding(
    currency: str, digits: int
) -> None:
    from ct_pipelines_tests.defs.order_to_cash.logic.order_factory import make_order

    source = make_order(
        [("A", 2, 1999, "0.2"), ("B", 3, 450, "0.05")],
        shipping=(395, "0.2"),
        currency=currency,
        digits=digits,
        total_discount=1000,
    )
    fact = order_fact(source, LONDON)
    assert fact.unexplained_minor == 0 and fact.problem is None
    assert sum(fact.discount_by_tax_code.values()) == int(
        source.discount_on_total_price["discountedNetAmount"]["centAmount"]
    )
    [batch] = build_journals(DAY, [fact], [])
    accounts = {line.account for line in batch.lines}
    assert "7990" not in accounts
    discounts = [line for line in batch.lines if "order discounts" in line.description]
    assert {line.account for line in discounts} == {"4000", "4010"}
    assert sum(line.debit_minor for line in batch.lines) == sum(
        line.credit_minor for line in batch.lines
    )
    vat = {line.account: line.credit_minor for line in batch.lines if line.account.startswith("22")}
    portions = {
        format(p.rate.normalize(), "f"): p.amount.cent_amount
        for p in source.taxed_price.tax_portions
    }
    assert vat == {"2200": portions["0.2"], "2205": portions["0.05"]}
