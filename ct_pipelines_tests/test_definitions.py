import subprocess
import sys
from pathlib import Path

import dagster as dg

from ct_pipelines.definitions import defs

PROJECT_ROOT = Path(__file__).parent.parent


def _definitions() -> dg.Definitions:
    loaded = defs()
    return loaded if isinstance(loaded, dg.Definitions) else loaded()


def test_definitions_load_and_validate() -> None:
    loaded = _definitions()
    dg.Definitions.validate_loadable(loaded)
    keys = {key.to_user_string() for key in loaded.resolve_asset_graph().get_all_asset_keys()}
    assert {"product_master", "inventory_snapshots", "order_batches"} <= keys


def test_order_batches_are_daily_in_shop_time_with_single_run_backfills() -> None:
    graph = _definitions().resolve_asset_graph()
    node = graph.get(dg.AssetKey("order_batches"))
    partitions = node.partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.timezone == "Europe/London"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_dagster_cli_validates_the_workspace() -> None:
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# The code location's public surface, listed once so a refactor that renames or drops an asset,
# check, job, sensor or schedule fails here instead of in an operator's bookmarks.
EXPECTED_ASSETS = {
    "commercetools_deliveries",
    "commercetools_products",
    "erp_sales_orders",
    "erp_shipments",
    "failure_patterns",
    "finance_journal_batches",
    "finance_order_totals",
    "finance_payment_transactions",
    "finance_period_close",
    "finance_reconciliation",
    "finance_vat_summary",
    "integration_health",
    "inventory_snapshots",
    "inventory_sync",
    "order_batches",
    "product_master",
}
EXPECTED_CHECKS = {
    "commercetools_deliveries:deliveries_without_tracking_ids",
    "commercetools_deliveries:failed_dispatch_updates",
    "commercetools_products:duplicate_skus",
    "commercetools_products:mastered_fields_in_step",
    "commercetools_products:price_parity",
    "commercetools_products:sku_parity",
    "commercetools_products:tax_category_parity",
    "commercetools_products:variants_without_price",
    "erp_sales_orders:duplicate_erp_documents",
    "erp_sales_orders:orphaned_orders",
    "erp_sales_orders:totals_parity",
    "finance_journal_batches:finance_days_posted",
    "finance_reconciliation:finance_tax_rounding_patterns",
    "finance_reconciliation:finance_zero_variance",
    "inventory_snapshots:inventory_drift",
    "inventory_snapshots:inventory_negative_stock",
    "inventory_snapshots:inventory_oversell_risk",
    "inventory_snapshots:inventory_snapshot_staleness",
    "inventory_snapshots:inventory_unmapped",
    "inventory_sync:inventory_sync_failures",
    "order_batches:tax_rounding",
    "order_batches:unmapped_skus_and_tax_codes",
}
EXPECTED_JOBS = {
    "dispatch_job",
    "exception_queue_job",
    "finance_nightly",
    "inventory_delta_sync",
    "inventory_full_reconciliation",
    "inventory_snapshot_staleness",
    "operations_overview",
    "order_export_job",
    "product_master_sync_job",
}
EXPECTED_SENSORS = {
    "check_failure_alerts",
    "exception_retries",
    "inventory_stock_movements",
    "new_commercetools_orders",
    "new_erp_shipments",
    "run_failure_alerts",
}
EXPECTED_SCHEDULES = {
    "finance_nightly",
    "inventory_full_reconciliation",
    "inventory_snapshot_staleness",
    "operations_overview_hourly",
    "order_export_retry",
}


def test_the_code_location_keeps_its_public_names() -> None:
    repo = _definitions().get_repository_def()
    graph = repo.asset_graph
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= EXPECTED_ASSETS
    checks = {f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys}
    assert checks >= EXPECTED_CHECKS
    assert {j.name for j in repo.get_all_jobs()} - {"__ASSET_JOB"} >= EXPECTED_JOBS
    assert {s.name for s in repo.sensor_defs} >= EXPECTED_SENSORS
    assert {s.name for s in repo.schedule_defs} >= EXPECTED_SCHEDULES


def test_every_check_has_a_description_without_placeholders() -> None:
    graph = _definitions().resolve_asset_graph()
    checks = {key: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert checks
    missing = sorted(key.name for key, spec in checks.items() if not spec.description)
    assert missing == []
    placeholders = sorted(
        key.name for key, spec in checks.items() if " N minutes" in (spec.description or "")
    )
    assert placeholders == []
