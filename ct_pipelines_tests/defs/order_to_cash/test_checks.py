"""The order-to-cash checks catch what they are named after, with the orders named."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ct_pipelines.defs.order_to_cash import checks
from ct_pipelines.defs.resources import build_resources
from ct_pipelines.erp.port import SalesOrderDraft
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines_tests.defs.order_to_cash.helpers import export_day, past_day, world_for
from ct_pipelines_tests.runbook import assert_says_what_to_do
from ct_sandbox import SANDBOX_ERP_URL


def _run_check(check: dg.AssetChecksDefinition) -> dg.AssetCheckEvaluation:
    resources = build_resources()
    result = dg.materialize(
        [check], resources=resources, selection=dg.AssetSelection.all_asset_checks()
    )
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_clean_export_passes_and_a_sale_in_the_erp_twice_is_caught(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 1)
    world.bulk_orders(5, day=day, payment_kind="paid")
    assert export_day(day).success
    for check in (
        checks.duplicate_erp_documents,
        checks.totals_parity,
        checks.unmapped_skus_and_tax_codes,
    ):
        evaluation = _run_check(check)
        assert evaluation.passed, (check, evaluation.metadata)

    # The same order reaches the ERP a second time under another document number.
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        [first] = [o for o in erp.iter_sales_orders(day)][:1]
        copy = SalesOrderDraft.model_validate(
            {
                **first.model_dump(),
                "external_document_number": f"DUP-{first.external_document_number}"[:35],
            }
        )
        erp.upsert_sales_order(copy, idempotency_key="duplicate-test")
    evaluation = _run_check(checks.duplicate_erp_documents)
    assert not evaluation.passed
    assert evaluation.metadata["duplicate_documents"].value == 2
    assert evaluation.metadata["orders_affected"].value == 1
    assert first.external_document_number in evaluation.metadata["duplicates"].value
    assert first.external_document_number in (evaluation.description or "")
    assert_says_what_to_do(evaluation.description, "duplicate_erp_documents")


def test_tax_rounding_check_names_the_order_with_the_injected_error(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    drift = world.inject_drift("tax_rounding_error")
    [order_id] = drift["order_ids"]
    order = world.documents.get("orders", order_id)
    from datetime import datetime

    from ct_pipelines.kernel.shop import SHOP

    day = (
        datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00")).astimezone(SHOP.tz).date()
    )
    assert export_day(day).success
    evaluation = _run_check(checks.tax_rounding)
    assert not evaluation.passed
    assert evaluation.metadata["orders_with_rounding_differences"].value == 1
    assert (order.get("orderNumber") or order_id) in evaluation.metadata["orders"].value
    assert (order.get("orderNumber") or order_id) in (evaluation.description or "")
    assert "GBP 0.0" in (evaluation.description or "")  # a penny or so, as people read it
    assert_says_what_to_do(evaluation.description, "tax_rounding")


def test_the_batch_checks_pass_before_any_recent_day_is_materialised(sandbox_dir: Path) -> None:
    """A fresh deployment whose first runs export older days (a backfill beyond the checks'
    lookback, as the production-profile test does): no batch in the window is no finding."""
    world = world_for(sandbox_dir)
    old_day = past_day(world, 12)
    world.bulk_orders(3, day=old_day, payment_kind="paid")
    assert export_day(old_day).success
    for check in (checks.orphaned_orders, checks.tax_rounding):
        evaluation = _run_check(check)
        assert evaluation.passed, evaluation.description
