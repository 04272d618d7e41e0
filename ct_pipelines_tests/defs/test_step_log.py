"""The run's event log as the one place to read what a step did: the heartbeat reports a
stalled step, and every flow's warnings (retries, refusals, skips, variances) reach it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import dagster as dg
import pytest

from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders, order_batches
from ct_pipelines.defs.resources import build_resources
from ct_pipelines.defs.step_log import heartbeat
from ct_pipelines.kernel.progress import Progress
from ct_pipelines_tests.defs.order_to_cash.helpers import export_day, past_day, world_for
from ct_pipelines_tests.event_log import event_log_lines
from ct_sandbox.faults import FaultConfig


def test_heartbeat_reports_a_stalled_step_once_its_interval_passed() -> None:
    now = [0.0]
    reported = threading.Event()
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        reported.set()

    progress = Progress("export", 100, report, unit="orders", clock=lambda: now[0])
    with heartbeat(progress, every_seconds=0.01):
        assert not reported.wait(0.05)  # beats, but the fake clock has not moved: quiet
        now[0] = 31.0  # nothing finished for 31 s
        assert reported.wait(30)  # generous: a busy machine only delays the next beat
    assert lines[0].startswith("export: 0/100 orders (0 %)") and "ETA unknown" in lines[0]


def test_heartbeat_off() -> None:
    progress = Progress("export", 1, lambda line: None)
    with heartbeat(progress, every_seconds=0):
        pass


# --- every flow's warnings reach the run's event log, once each ------------------------------


def _warnings(caplog: pytest.LogCaptureFixture, containing: str) -> list[str]:
    """What the code logged (Python logging) at WARNING or above containing ``containing``."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING and containing in r.getMessage()
    ]


def test_order_to_cash_retry_warnings_of_both_clients_reach_the_event_log_once(
    sandbox_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 9)
    world.bulk_orders(3, day=day, payment_kind="paid")
    faults = {"rate_503": 1.0, "retry_after_seconds": 0, "max_faults": 2}
    world.set_faults("erp", FaultConfig(**faults))
    world.set_faults("commercetools", FaultConfig(**faults))
    instance = dg.DagsterInstance.ephemeral()
    try:
        with caplog.at_level(logging.WARNING, logger="ct_pipelines"):
            result = dg.materialize(
                [order_batches, erp_sales_orders],
                partition_key=str(day),
                resources=build_resources(),
                instance=instance,
                run_config={"ops": {"erp_sales_orders": {"config": {"rate_per_second": 0.0}}}},
            )
    finally:
        world.set_faults("erp", None)
        world.set_faults("commercetools", None)
    assert result.success
    for side in ("ERP", "commercetools"):
        logged = _warnings(caplog, f"{side}: transient 503")
        assert len(logged) == 2, (side, logged)
        # Each retry is in the run's event log, exactly once (the asset's own forwarding and
        # the client's do not both write it).
        assert sorted(event_log_lines(instance, result.run_id, f"{side}: transient 503")) == sorted(
            logged
        )


