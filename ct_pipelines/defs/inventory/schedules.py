"""The full reconciliation (default every 30 minutes) and the staleness check's schedule.

The cadence is CT_PIPELINES_INVENTORY_RECONCILE_MINUTES (see ct_pipelines.defs.inventory.logic.settings).
Both start stopped, as every schedule here: switching automation on is a deployment decision.
"""

from __future__ import annotations

import dagster as dg

from ct_pipelines.defs.inventory import jobs
from ct_pipelines.defs.inventory.logic.settings import InventorySettings

_SETTINGS = InventorySettings.from_env()

inventory_full_reconciliation_schedule = dg.ScheduleDefinition(
    name="inventory_full_reconciliation",
    cron_schedule=_SETTINGS.reconcile_cron,
    job=jobs.inventory_full_reconciliation_job,
    execution_timezone="UTC",
    description=(
        f"Every {_SETTINGS.reconcile_minutes} minutes: compare every SKU and supply channel with "
        "the ERP/WMS and write the differences the stock-movement sensor missed."
    ),
)

inventory_staleness_schedule = dg.ScheduleDefinition(
    name="inventory_snapshot_staleness",
    cron_schedule="*/10 * * * *",
    job=jobs.inventory_staleness_job,
    execution_timezone="UTC",
    description="Every 10 minutes: is the latest inventory snapshot younger than its cadence?",
)
