"""The settlement file (Stripe's itemized balance report) against commercetools' transactions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from ct_pipelines.defs.finance.logic.checks import settlement_verdict
from ct_pipelines.defs.finance.logic.facts import TransactionFact
from ct_pipelines.defs.finance.logic.settlement import (
    SettlementFileError,
    items_frame,
    parse_settlement_csv,
    reconcile_settlement,
    settlement_totals_frame,
    unique_rows,
)
from ct_pipelines.kernel.money import decimal_text_to_minor, minor_to_decimal_text

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 26)
DIGITS = {"JPY": 0, "GBP": 2, "KWD": 3}
HEADER = (
    "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,source_id,"
    "payment_intent_id,automatic_payout_id,payment_metadata[commercetools_payment_id]\n"
)


def _csv(*rows: str) -> str:
    return HEADER + "".join(f"{row}\n" for row in rows)


def _tx(
    tx_id: str,
    amount: int,
    currency: str = "GBP",
    kind: str = "Charge",
    *,
    at: datetime = datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    interaction: str | None = None,
    payment: str = "pay-1",
    intent: str | None = "pi_1",
    provider: str = "stripe",
    state: str = "Success",
) -> TransactionFact:
    return TransactionFact(
        day=at.astimezone(LONDON).date(),
        transaction_id=tx_id,
        payment_id=payment,
        order_id=f"order-{payment}",
        document=f"UK-{payment}",
        type=kind,
        state=state,
        timestamp=at,
        currency=currency,
        fraction_digits=DIGITS[currency],
        amount_minor=amount,
        provider=provider,
        method="card",
        interaction_id=interaction,
        payment_interface_id=intent,
    )


def _rows(text: str):
    rows, bad = parse_settlement_csv(text, file="report.csv", tz=LONDON)
    return rows, bad


@pytest.mark.parametrize(
    ("currency", "gross", "fee", "net", "minor"),
    [
        ("jpy", "1980", "50", "1930", (1980, 50, 1930)),
        ("gbp", "19.99", "0.50", "19.49", (1999, 50, 1949)),
        ("kwd", "12.345", "0.205", "12.140", (12345, 205, 12140)),
    ],
)
def test_amounts_become_minor_units_by_the_currencys_digits(
    currency: str, gross: str, fee: str, net: str, minor: tuple[int, int, int]
) -> None:
    rows, bad = _rows(
        _csv(
            f"txn_1,2026-11-26 12:00:00,{currency},{gross},{fee},{net},charge,ch_1,pi_1,po_1,pay-1"
        )
    )
    assert bad == []
    [row] = rows
    assert (row.gross_minor, row.fee_minor, row.net_minor) == minor
    assert row.currency == currency.upper()
    assert row.fraction_digits == DIGITS[currency.upper()]
    assert row.day == DAY and row.payment_reference == "pay-1" and row.payout_id == "po_1"


def test_bad_rows_are_named_and_the_rest_is_read() -> None:
    rows, bad = _rows(
        _csv(
            "txn_ok,2026-11-26 12:00:00,gbp,10.00,0.35,9.65,charge,ch_1,pi_1,po_1,pay-1",
            "txn_digits,2026-11-26 12:00:00,gbp,10.001,0.35,9.651,charge,ch_2,pi_2,po_1,pay-2",
            "txn_jpy,2026-11-26 12:00:00,jpy,10.5,0,10.5,charge,ch_3,pi_3,po_1,pay-3",
            "txn_net,2026-11-26 12:00:00,gbp,10.00,0.35,9.00,charge,ch_4,pi_4,po_1,pay-4",
            "txn_cur,2026-11-26 12:00:00,xyz,10.00,0.35,9.65,charge,ch_5,pi_5,po_1,pay-5",
            ",2026-11-26 12:00:00,gbp,10.00,0.35,9.65,charge,ch_6,pi_6,po_1,pay-6",
            "txn_time,yesterday,gbp,10.00,0.35,9.65,charge,ch_7,pi_7,po_1,pay-7",
        )
    )
    assert [r.balance_transaction_id for r in rows] == ["txn_ok"]
    reasons = {b.balance_transaction_id: (b.line, b.reason) for b in bad}
    assert reasons["txn_digits"][0] == 3
    assert "3 fraction digits" in reasons["txn_digits"][1]
    assert "1 fraction digits; the currency has 0" in reasons["txn_jpy"][1]
    assert "net 9.00 is not gross 10.00 minus fee 0.35" in reasons["txn_net"][1]
    assert "unknown currency 'XYZ'" in reasons["txn_cur"][1]
    assert reasons[None] == (7, "no balance_transaction_id")
    assert "is not a time" in reasons["txn_time"][1]


def test_a_file_without_the_reports_columns_is_refused() -> None:
    with pytest.raises(SettlementFileError, match="columns missing: gross, fee, net"):
        parse_settlement_csv(
            "balance_transaction_id,created_utc,currency,reporting_category\n",
            file="payouts.csv",
            tz=LONDON,
        )


def test_overlapping_reports_count_a_row_once_and_conflicting_copies_are_bad() -> None:
    line = "txn_1,2026-11-26 12:00:00,gbp,10.00,0.35,9.65,charge,ch_1,pi_1,po_1,pay-1"
    first, _ = parse_settlement_csv(_csv(line), file="week.csv", tz=LONDON)
    again, _ = parse_settlement_csv(_csv(line), file="day.csv", tz=LONDON)
    other, _ = parse_settlement_csv(
        _csv(line.replace("10.00,0.35,9.65", "11.00,0.35,10.65")), file="fixed.csv", tz=LONDON
    )
    rows, bad = unique_rows([*first, *again])
    assert len(rows) == 1 and bad == []
    rows, bad = unique_rows([*first, *other])
    assert rows == [] and [b.balance_transaction_id for b in bad] == ["txn_1"]


@pytest.mark.parametrize(
    ("currency", "amount", "text"),
    [("JPY", 1980, "1980"), ("GBP", 1999, "19.99"), ("KWD", 12345, "12.345")],
)
def test_charges_refunds_and_disputes_match_by_psp_id_in_every_precision(
    currency: str, amount: int, text: str
) -> None:
    fee = "1" if currency == "JPY" else ("0.01" if currency == "GBP" else "0.001")
    fee_minor = 1
    net = decimal_text_to_minor(text, DIGITS[currency]) - fee_minor
    net_text = minor_to_decimal_text(net, DIGITS[currency])
    c = currency.lower()
    rows, bad = _rows(
        _csv(
            f"txn_c,2026-11-26 12:00:01,{c},{text},{fee},{net_text},charge,ch_1,pi_1,po_1,pay-1",
            f"txn_r,2026-11-26 15:00:00,{c},-{text},0,-{text},refund,re_1,pi_1,po_1,pay-1",
            f"txn_d,2026-11-26 16:00:00,{c},-{text},0,-{text},dispute,du_1,pi_1,po_1,pay-1",
        )
    )
    assert bad == []
    transactions = [
        _tx("t-charge", amount, currency, interaction="ch_1"),
        _tx(
            "t-refund",
            amount,
            currency,
            "Refund",
            interaction="re_1",
            at=datetime(2026, 11, 26, 15, 0, tzinfo=UTC),
        ),
        _tx(
            "t-chargeback",
            amount,
            currency,
            "Chargeback",
            interaction="du_1",
            at=datetime(2026, 11, 26, 16, 0, tzinfo=UTC),
        ),
    ]
    result = reconcile_settlement(DAY, transactions, rows)
    assert result.clean
    assert [(i.status, i.type, i.balance_transaction_ids) for i in result.items] == [
        ("matched", "Charge", ("txn_c",)),
        ("matched", "Chargeback", ("txn_d",)),
        ("matched", "Refund", ("txn_r",)),
    ]
    [total] = result.totals
    assert total.fraction_digits == DIGITS[currency]
    assert total.commercetools_minor == total.settled_minor == amount - 2 * amount
    assert total.fee_minor == fee_minor
    assert total.net_minor == -amount - fee_minor
    assert [(p.payout_id, p.rows, p.net_minor) for p in result.payouts] == [
        ("po_1", 3, -amount - fee_minor)
    ]


def test_without_psp_ids_the_payment_reference_matches_preferring_the_same_amount() -> None:
    rows, _ = _rows(
        _csv(
            "txn_a,2026-11-26 12:00:00,gbp,5.00,0.28,4.72,charge,,pi_9,po_1,",
            "txn_b,2026-11-26 12:00:00,gbp,10.00,0.35,9.65,charge,,,po_1,pay-2",
        )
    )
    transactions = [
        _tx("t-2", 1000, payment="pay-2", intent=None),
        _tx("t-9", 500, payment="pay-9", intent="pi_9"),
    ]
    result = reconcile_settlement(DAY, transactions, rows)
    assert result.clean
    assert {i.transaction_id: i.balance_transaction_ids for i in result.items} == {
        "t-2": ("txn_b",),
        "t-9": ("txn_a",),
    }


def test_a_partial_capture_reversal_belongs_to_its_charge() -> None:
    rows, _ = _rows(
        _csv(
            "txn_c,2026-11-26 12:00:00,gbp,50.00,0.95,49.05,charge,ch_1,pi_1,po_1,pay-1",
            "txn_p,2026-11-26 12:00:00,gbp,-10.00,0,-10.00,partial_capture_reversal,ch_1,pi_1,po_1,pay-1",
        )
    )
    [item] = reconcile_settlement(DAY, [_tx("t", 4000, interaction="ch_1")], rows).items
    assert item.status == "matched" and item.balance_transaction_ids == ("txn_c", "txn_p")


def test_unmatched_on_either_side_and_amounts_that_differ_are_named_with_the_amounts() -> None:
    rows, _ = _rows(
        _csv(
            "txn_short,2026-11-26 10:00:00,gbp,44.99,0.87,44.12,charge,ch_short,pi_1,po_1,pay-1",
            "txn_extra,2026-11-26 11:00:00,gbp,12.00,0.38,11.62,charge,ch_extra,pi_x,po_1,",
            "txn_eur,2026-11-26 11:30:00,eur,20.00,0.50,19.50,charge,ch_eur,pi_3,po_2,pay-3",
            "txn_fee,2026-11-26 13:00:00,gbp,-2.00,0,-2.00,fee,,,po_1,",
        )
    )
    transactions = [
        _tx("t-short", 4599, interaction="ch_short", payment="pay-1"),
        _tx("t-missing", 2500, interaction="ch_gone", payment="pay-2", intent="pi_2"),
        _tx("t-eur", 2000, interaction="ch_eur", payment="pay-3", intent="pi_3"),
        _tx("t-paypal", 999, provider="paypal", payment="pay-4", intent=None),
        _tx("t-failed", 999, state="Failure", payment="pay-5", intent=None),
    ]
    result = reconcile_settlement(DAY, transactions, rows)
    assert not result.clean
    found = {(i.status, i.transaction_id or i.balance_transaction_ids[0]): i for i in result.items}
    assert set(found) == {
        ("amount_differs", "t-short"),
        ("missing_in_settlement", "t-missing"),
        ("amount_differs", "t-eur"),
        ("not_in_commercetools", "txn_extra"),
    }
    short = found[("amount_differs", "t-short")]
    assert (short.commercetools_minor, short.settled_minor, short.difference_minor) == (
        4599,
        4499,
        -100,
    )
    assert short.document == "UK-pay-1" and "GBP 44.99" in short.detail
    missing = found[("missing_in_settlement", "t-missing")]
    assert (missing.settled_minor, missing.difference_minor) == (0, -2500)
    eur = found[("amount_differs", "t-eur")]
    assert "settled in EUR 20.00, commercetools has GBP 20.00" in eur.detail
    assert (eur.settled_minor, eur.difference_minor) == (0, -2000)
    extra = found[("not_in_commercetools", "txn_extra")]
    assert (extra.settled_minor, extra.interaction_id) == (1200, "ch_extra")
    totals = {t.currency: t for t in result.totals}
    assert totals["GBP"].difference_abs_minor == 100 + 2500 + 2000 + 1200
    assert totals["GBP"].fee_minor == 87 + 38 and totals["GBP"].gross_minor == 4499 + 1200 - 200
    assert totals["EUR"].fee_minor == 50

    passed, metadata = settlement_verdict(
        items_frame(result.items), settlement_totals_frame(result.totals)
    )
    assert not passed
    assert metadata["items_not_matched"] == 4
    assert (metadata["missing_in_settlement"], metadata["not_in_commercetools"]) == (1, 1)
    assert metadata["amount_differs"] == 2
    assert metadata["not_matched_abs_minor_GBP"] == 100 + 2500 + 2000 + 1200
    assert metadata["fees_minor_GBP"] == 125
    assert set(metadata["not_matched"]["document"].dropna()) == {"UK-pay-1", "UK-pay-2", "UK-pay-3"}


def test_a_charge_just_before_midnight_pairs_with_a_row_just_after_it() -> None:
    late = datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC)  # 23:59:59 in London, winter
    rows, _ = _rows(
        _csv("txn_1,2026-11-27 00:00:02,gbp,10.00,0.35,9.65,charge,ch_1,pi_1,po_1,pay-1")
    )
    transactions = [_tx("t-1", 1000, interaction="ch_1", at=late)]
    today = reconcile_settlement(DAY, transactions, rows)
    assert [i.status for i in today.items] == ["matched"]
    tomorrow = reconcile_settlement(date(2026, 11, 27), transactions, rows)
    assert tomorrow.items == []  # the row is paired, not left over on its own day
    assert tomorrow.totals[0].fee_minor == 35  # the provider booked the fee that day


def test_a_clean_day_passes_the_check_and_an_empty_window_checks_nothing() -> None:
    rows, _ = _rows(_csv("txn_1,2026-11-26 12:00:00,gbp,10.00,0.35,9.65,charge,ch_1,pi_1,po_1,"))
    result = reconcile_settlement(DAY, [_tx("t-1", 1000, interaction="ch_1")], rows)
    passed, metadata = settlement_verdict(
        items_frame(result.items), settlement_totals_frame(result.totals)
    )
    assert passed and metadata["matched"] == 1 and metadata["items_not_matched"] == 0
    wrong = replace(result.items[0], status="missing_in_settlement", difference_minor=-1000)
    passed, _ = settlement_verdict(items_frame([wrong]), settlement_totals_frame(result.totals))
    assert not passed
    import pandas as pd

    assert settlement_verdict(pd.DataFrame(), pd.DataFrame())[0]
