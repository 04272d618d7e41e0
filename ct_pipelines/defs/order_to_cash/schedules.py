"""Hourly retry of what order-to-cash parked: once a cause is fixed, the orders go through."""

from datetime import UTC, datetime

import dagster as dg

from ct_pipelines.defs.order_to_cash import sensors
from ct_pipelines.defs.order_to_cash.logic.checks import days_needing_retry
from ct_pipelines.defs.resources import IntegrationStoreResource
from ct_pipelines.kernel.shop import SHOP


@dg.schedule(
    name="order_export_retry",
    job=sensors.order_export_job,
    cron_schedule="15 * * * *",
    execution_timezone=SHOP.timezone,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-runs the days that still hold eligible orders not in the ERP (parked or missed).",
)
def order_export_retry(context: dg.ScheduleEvaluationContext, store: IntegrationStoreResource):
    now = context.scheduled_execution_time or datetime.now(UTC)
    days = days_needing_retry(store.get_store(), now)
    if not days:
        return dg.SkipReason("every eligible order of the last 30 days is in the ERP")
    stamp = now.strftime("%Y%m%dT%H%M")
    return [
        dg.RunRequest(
            run_key=f"order-export-retry:{day}:{stamp}",
            partition_key=day,
            tags={"ct_pipelines/trigger": "order_export_retry"},
        )
        for day in days
    ]
