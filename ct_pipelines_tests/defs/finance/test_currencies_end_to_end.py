"""JPY (0 digits), GBP (2) and KWD (3) end to end through the sandbox ERP.

The sandbox commercetools project sells in GBP and EUR only, so the orders are generated (every
tax rounding and calculation mode, tax-inclusive and net prices, high-precision prices, product
and order-level discounts; ``test_money_properties.orders``), mapped by the real order-to-cash
mapping, written to the sandbox ERP over HTTP through the real REST adapter, read back, posted
as the day's journal and reconciled from what the ERP holds. Each example is its own shop day.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ct_pipelines.commercetools.models import Order
from ct_pipelines.defs.finance.logic.facts import order_fact
from ct_pipelines.defs.finance.logic.journal import build_journals
from ct_pipelines.defs.finance.logic.reconcile import erp_order_fact, reconcile_day
from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
from ct_pipelines.defs.resources import build_resources
from ct_pipelines.kernel.tax import TaxCodeTable
from ct_pipelines_tests.defs.finance.logic.test_money_properties import (
    ACCOUNTS,
    LONDON,
    _check_lines,
    orders,
)
from ct_pipelines_tests.defs.order_to_cash.helpers import world_for
from ct_sandbox import db

UK_RATES = ("0.2", "0.05", "0")
CODES = {"0.2": "S", "0.05": "R", "0": "Z"}
FIRST_DAY = date(2026, 10, 20)  # well before the sandbox's seeded week
_days = itertools.count()
_numbers = itertools.count(1)


def _mapping(sandbox_dir: Path) -> SalesOrderMapping:
    conn = db.connect(world_for(sandbox_dir).db_path)
    items = [
        row[0]
        for row in conn.execute(
            "SELECT item_no FROM erp_items WHERE item_type = 'inventory' AND active = 1 "
            "ORDER BY item_no LIMIT 6"
        )
    ]
    return SalesOrderMapping(
        item_numbers={f"SKU-{i}": item for i, item in enumerate(items)},
        tax_codes=TaxCodeTable(by_rate={Decimal(r): c for r, c in CODES.items()}),
    )


def _on(order: Order, day: date, number: int) -> Order:
    at = datetime.combine(day, time(12, 0), tzinfo=LONDON).astimezone(UTC)
    return order.model_copy(
        update={
            "created_at": at,
            "last_modified_at": at,
            "order_number": f"E2E-{number}",
            "id": f"e2e-order-{number}",
        }
    )


def _run_day(sandbox_dir: Path, day_orders: list[Order]) -> None:
    day = FIRST_DAY - timedelta(days=next(_days))
    placed = [_on(o, day, next(_numbers)) for o in day_orders]
    mapping = _mapping(sandbox_dir)
    facts = [order_fact(o, LONDON, tax_codes=mapping.tax_codes) for o in placed]
    assert all(f.problem is None for f in facts), [f.problem for f in facts]
    with build_resources()["erp"].open_port() as port:
        for source in placed:
            draft = _check_lines(source, mapping)
            # The sandbox ERP validates like a picky ERP (totals, line amounts, items, tax
            # codes, the currency's fraction digits): a refusal here is an order parked.
            held = port.upsert_sales_order(draft, idempotency_key=f"test-{source.id}")
            assert held.totals == draft.totals and held.fraction_digits == draft.fraction_digits
        journals = build_journals(day, facts, [], ACCOUNTS)
        for batch in journals:
            port.post_journal_batch(batch)
        rates = {code: rate for rate, code in CODES.items()}
        erp = [erp_order_fact(o, rates) for o in port.iter_sales_orders(day)]
        posted = list(port.iter_journal_batches(day))
    assert sorted(o.document for o in erp) == sorted(f.document for f in facts)
    # A day with money has its journal (a day of zero-priced orders has nothing to post).
    assert {b.currency for b in posted} == {f.currency for f in facts if f.gross_minor}
    for batch in posted:
        assert sum(x.debit_minor for x in batch.lines) == sum(x.credit_minor for x in batch.lines)
    result = reconcile_day(day, facts, [], erp, posted, ACCOUNTS)
    assert result.balanced, result.variances
    # Nothing of an order-level discount sits on the rounding account.
    for batch in posted:
        discounted = [f for f in facts if f.currency == batch.currency and f.discount_by_tax_code]
        if discounted and not any(f.tax_rounding for f in facts if f.currency == batch.currency):
            assert all(line.account != ACCOUNTS.rounding for line in batch.lines)


@settings(
    max_examples=24,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    currency=st.sampled_from(["JPY", "GBP", "KWD"]),
    data=st.data(),
)
def test_generated_orders_run_through_the_sandbox_erp_and_reconcile_to_zero(
    sandbox_dir: Path, currency: str, data: Any
) -> None:
    day_orders = data.draw(
        st.lists(orders(currencies=[currency], rates=UK_RATES), min_size=1, max_size=4)
    )
    _run_day(sandbox_dir, day_orders)


@pytest.mark.parametrize("currency", ["JPY", "KWD"])
def test_jpy_and_kwd_with_order_discounts_reach_the_erp_and_its_journals(
    sandbox_dir: Path, currency: str
) -> None:
    """At least one discounted day in each of the 0- and 3-digit currencies, whatever the draw."""
    found: list[Order] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(order=orders(currencies=[currency], rates=UK_RATES))
    def collect(order: Order) -> None:
        if order.discount_on_total_price is not None and len(found) < 3:
            found.append(order)

    collect()
    assert len(found) == 3
    assert {o.total_price.fraction_digits for o in found} == {{"JPY": 0, "KWD": 3}[currency]}
    _run_day(sandbox_dir, found)