def test_a_checks_retry_warnings_reach_the_checks_own_event_log(
    sandbox_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ct_pipelines.defs.order_to_cash.checks import duplicate_erp_documents

    world = world_for(sandbox_dir)
    world.set_faults("erp", FaultConfig(rate_503=1.0, retry_after_seconds=0, max_faults=1))
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = dg.materialize(
            [duplicate_erp_documents],
            resources=build_resources(),
            instance=instance,
            selection=dg.AssetSelection.all_asset_checks(),
        )
    finally:
        world.set_faults("erp", None)
    assert result.success
    [line] = event_log_lines(instance, result.run_id, "ERP: transient 503")
    assert line.startswith("ct_pipelines.erp.rest: ERP: transient 503 on attempt 1")


def test_inventory_a_forced_refusal_warns_in_the_event_log(sandbox_dir: Path) -> None:
    from ct_pipelines.defs.inventory.assets import inventory_sync
    from ct_sandbox import SandboxWorld
    from ct_sandbox.db import connect, transaction

    world = SandboxWorld.open(sandbox_dir)
    conn = connect(world.db_path)
    with transaction(conn):
        conn.execute("UPDATE erp_stock SET sku = 'ERP-' || sku")  # the ERP re-keyed its items
    instance = dg.DagsterInstance.ephemeral()
    config = {"force": True, "force_reason": "ERP re-keyed", "forced_by": "ops.alice"}
    result = dg.materialize(
        [inventory_sync],
        resources=build_resources(),
        instance=instance,
        run_config={"ops": {"inventory_sync": {"config": config}}},
    )
    assert result.success
    [forced] = event_log_lines(instance, result.run_id, "FORCED past the guard")
    assert "refused before any write" in forced and "the ERP feed matches 0 of" in forced
    assert event_log_lines(instance, result.run_id, "entries not created, their SKUs are no")


def test_product_master_what_the_sync_did_not_send_is_a_warning_in_the_event_log(
    sandbox_dir: Path,
) -> None:
    import json

    from ct_pipelines.defs.product_master.assets import commercetools_products, product_master
    from ct_pipelines.defs.product_master.resources import ProductCatalogResource
    from ct_sandbox import SandboxWorld, db

    world = SandboxWorld.open(sandbox_dir)
    conn = db.connect(world.db_path)
    with db.transaction(conn):
        # A new item priced in USD as well: the project sells in GBP and EUR only.
        conn.execute(
            "INSERT INTO erp_items (item_no, sku, name, attributes, tax_code, active, item_type, "
            "updated_at) VALUES ('GL-1', 'GOLIVE-1', 'Go-live mug', ?, 'S', 1, 'inventory', "
            "'2026-11-01T00:00:00.000Z')",
            (json.dumps({"product_key": "golive"}),),
        )
        for currency, country in (("GBP", "GB"), ("USD", "US")):
            conn.execute(
                "INSERT INTO erp_item_prices (item_no, currency, country, channel_key, "
                "amount_minor, fraction_digits) VALUES ('GL-1', ?, ?, '', 1500, 2)",
                (currency, country),
            )
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [product_master, commercetools_products],
        resources={**build_resources(), "product_catalog": ProductCatalogResource()},
        instance=instance,
    )
    assert result.success
    [line] = event_log_lines(instance, result.run_id, "not sent as the master has them")
    assert "GOLIVE-1" in line and "USD" in line


def test_finance_variances_are_warnings_in_the_event_log_with_their_amounts(
    sandbox_dir: Path,
) -> None:
    from ct_pipelines_tests.defs.finance.helpers import run_finance
    from ct_sandbox import db

    world = world_for(sandbox_dir)
    day = past_day(world, 6)
    [order_id] = world.bulk_orders(1, day=day, payment_kind="paid", with_payments=True, seed=11)
    assert export_day(day).success
    order = world.documents.get("orders", order_id)
    conn = db.connect(world.db_path)
    with db.transaction(conn):  # the ERP lost the order
        (number,) = conn.execute(
            "SELECT sales_order_no FROM erp_sales_orders WHERE external_document_number = ?",
            (order["orderNumber"],),
        ).fetchone()
        conn.execute("DELETE FROM erp_sales_order_lines WHERE sales_order_no = ?", (number,))
        conn.execute("DELETE FROM erp_sales_orders WHERE sales_order_no = ?", (number,))
    instance = dg.DagsterInstance.ephemeral()
    result = run_finance(day, instance=instance)
    assert result.success
    [line] = [
        line
        for line in event_log_lines(instance, result.run_id, f"finance_reconciliation {day}: ")
        if "variances between commercetools and the ERP" in line
    ]
    assert order["orderNumber"] in line and "GBP " in line and "GBP minor units" in line
    assert line.endswith("(check finance_zero_variance)")
    [entry] = [e for e in instance.all_logs(result.run_id) if e.user_message == line]
    assert entry.level == logging.WARNING
