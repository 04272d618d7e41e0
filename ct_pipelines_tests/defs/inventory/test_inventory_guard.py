"""Destructive inventory plans are refused before any write, against the seeded sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from ct_pipelines.defs.inventory import checks
from ct_pipelines.defs.inventory.assets import inventory_sync
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.runbook import assert_says_what_to_do
from ct_sandbox import SandboxWorld
from ct_sandbox.db import connect, transaction


def _inventory(world: SandboxWorld) -> dict[str, tuple[int, int]]:
    """Every entry's (version, quantityOnStock): unchanged means nothing was written."""
    return {
        doc["id"]: (doc["version"], doc["quantityOnStock"])
        for doc in world.documents.iter_all("inventory")
    }


def _guard(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    return next(
        e for e in result.get_asset_check_evaluations() if e.check_name == checks.SYNC_GUARD
    )


def _erp_sql(world: SandboxWorld, sql: str, *args: Any) -> None:
    conn = connect(world.db_path)
    with transaction(conn):
        conn.execute(sql, args)


def test_an_erp_feed_whose_skus_do_not_match_the_shop_is_refused_with_zero_writes(
    sandbox_dir: Path,
) -> None:
    world = SandboxWorld.open(sandbox_dir)
    # The ERP keys its items differently: none of its SKUs is a shop SKU.
    _erp_sql(world, "UPDATE erp_stock SET sku = 'ERP-' || sku")
    before = _inventory(world)
    resources = build_resources()

    run = dg.materialize([inventory_sync], resources=resources, raise_on_error=False)

    assert not run.success
    assert _inventory(world) == before  # zero inventory writes, no creates
    failure = run.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None
    assert "refused before any write" in failure.message
    assert "the ERP feed matches 0 of" in failure.message
    guard = _guard(run)
    assert not guard.passed
    assert guard.severity == dg.AssetCheckSeverity.ERROR
    assert guard.metadata["feed_matched_skus"].value == 0
    assert guard.metadata["shop_skus"].value > 200
    details = guard.metadata["details"].value
    assert isinstance(details, dict)
    assert details["shop_skus_missing_from_feed"]  # the SKUs are named (first N)
    assert len(details["shop_skus_missing_from_feed"]) <= 20
    assert details["unknown_sku_creates_dropped"] > 0  # ERP-* never becomes an entry
    queued = resources["store"].get_store().list_exceptions(flow="inventory")
    assert [e.category for e in queued] == ["sync_refused"]


def test_zeroing_more_than_a_fifth_of_a_channel_is_refused(sandbox_dir: Path) -> None:
    world = SandboxWorld.open(sandbox_dir)
    _erp_sql(
        world,
        "UPDATE erp_stock SET on_hand = 0, reserved = 0 WHERE location = 'MAN' AND sku IN "
        "(SELECT sku FROM erp_stock WHERE location = 'MAN' AND on_hand > 0 ORDER BY sku "
        "LIMIT (SELECT COUNT(*) * 3 / 10 FROM erp_stock WHERE location = 'MAN' AND on_hand > 0))",
    )
    before = _inventory(world)
    run = dg.materialize([inventory_sync], resources=build_resources(), raise_on_error=False)
    assert not run.success
    assert _inventory(world) == before
    guard = _guard(run)
    assert guard.severity == dg.AssetCheckSeverity.ERROR and not guard.passed
    assert "channel wh-manchester" in str(guard.description)
    assert_says_what_to_do(guard.description, "inventory_sync_guard")
    assert guard.metadata["zeroed:wh-manchester"].value > 0
    assert guard.metadata["zeroed:store-london"].value == 0


def test_force_overrides_the_guard_with_an_audit_row_and_still_creates_no_unknown_sku(
    sandbox_dir: Path,
) -> None:
    world = SandboxWorld.open(sandbox_dir)
    _erp_sql(world, "UPDATE erp_stock SET sku = 'ERP-' || sku")
    entries_before = len(_inventory(world))
    resources = build_resources()
    config = {
        "ops": {
            "inventory_sync": {
                "config": {
                    "force": True,
                    "force_reason": "ERP re-keyed, stock really is gone",
                    "forced_by": "ops.alice",
                }
            }
        }
    }
    run = dg.materialize([inventory_sync], resources=resources, run_config=config)
    assert run.success
    assert len(_inventory(world)) == entries_before  # no entry for an ERP-* SKU
    guard = _guard(run)
    assert not guard.passed and guard.metadata["forced"].value is True
    assert str(guard.description).startswith("FORCED by an operator")
    assert_says_what_to_do(guard.description, "inventory_sync_guard")
    store = resources["store"].get_store()
    audit = store.list_exceptions(flow="inventory", category="guard_override", status="resolved")
    assert len(audit) == 1
    assert audit[0].resolved_by == "ops.alice"
    assert "ERP re-keyed" in str(audit[0].resolution_note)


def test_force_without_a_reason_is_refused(sandbox_dir: Path) -> None:
    config = {"ops": {"inventory_sync": {"config": {"force": True}}}}
    run = dg.materialize(
        [inventory_sync], resources=build_resources(), run_config=config, raise_on_error=False
    )
    assert not run.success


def test_a_normal_reconciliation_passes_the_guard(sandbox_dir: Path) -> None:
    run = dg.materialize([inventory_sync], resources=build_resources())
    assert run.success
    assert _guard(run).passed
