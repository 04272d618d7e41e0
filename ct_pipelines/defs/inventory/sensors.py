"""Near-real-time deltas: a sensor on ERP/WMS stock movements since its cursor.

Each tick reads the movements after the cursor (bounded, to stay well inside the sensor
timeout), keeps the SKUs moved at mapped locations and requests delta runs for them, at most
``SKUS_PER_RUN`` SKUs each. A burst larger than ``FULL_RUN_ABOVE`` SKUs (a stocktake, a first
start) requests one full reconciliation instead: reading everything once is cheaper than
hundreds of delta queries. The cursor is the ERP's; run keys derive from it, so a tick whose
cursor update is lost cannot launch the same delta twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from ct_pipelines.defs.inventory import jobs
from ct_pipelines.defs.inventory.logic.movements import delta_runs
from ct_pipelines.defs.inventory.logic.settings import InventorySettings
from ct_pipelines.defs.resources import ErpResource
from ct_pipelines.erp.port import StockMovement

MOVEMENTS_PER_PAGE = 1000
MAX_PAGES_PER_TICK = 20

_SETTINGS = InventorySettings.from_env()


def _run_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"ops": {"inventory_sync": {"config": dict(config)}}}


@dg.sensor(
    name="inventory_stock_movements",
    jobs=[jobs.inventory_delta_sync_job, jobs.inventory_full_reconciliation_job],
    minimum_interval_seconds=_SETTINGS.sensor_interval_seconds,
    description=(
        "Requests a delta inventory sync for the SKUs whose stock moved in the ERP/WMS since "
        "the last tick (the cursor is the ERP's stock-movement cursor)."
    ),
)
def inventory_stock_movements(
    context: dg.SensorEvaluationContext, erp: ErpResource
) -> dg.SensorResult:
    rules = InventorySettings.from_env().load_rules()
    start = context.cursor or None
    cursor = start
    movements: list[StockMovement] = []
    with erp.open_port() as port:
        for _ in range(MAX_PAGES_PER_TICK):
            page = port.stock_movements_since(cursor, limit=MOVEMENTS_PER_PAGE)
            movements.extend(page.movements)
            cursor = page.next_cursor or cursor
            if not page.has_more:
                break
    runs, ignored = delta_runs(
        movements,
        rules,
        start_cursor=start,
        end_cursor=cursor,
        delta_job=jobs.inventory_delta_sync_job.name,
        full_job=jobs.inventory_full_reconciliation_job.name,
    )
    if ignored:
        context.log.info("%d stock movements at locations no channel uses", ignored)
    if not runs:
        reason = (
            "no stock movements since the last tick"
            if not movements
            else f"{len(movements)} movements, none at a mapped location"
        )
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run.run_key,
                job_name=run.job_name,
                run_config=_run_config(run.config),
                tags={
                    "ct/stock_movements": f"{start or 'start'}..{cursor}",
                    "ct/skus": str(run.skus),
                },
            )
            for run in runs
        ],
        cursor=cursor,
    )
