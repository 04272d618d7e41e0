"""The exception queue in the UI: the exception_queue asset's table, and retry by category
through a job with typed config, followed until the exception closes."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg

from ct_pipelines.definitions import defs as project_definitions
from ct_pipelines.defs.operations.assets import exception_queue
from ct_pipelines.defs.operations.jobs import retry_exceptions_job
from ct_pipelines.defs.operations.sensors import exception_retries
from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders, order_batches
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.defs.order_to_cash.helpers import past_day, world_for
from ct_sandbox.faults import FaultConfig


def _queue(resources: dict) -> dict:
    result = dg.materialize([exception_queue], resources={"store": resources["store"]})
    assert result.success
    [event] = result.asset_materializations_for_node("exception_queue")
    return event.metadata


def test_retry_by_category_from_a_job_closes_the_exception(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 1).isoformat()
    world.bulk_orders(2, day=past_day(world, 1), payment_kind="paid")
    resources = build_resources()
    store = resources["store"].get_store()
    assert dg.materialize([order_batches], partition_key=day, resources=resources).success
    # The ERP is down: the export parks the day's orders as transient_exhausted.
    world.set_faults("erp", FaultConfig(rate_503=1.0, retry_after_seconds=0, seed=5))
    try:
        parked_run = dg.materialize(
            [erp_sales_orders],
            partition_key=day,
            resources=resources,
            run_config={
                "ops": {
                    "erp_sales_orders": {
                        "config": {"rate_per_second": 0.0, "max_attempts": 1, "write_back": "none"}
                    }
                }
            },
        )
    finally:
        world.set_faults("erp", None)
    assert parked_run.success
    parked = store.list_exceptions(flow="order_to_cash", category="transient_exhausted")
    assert parked and all(r.status == "open" for r in parked)

    # The queue shows them in the UI as a table, with the amount formatted and how to retry.
    metadata = _queue(resources)
    table = metadata["queue"].value
    rows = {r.data["id"]: r.data for r in table.records}
    for record in parked:
        row = rows[record.id]
        assert row["status"] == "open" and row["entity"] == record.entity_key
        assert row["reason"] == record.reason  # the full reason, not cut
        assert re.fullmatch(r"(GBP|EUR) [\d,]+\.\d\d", row["amount"]) and row["amount_minor"] > 0
        assert "retry_exceptions_job" in row["retry"]
    assert metadata["open"].value >= len(parked)
    assert metadata["dagster/row_count"].value == len(table.records)

    # Retry every open transient_exhausted exception of order_to_cash: typed config, no YAML.
    retried = retry_exceptions_job.execute_in_process(
        run_config={
            "ops": {
                "retry_exceptions_by_category": {
                    "config": {
                        "category": "transient_exhausted",
                        "flow": "order_to_cash",
                        "actor": "ops.carol",
                    }
                }
            }
        },
        resources={"store": resources["store"]},
    )
    assert retried.success
    assert retried.output_for_node("retry_exceptions_by_category")["flagged"] == len(parked)
    assert {store.get_exception(r.id).status for r in parked} == {"retrying"}

    # The sensor launches the day's export; the export succeeds and closes the exceptions.
    definitions = project_definitions()
    tick = exception_retries.evaluate_tick(
        dg.build_sensor_context(resources=resources, definitions=definitions)
    )
    assert [(r.job_name, r.partition_key) for r in tick.run_requests] == [("order_export_job", day)]
    job = definitions.resolve_job_def("order_export_job")
    assert job.execute_in_process(partition_key=day, resources=resources).success
    assert {store.get_exception(r.id).status for r in parked} == {"resolved"}
    rows = {r.data["id"]: r.data for r in _queue(resources)["queue"].value.records}
    assert all(rows[r.id]["status"] == "resolved" for r in parked)


def test_retry_by_category_needs_an_actor(sandbox_dir: Path) -> None:
    resources = build_resources()
    result = retry_exceptions_job.execute_in_process(
        run_config={
            "ops": {"retry_exceptions_by_category": {"config": {"category": "unknown_sku"}}}
        },
        resources={"store": resources["store"]},
        raise_on_error=False,
    )
    assert not result.success
