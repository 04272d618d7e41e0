"""The sensor that notices new and changed commercetools orders and launches their export.

Incremental: each run request carries the ids of the orders it is for (at most
``ORDERS_PER_RUN``, in order of placement) in its run config, under both ``order_batches`` and
``erp_sales_orders``, so the run reads and exports only those orders while the day's partition
stays the bookkeeping unit. Run config survives a re-execution from the UI and Dagster's run
retries, and operators see the ids in the run's config. A run without ids (a backfill, the hourly
retry, a launch from the UI) rebuilds the whole day, as before.

Nothing is lost when a run fails: the sensor's cursor moves on once the run is requested, so each
tick also looks at the incremental runs that failed or were cancelled in the last day and asks
again for their orders (same config, run key ``order-export-retry-of:<run id>``), unless the run
was already re-executed, retried by Dagster or recovered by the ``stuck_export_runs`` watchdog.
After ``MAX_ATTEMPTS`` it stops and logs it; the orders then wait for the hourly
``order_export_retry`` (those already in the day's batch) and the ``orphaned_orders`` check.
"""

import os
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from ct_pipelines.defs.order_to_cash import assets as o2c
from ct_pipelines.defs.order_to_cash.logic import polling
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
# At most this many orders per run: a run stays short (its orders reach the ERP soon after the
# tick) and its run config small enough to read in the UI.
ORDERS_PER_RUN = 1_000
SCOPE_TAG = "ct_pipelines/export_scope"  # "orders" on incremental runs
ATTEMPT_TAG = "ct_pipelines/attempt"
RETRY_OF_TAG = "ct_pipelines/retry_of"
RECOVERS_TAG = "ct_pipelines/recovers"  # set by the stuck_export_runs watchdog
MAX_ATTEMPTS = 3
RETRY_LOOKBACK = timedelta(days=1)
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
    description=(
        "Polls commercetools for orders created or modified since its cursor and exports those "
        "orders (run config order_ids, 1,000 a run); asks again for failed runs' orders."
    ),
)
def new_commercetools_orders(
    context: dg.SensorEvaluationContext, commercetools: CommercetoolsResource
) -> dg.SensorResult | dg.SkipReason:
    cursor = PollCursor.from_json(context.cursor)
    with commercetools.open_client() as client:
        channel_id = export_channel_id(client, EXPORT_CHANNEL_KEY)
        fresh, next_cursor, more = poll_order_changes(
            client,
            cursor,
            datetime.now(UTC),
            limit=polling.MAX_CHANGES_PER_TICK,
            export_channel_id=channel_id,
        )
    valid_days = set(order_days.get_partition_keys())
    requests = order_run_requests(fresh, valid_days, log=context.log)
    retries = failed_run_requests(context.instance, datetime.now(UTC), log=context.log)
    context.log.info(
        "%d new or changed orders in %d runs%s; %d failed runs asked for again",
        len(fresh),
        len(requests),
        "; more waiting" if more else "",
        len(retries),
    )
    if not fresh and not retries:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no new or changed orders since the last tick"),
            cursor=next_cursor.to_json(),
        )
    return dg.SensorResult(run_requests=[*requests, *retries], cursor=next_cursor.to_json())


def order_ids_config(order_ids: Sequence[str]) -> dict:
    """The run config of an incremental export run: the same ids for both assets."""
    ids = list(order_ids)
    return {
        "ops": {
            "order_batches": {"config": {"order_ids": ids}},
            "erp_sales_orders": {"config": {"order_ids": ids}},
        }
    }


def order_run_requests(
    changes: Sequence[OrderChange], valid_days: set[str], *, log=None
) -> list[dg.RunRequest]:
    """One run per day and ``ORDERS_PER_RUN`` orders, the earliest placed first."""
    by_day: dict[str, list[OrderChange]] = defaultdict(list)
    for change in changes:
        by_day[change.created_at.astimezone(SHOP.tz).date().isoformat()].append(change)
    requests = []
    for day, found in sorted(by_day.items()):
        if day not in valid_days:
            if log is not None:
                log.warning("orders dated %s fall outside the order_days partitions; skipped", day)
            continue
        placed = sorted(found, key=lambda c: (c.created_at, c.order_id))
        for start in range(0, len(placed), ORDERS_PER_RUN):
            chunk = placed[start : start + ORDERS_PER_RUN]
            requests.append(
                dg.RunRequest(
                    run_key=run_key(day, chunk),
                    partition_key=day,
                    run_config=order_ids_config([c.order_id for c in chunk]),
                    tags={
                        "ct_pipelines/trigger": "new_commercetools_orders",
                        "ct_pipelines/orders": str(len(chunk)),
                        SCOPE_TAG: "orders",
                        ATTEMPT_TAG: "1",
                    },
                )
            )
    return requests


def _order_ids_of(run: dg.DagsterRun) -> list[str]:
    run_config: dict[str, Any] = dict(run.run_config or {})
    ops: dict[str, Any] = run_config.get("ops") or {}
    config: dict[str, Any] = (ops.get("erp_sales_orders") or {}).get("config") or {}
    return [str(order_id) for order_id in config.get("order_ids") or []]


def failed_run_requests(
    instance: dg.DagsterInstance, now: datetime, *, log=None
) -> list[dg.RunRequest]:
    """Ask again for the orders of incremental export runs that failed or were cancelled."""
    failed = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=order_export_job.name,
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
            tags={SCOPE_TAG: "orders"},
            updated_after=now - RETRY_LOOKBACK,
        ),
        limit=500,
    )
    requests = []
    for run in failed:
        ids = _order_ids_of(run)
        day = run.tags.get("dagster/partition")
        if not ids or not day:
            continue
        followed = any(
            instance.get_runs(filters=dg.RunsFilter(tags={tag: run.run_id}), limit=1)
            for tag in ("dagster/parent_run_id", RETRY_OF_TAG, RECOVERS_TAG)
        )
        if followed:
            continue
        attempt = int(run.tags.get(ATTEMPT_TAG, "1"))
        if attempt >= MAX_ATTEMPTS:
            if log is not None:
                log.warning(
                    "run %s (%d orders of %s) failed %d times; not asked for again: the hourly "
                    "order_export_retry and the orphaned_orders check take over",
                    run.run_id,
                    len(ids),
                    day,
                    attempt,
                )
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"order-export-retry-of:{run.run_id}",
                partition_key=day,
                # The failed run's own config: the same orders, with the same settings.
                run_config=dict(run.run_config),
                tags={
                    "ct_pipelines/trigger": "new_commercetools_orders",
                    "ct_pipelines/orders": str(len(ids)),
                    SCOPE_TAG: "orders",
                    ATTEMPT_TAG: str(attempt + 1),
                    RETRY_OF_TAG: run.run_id,
                },
            )
        )
    return requests
