"""ERP/WMS stock movements to delta runs: chunks of SKUs, or one full run for a burst."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ct_pipelines.defs.inventory.logic.rules import InventoryRules
from ct_pipelines.erp.port import StockMovement

SKUS_PER_RUN = 1000


FULL_RUN_ABOVE = 20_000


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
    delta_job: str,
    full_job: str,
    skus_per_run: int = SKUS_PER_RUN,
    full_run_above: int = FULL_RUN_ABOVE,
) -> tuple[list[DeltaRun], int]:
    """The runs for a batch of movements, and how many movements were at unmapped locations.

    ``delta_job`` runs a chunk of SKUs, ``full_job`` a full reconciliation (for a burst).
    """
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
                job_name=full_job,
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
                job_name=delta_job,
                config={"mode": "delta", "skus": chunk, "locations": locations},
                skus=len(chunk),
            )
        )
    return runs, ignored
