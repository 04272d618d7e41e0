"""The hourly refresh of the operations overview."""

import dagster as dg

from ct_pipelines.defs.operations import jobs as operations_jobs
from ct_pipelines.kernel.shop import SHOP

operations_overview_schedule = dg.ScheduleDefinition(
    name="operations_overview_hourly",
    job=operations_jobs.operations_overview_job,
    cron_schedule="7 * * * *",
    execution_timezone=SHOP.timezone,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refreshes failure_patterns and integration_health every hour.",
)
