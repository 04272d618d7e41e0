"""The sensor that notices new and changed commercetools orders and launches their export."""

import os
from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg

from ct_pipelines.defs.order_to_cash import assets as o2c
from ct_pipelines.defs.order_to_cash.logic.polling import (
    OrderChange,
    PollCursor,
    poll_order_changes,
    run_key,
)
from ct_pipelines.defs.order_to_cash.logic.write_back import export_channel_id
from ct_pipelines.defs.partitions import order_days
from ct_pipelines.defs.resources import CommercetoolsResource
from ct_pipelines.kernel.shop import SHOP

EXPORT_CHANNEL_KEY = "erp-order-export"
EXPORT_MAX_RUNTIME_SECONDS = int(os.environ.get("CT_PIPELINES_EXPORT_MAX_RUNTIME_SECONDS", "10800"))


order_export_job = dg.define_asset_job(
    "order_export_job",
    selection=dg.AssetSelection.assets(o2c.order_batches, o2c.erp_sales_orders),
    description="Maps a day's orders and exports the eligible ones to the ERP.",
    # A bound on every export run, so run monitoring fails one whose worker died where the
    # stuck_export_runs watchdog cannot see it (another host).
    tags={"dagster/max_runtime": str(EXPORT_MAX_RUNTIME_SECONDS)},
)


@dg.sensor(
    name="new_commercetools_orders",
    job=order_export_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls commercetools for orders created or modified since its cursor and exports their days.",
)
def new_commercetools_orders(
    context: dg.SensorEvaluationContext, commercetools: CommercetoolsResource
) -> dg.SensorResult | dg.SkipReason:
    cursor = PollCursor.from_json(context.cursor)
    with commercetools.open_client() as client:
        channel_id = export_channel_id(client, EXPORT_CHANNEL_KEY)
        fresh, next_cursor, more = poll_order_changes(
            client, cursor, datetime.now(UTC), export_channel_id=channel_id
        )
    if not fresh:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no new or changed orders since the last tick"),
            cursor=next_cursor.to_json(),
        )
    by_day: dict[str, list[OrderChange]] = defaultdict(list)
    for change in fresh:
        by_day[change.created_at.astimezone(SHOP.tz).date().isoformat()].append(change)
    valid_days = set(order_days.get_partition_keys())
    requests = []
    for day, changes in sorted(by_day.items()):
        if day not in valid_days:
            context.log.warning(
                "orders dated %s fall outside the order_days partitions; skipped", day
            )
            continue
        requests.append(
            dg.RunRequest(
                run_key=run_key(day, changes),
                partition_key=day,
                tags={
                    "ct_pipelines/trigger": "new_commercetools_orders",
                    "ct_pipelines/orders": str(len(changes)),
                },
            )
        )
    context.log.info(
        "%d new or changed orders over %d days%s",
        len(fresh),
        len(requests),
        "; more waiting" if more else "",
    )
    return dg.SensorResult(run_requests=requests, cursor=next_cursor.to_json())
