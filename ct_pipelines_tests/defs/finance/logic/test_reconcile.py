from __future__ import annotations

from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from ct_pipelines.defs.finance.logic.facts import order_fact
from ct_pipelines.defs.finance.logic.journal import build_journals
from ct_pipelines.defs.finance.logic.reconcile import (
    attribute_erp_orders,
    erp_order_fact,
    rates_by_tax_code,
    reconcile_day,
    totals_frame,
    unmatched_sources,
    variances_frame,
)
from ct_pipelines_tests.defs.finance.logic.builders import erp_sales_order, order, refund

LONDON = ZoneInfo("Europe/London")
DAY = date(2026, 11, 26)
RATES = rates_by_tax_code({"0.2": "S", "0.05": "R", "0.1": "T", "0": "Z"})

CASES = {
    "JPY": [[(1100, "0.1")], [(333, "0.1"), (7, "0.1")]],
    "GBP": [[(1234, "0.2"), (1050, "0.05")], [(999, "0.2")]],
    "KWD": [[(12345, "0.05")], [(1, "0.05"), (10001, "0.05")]],
}


def _day(currency: str, *, shipping: int | None = None, **changes):
    sources = [
        order(f"{currency}-{i}", currency, lines, shipping=shipping, **changes)
        for i, lines in enumerate(CASES[currency])
    ]
    return sources, [order_fact(o, LONDON) for o in sources]


def _erp(sources) -> list:
    return [erp_order_fact(erp_sales_order(o), RATES) for o in sources]


def _total(result, currency: str, metric: str):
    return next(t for t in result.totals if t.currency == currency and t.metric == metric)


@pytest.mark.parametrize("currency", sorted(CASES))
def test_clean_day_reconciles_to_zero_in_every_precision(currency: str) -> None:
    sources, facts = _day(currency, shipping=395 if currency == "GBP" else None)
    refunds = [refund(DAY, "t1", 7, currency=currency, document=f"{currency}-0")]
    journals = build_journals(DAY, facts, refunds)
    result = reconcile_day(DAY, facts, refunds, _erp(sources), journals)
    assert result.balanced
    assert result.variances == []
    gross = _total(result, currency, "gross")
    assert gross.commercetools_minor == gross.erp_minor == sum(f.gross_minor for f in facts)
    assert _total(result, currency, "orders").erp_minor == 2
    assert _total(result, currency, "refunds").erp_minor == 7
    assert {t.fraction_digits for t in result.totals} == {facts[0].fraction_digits}


@pytest.mark.parametrize("currency", sorted(CASES))
def test_an_order_missing_from_the_erp_is_named_with_its_amounts(currency: str) -> None:
    sources, facts = _day(currency)
    result = reconcile_day(DAY, facts, [], _erp(sources[1:]), [])
    missing = facts[0]
    assert {v.document for v in result.variances} == {missing.document}
    assert {v.kind for v in result.variances} == {"missing_in_erp"}
    by_metric = {v.metric: v.variance_minor for v in result.variances}
    assert by_metric["orders"] == -1
    assert by_metric["gross"] == -missing.gross_minor
    assert by_metric["net"] == -missing.net_minor
    assert by_metric["tax"] == -missing.tax_minor
    for rate, tax in missing.tax_by_rate.items():
        assert by_metric[f"tax@{rate}"] == -tax
    gross = _total(result, currency, "gross")
    assert gross.variance_minor == -missing.gross_minor
    assert gross.orders == (missing.document,)


def test_a_tax_rounding_error_is_a_penny_between_net_and_one_rate() -> None:
    clean = order("UK-1", "GBP", [(1234, "0.2")], shipping=395)
    drifted = order("UK-1", "GBP", [(1234, "0.2")], shipping=395, portion_off_by=1)
    other = order("UK-2", "GBP", [(999, "0.05")])
    facts = [order_fact(drifted, LONDON), order_fact(other, LONDON)]
    # The ERP took the order before the drift, line by line.
    result = reconcile_day(DAY, facts, [], _erp([clean, other]), [])
    assert [(v.document, v.kind, v.metric, v.variance_minor) for v in result.variances] == [
        ("UK-1", "amounts_differ", "net", 1),
        ("UK-1", "amounts_differ", "tax", -1),
        ("UK-1", "amounts_differ", "tax@0.2", -1),
    ]
    assert _total(result, "GBP", "gross").variance_minor == 0
    assert _total(result, "GBP", "tax@0.05").variance_minor == 0
    assert _total(result, "GBP", "tax@0.2").orders == ("UK-1",)


