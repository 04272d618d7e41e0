"""A SIGKILLed export run is followed, with no manual step, by a successful export run.

The run worker dies holding the erp_writes slot, as in production; the watchdog sensor (evaluated
here as the daemon would, tick after tick) fails it, frees the slot and asks for the day again,
and that run exports the rest with nothing lost and nothing doubled.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from ct_pipelines.defs.order_to_cash import watchdog
from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders, order_batches
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.defs.order_to_cash.logic.stuck_runs import WORKER_TAG
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    PROJECT_ROOT,
    erp_documents,
    kill_when,
    past_day,
    start_export_worker,
    world_for,
)


def _claimed(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(watchdog.POOL)
    return {slot.run_id for slot in info.claimed_slots}


@pytest.mark.slow
def test_a_killed_export_run_is_failed_freed_and_exported_again(
    sandbox_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setattr(watchdog, "GRACE", timedelta(0))
    instance = dg.DagsterInstance.get()
    world = world_for(sandbox_dir)
    day = past_day(world, 3)
    world.bulk_orders(200, day=day, payment_kind="paid")
    resources = build_resources()
    assert dg.materialize(
        [order_batches], partition_key=day.isoformat(), resources=resources, instance=instance
    ).success
    store = resources["store"].get_store()
    batch = store.read_snapshot("order_batches", partition_key=day.isoformat())
    eligible = set(
        batch.loc[
            batch["eligible"].astype(bool) & batch["sales_order"].notna(),
            "external_document_number",
        ]
    )
    to_create = eligible - set(erp_documents(world))
    assert len(to_create) >= 150

    world.configure_erp(write_latency_ms=200)
    worker = start_export_worker(day, on_instance=True)
    # Killed once the run holds the slot and some orders are in the ERP.
    kill_when(
        worker,
        lambda: bool(_claimed(instance)) and len(set(erp_documents(world)) & to_create) >= 10,
    )
    (dead_run,) = _claimed(instance)
    run = instance.get_run_by_id(dead_run)
    assert run is not None and run.status == dg.DagsterRunStatus.STARTED
    assert run.tags.get(WORKER_TAG)

    # Tick 1 suspects the run, tick 2 confirms it (the grace is 0 here; 60 s by default).
    context = dg.build_sensor_context(instance=instance)
    first = watchdog.stuck_export_runs(context)
    assert isinstance(first, dg.SensorResult) and not first.run_requests
    assert _claimed(instance) == {dead_run}
    second = watchdog.stuck_export_runs(
        dg.build_sensor_context(instance=instance, cursor=first.cursor)
    )
    assert isinstance(second, dg.SensorResult)
    (request,) = second.run_requests or []
    assert request.partition_key == day.isoformat()
    assert request.run_key == f"stuck-export-recovery:{dead_run}"
    failed = instance.get_run_by_id(dead_run)
    assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
    assert _claimed(instance) == set()

    # The recovery run, on the same instance and pool, is not blocked and completes the day.
    world.configure_erp(write_latency_ms=0)
    result = dg.materialize(
        [erp_sales_orders],
        partition_key=request.partition_key,
        resources=build_resources(),
        instance=instance,
        tags=request.tags,
        run_config={"ops": {"erp_sales_orders": {"config": {"rate_per_second": 0.0}}}},
    )
    assert result.success
    documents = erp_documents(world)
    lost = [key for key in eligible if documents.get(key, 0) == 0]
    doubled = [key for key in eligible if documents.get(key, 0) > 1]
    assert (lost, doubled) == ([], [])
    assert store.exported_keys(FLOW, list(eligible)) == eligible
