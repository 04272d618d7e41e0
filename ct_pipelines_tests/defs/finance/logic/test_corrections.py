"""A posted day that changes gets a correcting journal for the difference, once."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ct_pipelines.defs.finance.logic.facts import order_fact, refund_tax_by_rate
from ct_pipelines.defs.finance.logic.journal import JournalAccounts, build_journals
from ct_pipelines.defs.finance.logic.posting import journal_rows
from ct_pipelines.defs.finance.logic.reconcile import (
    erp_order_fact,
    rates_by_tax_code,
    reconcile_day,
)
from ct_pipelines.erp.port import JournalBatch, JournalPosting, PostedJournalBatch
from ct_pipelines_tests.defs.finance.logic.builders import erp_sales_order, order, refund

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 26)
LATER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
RATES = rates_by_tax_code({"0.2": "S", "0.05": "R", "0": "Z"})
LOG = logging.getLogger(__name__)


class FakeJournalPort:
    def __init__(self) -> None:
        self.batches: dict[str, PostedJournalBatch] = {}
        self.posts = 0

    def iter_journal_batches(self, posting_date: date):
        return [b for b in self.batches.values() if b.posting_date == posting_date]

    def post_journal_batch(self, batch: JournalBatch) -> JournalPosting:
        self.posts += 1
        number = f"JN-{len(self.batches) + 1}"
        self.batches[batch.batch_id] = PostedJournalBatch(
            **batch.model_dump(), journal_no=number, posted_at=LATER
        )
        total = sum(line.debit_minor for line in batch.lines)
        return JournalPosting(
            batch_id=batch.batch_id,
            journal_no=number,
            posting_date=batch.posting_date,
            currency=batch.currency,
            total_debit_minor=total,
            total_credit_minor=total,
            line_count=len(batch.lines),
            posted_at=LATER,
        )


def _rows(port, orders, transactions):
    return journal_rows(DAY, orders, transactions, JournalAccounts(), True, port, LATER, LOG)


def test_a_refund_after_posting_is_one_correcting_journal_with_its_vat() -> None:
    source = order("UK-1", "GBP", [(1200, "0.2"), (1050, "0.05")], shipping=395)
    facts = [order_fact(source, LONDON)]
    charge = refund(DAY, "t-charge", facts[0].gross_minor, document="UK-1")
    charge = charge.__class__(**{**charge.__dict__, "type": "Charge"})
    port = FakeJournalPort()
    [row] = _rows(port, facts, [charge])
    assert row["status"] == "posted" and port.posts == 1

    late = refund(DAY, "t-refund", 1200, document="UK-1")
    vat = refund_tax_by_rate(1200, source)
    assert set(vat) == {"0.2", "0.05"} and sum(vat.values()) > 0
    late = late.__class__(**{**late.__dict__, "tax_by_rate": vat})
    [row] = _rows(port, facts, [charge, late])
    assert row["status"] == "corrected" and port.posts == 2
    assert row["batch_id"] == "fin-2026-11-26-GBP"
    correction = port.batches["fin-2026-11-26-GBP-c1"]
    assert "fin-2026-11-26-GBP" in correction.description
    lines = {(line.account, line.debit_minor, line.credit_minor) for line in correction.lines}
    assert lines == {
        ("4900", 1200 - sum(vat.values()), 0),  # refund net of VAT
        ("2200", vat["0.2"], 0),  # output VAT given back, per rate
        ("2205", vat["0.05"], 0),
        ("1210", 0, 1200),  # PSP receivable
    }
    assert {line.reference for line in correction.lines if line.account != "1210"} == {"t-refund"}

    # A re-run posts nothing.
    [row] = _rows(port, facts, [charge, late])
    assert row["status"] == "already_posted" and port.posts == 2

    # The day reconciles to 0 against the original plus its correction.
    result = reconcile_day(
        DAY,
        facts,
        [charge, late],
        [erp_order_fact(erp_sales_order(source), RATES)],
        list(port.batches.values()),
    )
    assert result.variances == [] and result.balanced
    # ... and what the ERP holds for the day is exactly the journal rebuilt from scratch.
    [full] = build_journals(DAY, facts, [charge, late])
    held: dict[str, int] = {}
    for batch in port.batches.values():
        for line in batch.lines:
            held[line.account] = held.get(line.account, 0) + line.debit_minor - line.credit_minor
    want: dict[str, int] = {}
    for line in full.lines:
        want[line.account] = want.get(line.account, 0) + line.debit_minor - line.credit_minor
    assert {k: v for k, v in held.items() if v} == {k: v for k, v in want.items() if v}


def test_a_cancellation_after_posting_reverses_only_that_order() -> None:
    kept = order("UK-1", "GBP", [(1200, "0.2")])
    cancelled = order("UK-2", "GBP", [(500, "0.05")])
    facts = [order_fact(kept, LONDON), order_fact(cancelled, LONDON)]
    port = FakeJournalPort()
    _rows(port, facts, [])
    [row] = _rows(port, facts[:1], [])
    assert row["status"] == "corrected"
    correction = port.batches["fin-2026-11-26-GBP-c1"]
    assert sum(line.debit_minor for line in correction.lines) == 500
    [row] = _rows(port, facts[:1], [])
    assert row["status"] == "already_posted" and port.posts == 2


def test_a_full_refund_gives_back_exactly_the_orders_vat() -> None:
    source = order("UK-1", "KWD", [(12345, "0.05"), (1001, "0")])
    portions = {
        format(p.rate.normalize(), "f"): p.amount.cent_amount
        for p in source.taxed_price.tax_portions
    }
    assert refund_tax_by_rate(source.taxed_price.total_gross.cent_amount, source) == {
        k: v for k, v in portions.items() if v
    }
    assert refund_tax_by_rate(0, source) == {}


def test_vat_summary_per_day_and_month_with_refunds_reducing_output_vat() -> None:
    from ct_pipelines.defs.finance.logic.vat import day_vat, month_to_date_vat

    source = order("UK-1", "GBP", [(1200, "0.2"), (1050, "0.05")])
    facts = [order_fact(source, LONDON)]
    back = refund(DAY, "t-refund", 1200, document="UK-1")
    back = back.__class__(**{**back.__dict__, "tax_by_rate": refund_tax_by_rate(1200, source)})
    first = day_vat(DAY, facts, [back])
    rows = {r["rate"]: r for r in first.to_dict("records")}
    portions = {
        format(p.rate.normalize(), "f"): p.amount.cent_amount
        for p in source.taxed_price.tax_portions
    }
    assert rows["0.2"]["output_vat_minor"] == portions["0.2"]
    assert rows["0.2"]["refunds_vat_minor"] == back.tax_by_rate["0.2"]
    assert rows["0.2"]["net_vat_minor"] == portions["0.2"] - back.tax_by_rate["0.2"]
    second_day = date(2026, 11, 27)
    other = order("UK-2", "GBP", [(600, "0.2")], created="2026-11-27T10:00:00.000Z")
    second = day_vat(second_day, [order_fact(other, LONDON)], [])
    month = month_to_date_vat(second_day, {DAY: first, second_day: second})
    standard = month[month["rate"] == "0.2"].iloc[0]
    assert standard["output_vat_minor"] == portions["0.2"] + 100
    assert standard["net_vat_minor"] == portions["0.2"] + 100 - back.tax_by_rate["0.2"]
    assert (standard["period"], standard["first_day"]) == ("month", "2026-11-01")