def test_a_refund_not_posted_is_named_by_transaction_and_order() -> None:
    sources, facts = _day("GBP")
    posted = refund(DAY, "t-posted", 500, document="GBP-0")
    late = refund(DAY, "t-late", 1234, document="GBP-1", provider="paypal")
    journals = build_journals(DAY, facts, [posted])  # the nightly run saw only the first
    result = reconcile_day(DAY, facts, [posted, late], _erp(sources), journals)
    [variance] = result.variances
    assert (variance.kind, variance.metric, variance.reference, variance.document) == (
        "refund_not_posted",
        "refunds",
        "t-late",
        "GBP-1",
    )
    assert (variance.commercetools_minor, variance.erp_minor, variance.variance_minor) == (
        1234,
        0,
        -1234,
    )
    refunds = _total(result, "GBP", "refunds")
    assert (refunds.commercetools_minor, refunds.erp_minor) == (1734, 500)
    assert refunds.orders == ("GBP-1",)


def test_refunds_the_erp_holds_but_commercetools_does_not_and_chargebacks() -> None:
    chargeback = refund(DAY, "t-cb", 999, kind="Chargeback")
    journals = build_journals(DAY, [], [refund(DAY, "t-ghost", 40), chargeback])
    result = reconcile_day(DAY, [], [], [], journals)
    assert [(v.kind, v.reference, v.variance_minor) for v in result.variances] == [
        ("chargeback_not_in_commercetools", "t-cb", 999),
        ("refund_not_in_commercetools", "t-ghost", 40),
    ]
    # Adjustment batches of the day count, other days' batches do not.
    adjustment = journals[0].model_copy(update={"batch_id": "fin-2026-11-26-GBP-2"})
    next_day = journals[0].model_copy(update={"batch_id": "fin-2026-11-27-GBP"})
    both = reconcile_day(DAY, [], [], [], [adjustment, next_day])
    assert _total(both, "GBP", "refunds").erp_minor == 40


def test_orders_only_the_erp_holds_and_orders_no_longer_eligible() -> None:
    sources, facts = _day("GBP")
    cancelled = replace(facts[1], eligible=False, eligibility_reason="order is cancelled")
    stranger = order("UK-STRANGER", "GBP", [(100, "0.2")])
    result = reconcile_day(DAY, [facts[0], cancelled], [], _erp([*sources, stranger]), [])
    kinds = {(v.document, v.kind) for v in result.variances}
    assert kinds == {
        ("GBP-1", "not_eligible_in_commercetools"),
        ("UK-STRANGER", "only_in_erp"),
    }
    assert _total(result, "GBP", "orders").variance_minor == 2
    detail = next(v.detail for v in result.variances if v.document == "GBP-1")
    assert "cancelled" in detail


def test_erp_orders_are_attributed_to_the_shop_day_of_their_order() -> None:
    # 26 July (summer): the shop day starts at 23:00 UTC on the 25th.
    day = date(2026, 7, 26)
    early = order("UK-EARLY", "GBP", [(100, "0.2")], created="2026-07-25T23:30:00.000Z")
    late = order("UK-LATE", "GBP", [(100, "0.2")], created="2026-07-26T23:30:00.000Z")
    noon = order("UK-NOON", "GBP", [(100, "0.2")], created="2026-07-26T12:00:00.000Z")
    erp = _erp([early, late, noon])
    ghost = replace(erp[2], document="UK-GHOST", source_order_id="gone", sales_order_no="SO-G")
    erp.append(ghost)
    ct_documents = {"UK-EARLY", "UK-NOON"}  # UK-LATE belongs to the 27th
    assert unmatched_sources(day, ct_documents, erp) == ["gone", "id-UK-LATE"]
    kept = attribute_erp_orders(
        day, ct_documents, erp, {"id-UK-LATE": date(2026, 7, 27), "gone": None}
    )
    assert [o.document for o in kept] == ["UK-EARLY", "UK-GHOST", "UK-NOON"]
    assert attribute_erp_orders(day, ct_documents, [replace(erp[0], status="cancelled")], {}) == []


def test_tax_codes_invert_to_rates_and_ambiguity_is_refused() -> None:
    assert rates_by_tax_code({"0.20": "S", "0.05": "R"}) == {"S": "0.2", "R": "0.05"}
    with pytest.raises(ValueError, match="two rates"):
        rates_by_tax_code({"0.2": "S", "0.15": "S"})


