"""An order's journey: exported, shipped, a dispatch hiccup, then a failed dispatch update."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.cli import main
from ct_pipelines.defs.dispatch.assets import commercetools_deliveries, erp_shipments
from ct_pipelines.defs.operations.logic.trace import trace_order
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.defs.order_to_cash.helpers import export_day, past_day, world_for
from ct_sandbox import db as world_db
from ct_sandbox.erp_app import record_shipment
from ct_sandbox.faults import FaultConfig


def exported_open_order(world: Any, store: Any) -> tuple[str, str, dict[str, Any]]:
    """An order our export put in the ERP that the ERP has not shipped: (SO, number, order)."""
    exported = {e.entity_key for e in store.ledger.list("order_to_cash", "exported")}
    conn = world_db.connect(world.db_path)
    for sales_order, document in conn.execute(
        "SELECT sales_order_no, external_document_number FROM erp_sales_orders "
        "WHERE status = 'open' ORDER BY sales_order_no"
    ):
        order = world.documents.get_by("orders", "orderNumber", document)
        if document in exported and order and not order["shippingInfo"].get("deliveries"):
            return sales_order, document, order
    raise AssertionError("no exported, unshipped order")


def dispatch(resources: dict[str, Any]) -> None:
    assert dg.materialize([erp_shipments, commercetools_deliveries], resources=resources).success


def test_trace_shows_each_step_with_its_time_and_the_failure_reason(
    sandbox_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = world_for(sandbox_dir)
    assert export_day(past_day(world, 1)).success
    resources = build_resources()
    store = resources["store"].get_store()
    sales_order, document, order = exported_open_order(world, store)
    lines = [
        {"sku": li["variant"]["sku"], "quantity": li["quantity"]}
        for li in order["lineItems"]
        if li.get("variant", {}).get("sku")
    ]
    conn = world_db.connect(world.db_path)
    with world_db.transaction(conn):
        shipment = record_shipment(
            conn,
            sales_order,
            document,
            lines,
            "DPD",
            ["15509990001"],
            world.now().isoformat().replace("+00:00", "Z"),
        )
    # First attempt loses every race with other writers; the next run gets through.
    world.set_faults("commercetools", FaultConfig(rate_409=1.0))
    dispatch(resources)
    world.set_faults("commercetools", None)
    dispatch(resources)
    assert world.documents.get("orders", order["id"])["shipmentState"] == "Shipped"
    world.inject_drift("failed_dispatch_update", order_ids=[order["id"]])

    with (
        resources["commercetools"].open_client() as client,
        resources["erp"].open_port() as port,
    ):
        trace = trace_order(document, client=client, port=port, store=store, now=datetime.now(UTC))

    steps = trace.sorted_steps()
    assert all(step.at is not None for step in steps)
    assert [s.at for s in steps] == sorted(s.at for s in steps)  # type: ignore[type-var]
    named = [(s.system, s.step) for s in steps]
    expected = [
        ("commercetools", "order placed"),
        ("integration", "exported to the ERP"),
        ("ERP/WMS", f"shipped as {shipment}"),
        ("integration", f"shipment {shipment} sent to commercetools"),
        ("commercetools", "dispatch update missing"),
    ]
    positions = [named.index(step) for step in expected]
    assert positions == sorted(positions)
    # The seed may have put the order in the ERP before our export found it there (recovered).
    assert named.index(("ERP/WMS", f"sales order {sales_order} created")) < positions[2]
    assert any(s.step.startswith("payment ") for s in steps)
    # The hiccup and how it ended, from the exception queue's history.
    history = [s.step for s in steps if s.system == "exception queue"]
    assert any("version_conflict) recorded by" in step for step in history)
    assert any("auto resolved by" in step for step in history)
    [missing] = [s for s in steps if s.step == "dispatch update missing"]
    assert missing.status == "failed"
    assert f"shipped {shipment}" in missing.detail and "delivery missing" in missing.detail
    assert "shipment state Ready" in missing.detail
    assert trace.where_now.startswith("stalled: failed dispatch update")
    assert trace.shipment_state == "Ready"

    assert main(["trace", document]) == 0
    printed = capsys.readouterr().out
    assert f"Order {document}" in printed and "delivery missing" in printed
    assert f"shipped as {shipment}" in printed and "DPD, tracking 15509990001" in printed
    assert "@" not in printed  # no customer e-mail
