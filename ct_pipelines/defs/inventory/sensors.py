"""Near-real-time deltas: a sensor on ERP/WMS stock movements since its cursor.

Each tick reads the movements after the cursor (bounded, to stay well inside the sensor
timeout), keeps the SKUs moved at mapped locations and requests delta runs for them, at most
``SKUS_PER_RUN`` SKUs each. A burst larger than ``FULL_RUN_ABOVE`` SKUs (a stocktake, a first
start) requests one full reconciliation instead: reading everything once is cheaper than
hundreds of delta queries. The cursor is the ERP's; run keys derive from it, so a tick whose
cursor update is lost cannot launch the same delta twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ct_pipelines.defs.inventory import jobs
from ct_pipelines.defs.inventory.logic.rules import InventoryRules
from ct_pipelines.defs.inventory.logic.settings import InventorySettings
from ct_pipelines.defs.resources import ErpResource
from ct_pipelines.erp.port import StockMovement

MOVEMENTS_PER_PAGE = 1000
MAX_PAGES_PER_TICK = 20
SKUS_PER_RUN = 1000
FULL_RUN_ABOVE = 20_000

_SETTINGS = InventorySettings.from_env()


@dataclass(frozen=True)
class DeltaRun:
    run_key: str
    job_name: str
    config: dict[str, Any]
    skus: int


def delta_runs(
    movements: Iterable[StockMovement],
    rules: InventoryRules,
    *,
    start_cursor: str | None,
    end_cursor: str | None,
    skus_per_run: int = SKUS_PER_RUN,
    full_run_above: int = FULL_RUN_ABOVE,
) -> tuple[list[DeltaRun], int]:
    """The runs for a batch of movements, and how many movements were at unmapped locations."""
    locations_of: dict[str, set[str]] = defaultdict(set)
    ignored = 0
    for movement in movements:
        if movement.location not in rules.feeds:
            ignored += 1
            continue
        locations_of[movement.sku].add(movement.location)
    if not locations_of:
        return [], ignored
    span = f"{start_cursor or 'start'}-{end_cursor}"
    if len(locations_of) > full_run_above:
        return [
            DeltaRun(
                run_key=f"inventory-movements:{span}:full",
                job_name=jobs.inventory_full_reconciliation_job.name,
                config={"mode": "full"},
                skus=len(locations_of),
            )
        ], ignored
    skus = sorted(locations_of)
    runs = []
    for index, start in enumerate(range(0, len(skus), skus_per_run)):
        chunk = skus[start : start + skus_per_run]
        locations = sorted({loc for sku in chunk for loc in locations_of[sku]})
        runs.append(
            DeltaRun(
                run_key=f"inventory-movements:{span}:{index}",
                job_name=jobs.inventory_delta_sync_job.name,
                config={"mode": "delta", "skus": chunk, "locations": locations},
                skus=len(chunk),
            )
        )
    return runs, ignored


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
    runs, ignored = delta_runs(movements, rules, start_cursor=start, end_cursor=cursor)
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