def test_frames_keep_every_figure() -> None:
    sources, facts = _day("KWD")
    result = reconcile_day(DAY, facts, [], _erp(sources[1:]), [])
    totals = totals_frame(result.totals)
    variances = variances_frame(result.variances)
    assert int(totals.loc[totals["metric"] == "gross", "variance_minor"].iloc[0]) == -12345
    assert set(variances["document"]) == {"KWD-0"}
    assert totals["orders"].iloc[0] == "KWD-0"


def _erp_copy(source, **changes):
    return replace(erp_order_fact(erp_sales_order(source), RATES), **changes)


def _fails_the_zero_variance_check(result, document: str) -> None:
    from ct_pipelines.defs.finance.logic.checks import variance_verdict

    passed, metadata = variance_verdict(
        totals_frame(result.totals), variances_frame(result.variances), tolerance_minor=0
    )
    assert not passed and metadata["days_over_tolerance"] == 1
    assert document in set(metadata["variances"]["document"])
    assert metadata["variance_abs_minor_GBP"] > 0


def test_the_same_document_twice_in_the_erp_is_a_duplicate_with_its_amount() -> None:
    sources, facts = _day("GBP")
    first = _erp_copy(sources[0])
    twice = replace(first, sales_order_no="SO-dup")
    result = reconcile_day(DAY, facts, [], [first, twice, *_erp(sources[1:])], [])
    assert not result.balanced
    dup = {v.metric: v for v in result.variances if v.kind == "duplicate_in_erp"}
    assert dup["gross"].document == "GBP-0"
    assert dup["gross"].variance_minor == facts[0].gross_minor
    assert dup["orders"].variance_minor == 1
    assert "SO-dup" in dup["gross"].detail
    assert _total(result, "GBP", "gross").variance_minor == facts[0].gross_minor
    _fails_the_zero_variance_check(result, "GBP-0")


def test_two_documents_for_one_order_are_reported() -> None:
    sources, facts = _day("GBP")
    second = _erp_copy(sources[0], document=f"id-{sources[0].id}", sales_order_no="SO-2nd")
    result = reconcile_day(DAY, facts, [], [*_erp(sources), second], [])
    found = [v for v in result.variances if v.kind == "second_document_in_erp"]
    assert {v.document for v in found} == {second.document}
    assert {v.order_id for v in found} == {sources[0].id}
    gross = next(v for v in found if v.metric == "gross")
    assert gross.variance_minor == facts[0].gross_minor
    assert "GBP-0" in gross.detail
    _fails_the_zero_variance_check(result, second.document)


def test_offsetting_variances_are_still_variances_and_fail_the_check() -> None:
    from ct_pipelines.defs.finance.logic.checks import variance_verdict
    from ct_pipelines.defs.finance.logic.rollup import period_close

    sources, facts = _day("GBP")
    erp = _erp(sources)
    erp[0] = replace(erp[0], gross_minor=erp[0].gross_minor + 100)
    erp[1] = replace(erp[1], gross_minor=erp[1].gross_minor - 100)
    result = reconcile_day(DAY, facts, [], erp, [])
    gross = _total(result, "GBP", "gross")
    assert (gross.variance_minor, gross.variance_abs_minor) == (0, 200)
    assert gross.orders == ("GBP-0", "GBP-1")
    assert not result.balanced
    totals, variances = totals_frame(result.totals), variances_frame(result.variances)
    passed, metadata = variance_verdict(totals, variances, tolerance_minor=0)
    assert not passed and metadata["days_over_tolerance"] == 1
    close = period_close("month", DAY, {DAY: totals})
    assert not close.ready_to_close and close.variance_days == (DAY,)
    assert close.variance_abs_minor["GBP"] == 200


def test_an_order_in_the_erp_under_another_currency_is_reported() -> None:
    sources, facts = _day("GBP")
    wrong = _erp_copy(sources[0], currency="EUR")
    result = reconcile_day(DAY, facts, [], [wrong, *_erp(sources[1:])], [])
    kinds = {(v.currency, v.kind) for v in result.variances if v.document == "GBP-0"}
    assert kinds == {("GBP", "missing_in_erp"), ("EUR", "wrong_currency_in_erp")}
    eur = next(v for v in result.variances if v.currency == "EUR" and v.metric == "gross")
    assert eur.variance_minor == facts[0].gross_minor and "in GBP" in eur.detail
    gbp = next(v for v in result.variances if v.currency == "GBP" and v.metric == "gross")
    assert "EUR" in gbp.detail
    from ct_pipelines.defs.finance.logic.checks import variance_verdict

    passed, _ = variance_verdict(
        totals_frame(result.totals), variances_frame(result.variances), tolerance_minor=0
    )
    assert not passed
