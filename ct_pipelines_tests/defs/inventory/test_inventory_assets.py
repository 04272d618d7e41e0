"""The inventory assets, checks, sensor and schedule against the seeded sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from ct_pipelines.commercetools import CommercetoolsClient
from ct_pipelines.defs.inventory import checks, jobs, schedules
from ct_pipelines.defs.inventory.assets import inventory_snapshots, inventory_sync
from ct_pipelines.defs.inventory.checks import inventory_snapshot_staleness
from ct_pipelines.defs.inventory.logic import InventorySync, load_rules
from ct_pipelines.defs.inventory.logic.settings import InventorySettings, reconcile_cron
from ct_pipelines.defs.inventory.sensors import inventory_stock_movements
from ct_pipelines.defs.resources import build_resources, sandbox_settings
from ct_pipelines_tests.runbook import assert_says_what_to_do
from ct_sandbox import SandboxWorld
from ct_sandbox.db import connect, format_timestamp, transaction
from ct_sandbox.erp_app import record_movement


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    return result.asset_materializations_for_node(asset)[-1].metadata


def _value(metadata: dict[str, Any], key: str) -> Any:
    return metadata[key].value


def test_drift_is_found_then_repaired_by_the_full_reconciliation(sandbox_dir: Path) -> None:
    world = SandboxWorld.open(sandbox_dir)
    injected = world.inject_drift("stock_mismatch", count=5)
    resources = build_resources()

    before = dg.materialize([inventory_snapshots], resources=resources)
    drift = _checks(before)[checks.DRIFT]
    assert not drift.passed
    assert drift.metadata["drifted_entries"].value == 5
    channels = {d["channel_key"] for d in injected["details"]}
    assert sum(drift.metadata[f"drifted:{c}"].value for c in channels) == 5
    assert _checks(before)[checks.UNMAPPED].passed
    assert "5 of " in str(drift.description)
    assert_says_what_to_do(drift.description, checks.DRIFT)

    after = dg.materialize(
        [inventory_sync, inventory_snapshots, inventory_snapshot_staleness], resources=resources
    )
    assert after.success
    sync = _metadata(after, "inventory_sync")
    assert _value(sync, "updated") == 5
    assert _value(sync, "write_requests") == _value(sync, "minimum_write_requests") == 5
    assert _value(sync, "failed") == 0
    assert _value(sync, "dagster/row_count") == 5
    columns = {c.name for c in sync["dagster/column_schema"].schema.columns}
    assert {"sku", "channel_key", "before", "target", "outcome"} <= columns
    results = _checks(after)
    assert results[checks.DRIFT].passed
    assert results[checks.DRIFT].metadata["drifted_entries"].value == 0
    assert results[checks.OVERSELL].passed
    assert results[checks.SYNC_FAILURES].passed
    assert results[checks.STALENESS].passed

    changes = resources["store"].get_store().read_snapshot("inventory_sync_changes")
    assert sorted(changes["outcome"]) == ["updated"] * 5
    # History is kept: two snapshots, so drift can be followed over time.
    assert len(resources["store"].get_store().list_snapshots("inventory_snapshots")) == 2


def test_the_stock_movement_sensor_requests_a_delta_that_writes_only_moved_skus(
    sandbox_dir: Path,
) -> None:
    world = SandboxWorld.open(sandbox_dir)
    resources = build_resources()
    context = dg.build_sensor_context(resources={"erp": resources["erp"]})
    first = inventory_stock_movements(context)
    assert isinstance(first, dg.SensorResult)
    cursor = first.cursor
    assert cursor

    conn = connect(world.db_path)
    at = format_timestamp(world.now())
    with transaction(conn):
        sku = conn.execute(
            "SELECT sku FROM erp_stock WHERE location = 'MAN' AND on_hand > 10 ORDER BY sku"
        ).fetchone()[0]
        record_movement(conn, sku, "MAN", -4, "sale", "test", at)
        record_movement(conn, sku, "MAN", 1, "return", "test", at)
        record_movement(conn, "ANY-SKU", "NOWHERE", 3, "receipt", "test", at)

    second = inventory_stock_movements(
        dg.build_sensor_context(cursor=cursor, resources={"erp": resources["erp"]})
    )
    assert isinstance(second, dg.SensorResult)
    assert len(second.run_requests) == 1
    request = second.run_requests[0]
    assert request.job_name == jobs.inventory_delta_sync_job.name
    config = request.run_config["ops"]["inventory_sync"]["config"]
    assert config == {"mode": "delta", "skus": [sku], "locations": ["MAN"]}
    assert request.run_key == f"inventory-movements:{cursor}-{second.cursor}:0"

    run = dg.materialize([inventory_sync], resources=resources, run_config=request.run_config)
    meta = _metadata(run, "inventory_sync")
    assert _value(meta, "updated") == 1
    assert _value(meta, "compared") == 1
    assert _value(meta, "write_requests") == 1

    third = inventory_stock_movements(
        dg.build_sensor_context(cursor=second.cursor, resources={"erp": resources["erp"]})
    )
    assert isinstance(third, dg.SensorResult)
    assert not third.run_requests
    assert third.cursor == second.cursor


class _BumpBeforeWrite(httpx.BaseTransport):
    """Lets another writer change an entry just before our first write to it arrives."""

    def __init__(self, inner: httpx.BaseTransport, entry_id: str, touch: Callable[[], None]):
        self.inner = inner
        self.entry_id = entry_id
        self.touch = touch
        self.log: list[tuple[str, str, int]] = []
        self.touched = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        first_write = request.method == "POST" and request.url.path.endswith(self.entry_id)
        if first_write and not self.touched:
            self.touched = True
            self.touch()
        response = self.inner.handle_request(request)
        if "/inventory" in request.url.path:
            self.log.append(
                (request.method, request.url.path.rsplit("/", 1)[-1], response.status_code)
            )
        return response


def test_a_version_bumped_during_the_sync_is_re_read_and_converges(sandbox_dir: Path) -> None:
    world = SandboxWorld.open(sandbox_dir)
    drifted = world.inject_drift("stock_mismatch", count=1)["details"][0]
    entry_id = drifted["entry_id"]

    def checkout_reserves_one() -> None:
        # A checkout reserves a unit: version + 1, availableQuantity - 1, stock unchanged.
        def reserve(doc: dict[str, Any]) -> None:
            doc["availableQuantity"] -= 1

        world.documents.update_with("inventory", entry_id, reserve)

    transport = _BumpBeforeWrite(world.commercetools_transport(), entry_id, checkout_reserves_one)
    with CommercetoolsClient(sandbox_settings(), transport=transport) as client:
        result = InventorySync(client, load_rules()).run(
            list(_erp_stock(world)), skus={drifted["sku"]}
        )
    entry = world.documents.get("inventory", entry_id)
    assert entry is not None
    assert entry["quantityOnStock"] == drifted["erp_available"]
    assert entry["quantityOnStock"] - entry["availableQuantity"] == 1  # the reservation kept
    assert result.stats.conflicts == 1
    assert (result.stats.updated, result.stats.failed) == (1, 0)
    writes = [(m, s) for m, i, s in transport.log if i == entry_id]
    assert writes == [("POST", 409), ("GET", 200), ("POST", 200)]


def _erp_stock(world: SandboxWorld) -> Any:
    from ct_pipelines.erp.rest import RestErpClient
    from ct_sandbox import SANDBOX_ERP_URL

    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        yield from erp.iter_stock()


def test_staleness_follows_the_cadence(sandbox_dir: Path) -> None:
    settings = InventorySettings(reconcile_minutes=30)
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    fresh = checks.staleness_result(now - timedelta(minutes=20), now, settings)
    stale = checks.staleness_result(now - timedelta(minutes=36), now, settings)
    never = checks.staleness_result(None, now, settings)
    assert fresh.passed and not stale.passed and not never.passed
    assert stale.metadata["age_minutes"].value == 36.0
    assert stale.metadata["cadence_minutes"].value == 30
    assert "36 minutes old" in str(stale.description)
    assert_says_what_to_do(stale.description, checks.STALENESS)
    assert_says_what_to_do(never.description, checks.STALENESS)

    resources = build_resources()
    result = dg.materialize(
        [inventory_snapshots, inventory_snapshot_staleness],
        resources=resources,
        selection=dg.AssetSelection.checks(inventory_snapshot_staleness),
    )
    assert not _checks(result)[checks.STALENESS].passed  # no snapshot yet


def test_the_reconciliation_cadence_is_configurable() -> None:
    assert schedules.inventory_full_reconciliation_schedule.cron_schedule == "*/30 * * * *"
    env = {"CT_PIPELINES_INVENTORY_RECONCILE_MINUTES": "15"}
    assert InventorySettings.from_env(env).reconcile_cron == "*/15 * * * *"
    assert reconcile_cron(120) == "0 */2 * * *"
    with pytest.raises(ValueError, match="RECONCILE_MINUTES=45 cannot be a regular schedule"):
        InventorySettings.from_env({"CT_PIPELINES_INVENTORY_RECONCILE_MINUTES": "45"})
    with pytest.raises(ValueError, match="is not a whole number"):
        InventorySettings.from_env({"CT_PIPELINES_INVENTORY_WORKERS": "eight"})


def test_a_bad_rules_file_in_the_environment_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"channels": {"wh-manchester": {"sources": ["MAN"], "bufer": {}}}}))
    settings = InventorySettings.from_env({"CT_PIPELINES_INVENTORY_RULES": str(path)})
    with pytest.raises(ValueError, match=r"channels\.wh-manchester\.bufer: unknown setting"):
        settings.load_rules()
