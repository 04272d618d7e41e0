"""The nightly finance run: yesterday's batch, journal, reconciliation and period close."""

import os
from datetime import UTC, datetime

import dagster as dg

from ct_pipelines.defs.finance.logic.days import previous_shop_day
from ct_pipelines.defs.finance.logic.snapshots import FLOW
from ct_pipelines.defs.partitions import order_days
from ct_pipelines.kernel.shop import SHOP

# 02:00 London by default: the shop day is over and late PSP notifications have arrived.
FINANCE_CRON = os.environ.get("CT_PIPELINES_FINANCE_CRON", "0 2 * * *")
FINANCE_TIMEZONE = os.environ.get("CT_PIPELINES_FINANCE_TIMEZONE", "Europe/London")

finance_nightly_job = dg.define_asset_job(
    "finance_nightly",
    selection=dg.AssetSelection.groups(FLOW),
    description="Builds a shop day's financial batch, posts its journals once, reconciles it.",
)


@dg.schedule(
    name="finance_nightly",
    job=finance_nightly_job,
    cron_schedule=FINANCE_CRON,
    execution_timezone=FINANCE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every night: the previous shop day's journal per currency into the ERP, once, "
    "and its reconciliation.",
)
def finance_nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    now = context.scheduled_execution_time or datetime.now(UTC)
    day = previous_shop_day(now).isoformat()
    if day not in set(order_days.get_partition_keys(current_time=now)):
        return dg.SkipReason(f"{day} is before the first shop day {SHOP.orders_start_date}")
    # One run per day however often the tick is evaluated; posting is idempotent anyway.
    return dg.RunRequest(
        run_key=f"finance-nightly:{day}",
        partition_key=day,
        tags={"ct_pipelines/trigger": "finance_nightly"},
    )
