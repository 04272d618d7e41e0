"""The finance flow on the sandbox: journals posted once, variances named to the minor unit."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.defs.resources import build_resources
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines.store import IntegrationStore
from ct_pipelines_tests.defs.finance.helpers import (
    check_result,
    journal_creates,
    journal_rows,
    metadata,
    run_finance,
)
from ct_pipelines_tests.defs.order_to_cash.helpers import export_day, past_day, world_for
from ct_pipelines_tests.runbook import assert_says_what_to_do
from ct_sandbox import db

# Ten days back lies before the seeded week of history: the day holds only the orders a test
# puts there, so every figure is known.
DAYS_BACK = 10


def _quiet_day(sandbox_dir: Path, orders: int = 12) -> tuple[Any, date, list[str]]:
    world = world_for(sandbox_dir)
    day = past_day(world, DAYS_BACK)
    ids = world.bulk_orders(orders, day=day, payment_kind="paid", with_payments=True, seed=7)
    export_day(day)
    return world, day, ids


def _store() -> IntegrationStore:
    import os

    return IntegrationStore(os.environ["CT_PIPELINES_DB_URL"])


def _variances(day: date) -> list[dict[str, Any]]:
    frame = _store().read_snapshot("finance_variances", partition_key=day.isoformat())
    return frame.to_dict("records")


def _remove_from_erp(world: Any, document: str) -> None:
    conn = db.connect(world.db_path)
    with db.transaction(conn):
        (number,) = conn.execute(
            "SELECT sales_order_no FROM erp_sales_orders WHERE external_document_number = ?",
            (document,),
        ).fetchone()
        conn.execute("DELETE FROM erp_sales_order_lines WHERE sales_order_no = ?", (number,))
        conn.execute("DELETE FROM erp_sales_orders WHERE sales_order_no = ?", (number,))


def _late_refund(world: Any, order: dict[str, Any], day: date, amount: int) -> str:
    """A refund that happened on ``day`` but reached commercetools after the journal was posted."""
    payment_id = order["paymentInfo"]["payments"][0]["id"]
    at = datetime.combine(day, time(15, 0), tzinfo=SHOP.tz).astimezone(UTC)
    transaction_id = "late-refund-0001"

    def add(doc: dict[str, Any]) -> None:
        doc["transactions"].append(
            {
                "id": transaction_id,
                "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "type": "Refund",
                "amount": {
                    "type": "centPrecision",
                    "currencyCode": "GBP",
                    "centAmount": amount,
                    "fractionDigits": 2,
                },
                "state": "Success",
            }
        )

    world.documents.update_with("payments", payment_id, add)
    return transaction_id


def test_clean_day_reconciles_to_zero_and_posts_one_balanced_journal(sandbox_dir: Path) -> None:
    world, day, ids = _quiet_day(sandbox_dir)
    result = run_finance(
        day, with_checks=True, checks={"finance_zero_variance": {"lookback_days": DAYS_BACK}}
    )
    reconciliation = metadata(result, "finance_reconciliation")
    assert reconciliation["days_with_variance"] == 0
    assert reconciliation["variance_abs_minor_GBP"] == 0
    assert reconciliation["orders_with_variance"] == 0
    assert _variances(day) == []
    totals = _store().read_snapshot("finance_reconciliation", partition_key=day.isoformat())
    orders = totals[totals["metric"] == "orders"].iloc[0]
    assert int(orders["commercetools_minor"]) == int(orders["erp_minor"]) == len(ids)
    assert list(journal_rows(world)) == [f"fin-{day.isoformat()}-GBP"]
    assert check_result(result, "finance_zero_variance").passed
    assert check_result(result, "finance_tax_rounding_patterns").passed


def test_injected_errors_are_named_with_their_amounts_and_nothing_else(sandbox_dir: Path) -> None:
    world, day, ids = _quiet_day(sandbox_dir)
    orders = [world.documents.get("orders", order_id) for order_id in ids]
    missing, rounded, refunded = orders[0], orders[1], orders[2]
    _remove_from_erp(world, missing["orderNumber"])
    world.inject_drift("tax_rounding_error", order_ids=[rounded["id"]])
    first = run_finance(day)
    assert metadata(first, "finance_journal_batches")["batches_posted"] == 1
    creates = journal_creates(world)

    refund_id = _late_refund(world, refunded, day, 1234)
    result = run_finance(
        day,
        with_checks=True,
        checks={
            "finance_zero_variance": {"lookback_days": DAYS_BACK},
            "finance_tax_rounding_patterns": {"lookback_days": DAYS_BACK},
        },
    )
    # The posted journal stays; the late refund goes out as a correcting journal, once.
    journals = metadata(result, "finance_journal_batches")
    assert (journals["batches_posted"], journals["batches_differing"]) == (0, 0)
    assert journal_creates(world) == creates + 1
    assert f"fin-{day.isoformat()}-GBP-c1" in journal_rows(world)

    variances = _variances(day)
    by_document: dict[str, dict[str, int]] = {}
    for v in variances:
        by_document.setdefault(v["document"], {})[v["metric"]] = int(v["variance_minor"])
    # The refund is in the ERP now: only the missing and the re-rounded order remain.
    assert set(by_document) == {missing["orderNumber"], rounded["orderNumber"]}
    assert refund_id not in {v["reference"] for v in variances}

    taxed = missing["taxedPrice"]
    assert by_document[missing["orderNumber"]]["orders"] == -1
    assert by_document[missing["orderNumber"]]["gross"] == -taxed["totalGross"]["centAmount"]
    assert by_document[missing["orderNumber"]]["net"] == -taxed["totalNet"]["centAmount"]
    assert by_document[missing["orderNumber"]]["tax"] == -taxed["totalTax"]["centAmount"]

    rate_metrics = {m for m in by_document[rounded["orderNumber"]] if m.startswith("tax@")}
    assert len(rate_metrics) == 1
    assert by_document[rounded["orderNumber"]] == {"net": 1, "tax": -1, rate_metrics.pop(): -1}

    kinds = {v["document"]: v["kind"] for v in variances}
    assert kinds[missing["orderNumber"]] == "missing_in_erp"
    assert kinds[rounded["orderNumber"]] == "amounts_differ"

    zero = check_result(result, "finance_zero_variance")
    assert not zero.passed and zero.severity == dg.AssetCheckSeverity.ERROR
    assert zero.metadata["orders_behind"].value == 2
    rounding = check_result(result, "finance_tax_rounding_patterns")
    assert not rounding.passed and rounding.severity == dg.AssetCheckSeverity.WARN
    assert rounding.metadata["orders_with_rounding_difference"].value == 1
    assert "GBP " in str(zero.description)  # the variance as people read it
    assert_says_what_to_do(zero.description, "finance_zero_variance")
    assert_says_what_to_do(rounding.description, "finance_tax_rounding_patterns")

    # The VAT summary gives the refund's VAT back at the refunded order's rates.
    vat = _store().read_snapshot("finance_vat_summary", partition_key=day.isoformat())
    day_rows = vat[vat["period"] == "day"]
    assert int(day_rows["refunds_vat_minor"].sum()) > 0
    assert (
        day_rows["net_vat_minor"] == day_rows["output_vat_minor"] - day_rows["refunds_vat_minor"]
    ).all()
    assert set(vat["period"]) == {"day", "month"}

    # A re-run posts nothing more.
    again = metadata(run_finance(day), "finance_journal_batches")
    assert (again["batches_posted"], again["batches_already_posted"]) == (0, 1)
    assert journal_creates(world) == creates + 1


def test_rerunning_a_posted_day_posts_nothing(sandbox_dir: Path) -> None:
    world, day, _ = _quiet_day(sandbox_dir, orders=5)
    run_finance(day)
    assert journal_creates(world) == 1
    again = metadata(run_finance(day), "finance_journal_batches")
    assert (again["batches_posted"], again["batches_already_posted"]) == (0, 1)
    assert journal_creates(world) == 1
    assert list(journal_rows(world)) == [f"fin-{day.isoformat()}-GBP"]


@pytest.mark.slow
def test_a_seven_day_backfill_posts_each_missing_day_once(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    last = past_day(world, 2)
    first = last - timedelta(days=6)
    for n in range(7):  # trade on every day, the seeded week does not reach them all
        world.bulk_orders(3, day=first + timedelta(days=n), payment_kind="paid", with_payments=True)
    # Two days went out before the outage; the other five never did.
    run_finance(first + timedelta(days=1))
    run_finance(first + timedelta(days=4))
    assert journal_creates(world) == 2

    result = run_finance(first, last)
    journals = metadata(result, "finance_journal_batches")
    assert journals["partitions"] == 7
    totals = journals["run_totals"]
    assert (totals["batches_posted"], totals["batches_already_posted"]) == (5, 2)
    days = [(first + timedelta(days=n)).isoformat() for n in range(7)]
    # Each day's materialisation carries that day's own numbers, not the run's.
    per_day = {
        e.partition: e.metadata
        for e in result.asset_materializations_for_node("finance_journal_batches")
    }
    assert sorted(per_day) == days
    assert {d: per_day[d]["batches_posted"].value for d in days} == {
        d: 0 if d in (days[1], days[4]) else 1 for d in days
    }
    for event in result.asset_materializations_for_node("finance_order_totals"):
        frame = (
            build_resources()["store"]
            .get_store()
            .read_snapshot("finance_order_totals", partition_key=event.partition)
        )
        assert event.metadata["dagster/row_count"].value == len(frame)
        assert "dagster/column_schema" in event.metadata and "preview" in event.metadata
    assert list(journal_rows(world)) == [f"fin-{d}-GBP" for d in days]
    assert journal_creates(world) == 7

    again = metadata(run_finance(first, last), "finance_journal_batches")["run_totals"]
    assert (again["batches_posted"], again["batches_already_posted"]) == (0, 7)
    assert journal_creates(world) == 7
    close = metadata(result, "finance_period_close")
    assert close["as_of"] == last.isoformat()
