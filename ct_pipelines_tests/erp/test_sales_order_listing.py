"""Listing a day's sales orders and journal batches: what finance reconciles against."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from ct_pipelines.erp.errors import ErpValidationError
from ct_pipelines.erp.port import ErpPort, JournalBatch
from ct_pipelines.erp.rest import RestErpClient
from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld
from ct_sandbox import db as sandbox_db


@pytest.fixture
def world(sandbox_dir: Path) -> Iterator[SandboxWorld]:
    world = SandboxWorld.open(sandbox_dir)
    yield world
    world.close()


def _client(world: SandboxWorld, page_size: int = 500) -> RestErpClient:
    return RestErpClient(
        SANDBOX_ERP_URL, None, transport=world.erp_transport(), page_size=page_size
    )


def _busiest_date(world: SandboxWorld) -> tuple[date, list[str]]:
    conn = sandbox_db.connect(world.db_path)
    day, _ = conn.execute(
        "SELECT order_date, COUNT(*) FROM erp_sales_orders GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchone()
    numbers = [
        row[0]
        for row in conn.execute(
            "SELECT sales_order_no FROM erp_sales_orders WHERE order_date = ? ORDER BY 1", (day,)
        )
    ]
    return date.fromisoformat(day), numbers


def test_a_days_sales_orders_page_through_once_each_with_their_lines(
    world: SandboxWorld,
) -> None:
    day, expected = _busiest_date(world)
    assert len(expected) > 7
    with _client(world, page_size=7) as erp:
        orders = list(erp.iter_sales_orders(day))
        assert [o.sales_order_no for o in orders] == expected
        assert {o.order_date for o in orders} == {day}
        for order in orders[:3]:
            assert order.lines and order.lines_add_up()
            assert order == erp.find_sales_order(order.external_document_number)


def test_a_date_without_orders_lists_nothing(world: SandboxWorld) -> None:
    with _client(world) as erp:
        assert list(erp.iter_sales_orders(date(2020, 1, 1))) == []


def test_journal_batches_of_a_posting_date_come_back_with_their_lines(
    world: SandboxWorld,
) -> None:
    def batch(batch_id: str, posting_date: str, amount: int) -> JournalBatch:
        return JournalBatch.model_validate(
            {
                "batch_id": batch_id,
                "posting_date": posting_date,
                "currency": "GBP",
                "fraction_digits": 2,
                "lines": [
                    {"line_no": 1, "account": "1250", "debit_minor": amount},
                    {"line_no": 2, "account": "4900", "credit_minor": amount, "reference": "t1"},
                ],
            }
        )

    posted = [
        batch(f"fin-2026-11-26-GBP{suffix}", "2026-11-26", 100) for suffix in ("", "-2", "-3")
    ]
    with _client(world, page_size=2) as erp:
        for journal in [*posted, batch("fin-2026-11-25-GBP", "2026-11-25", 5)]:
            erp.post_journal_batch(journal)
        found = list(erp.iter_journal_batches(date(2026, 11, 26)))
        assert [b.batch_id for b in found] == [b.batch_id for b in posted]
        assert [b.lines for b in found] == [b.lines for b in posted]
        assert all(b.journal_no.startswith("GJ") for b in found)
        assert list(erp.iter_journal_batches(date(2026, 11, 24))) == []


def test_the_date_is_required_and_checked(world: SandboxWorld) -> None:
    with _client(world) as erp:
        assert isinstance(erp, ErpPort)
        with pytest.raises(ErpValidationError, match="order_date"):
            erp._request("GET", "/sales-orders", params={"order_date": "26/11/2026"})
        with pytest.raises(ErpValidationError, match="posting_date"):
            erp._request("GET", "/journal-batches")
