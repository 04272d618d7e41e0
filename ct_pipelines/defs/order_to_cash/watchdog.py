"""A dead export run never holds the ERP: the stuck_export_runs watchdog and the orphan check job.

A SIGKILLed or OOM-killed run worker leaves its run STARTED and its ``erp_writes`` pool slot
claimed; every later export (sensor, hourly retry, backfill) would wait behind it. Each tick the
watchdog looks at the runs holding ``erp_writes`` slots and at every STARTED export run: one whose
recorded worker process is gone on two ticks ``grace`` apart is marked failed, its slots are
freed, and its days are exported again (the ledger makes that safe). Slots still held by runs
that already finished are freed at once rather than after ``free_slots_after_run_end_seconds``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.storage.dagster_run import FINISHED_STATUSES

from ct_pipelines.defs.order_to_cash.checks import orphaned_orders
from ct_pipelines.defs.order_to_cash.logic.stuck_runs import (
    WORKER_TAG,
    RunSeen,
    WorkerIdentity,
    judge,
    read_suspects,
    worker_alive,
    write_suspects,
)
from ct_pipelines.defs.order_to_cash.sensors import (
    ATTEMPT_TAG,
    RECOVERS_TAG,
    SCOPE_TAG,
    order_export_job,
)
from ct_pipelines.kernel.shop import SHOP

POOL = "erp_writes"
# How long a run must stay dead between two ticks before it is failed (see logic/stuck_runs.py).
GRACE = timedelta(seconds=int(os.environ.get("CT_PIPELINES_STUCK_RUN_GRACE_SECONDS", "60")))
_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def _recovery_request(run: dg.DagsterRun) -> dg.RunRequest | None:
    tags = {"ct_pipelines/trigger": "stuck_export_runs", RECOVERS_TAG: run.run_id}
    key = f"stuck-export-recovery:{run.run_id}"
    if run.tags.get(SCOPE_TAG) == "orders" and run.tags.get("dagster/partition"):
        # An incremental run: the same orders again, not the whole day.
        attempt = int(run.tags.get(ATTEMPT_TAG, "1")) + 1
        return dg.RunRequest(
            run_key=key,
            partition_key=run.tags["dagster/partition"],
            run_config=run.run_config,
            tags={
                **tags,
                SCOPE_TAG: "orders",
                ATTEMPT_TAG: str(attempt),
                "ct_pipelines/orders": run.tags.get("ct_pipelines/orders", ""),
            },
        )
    if run.tags.get("dagster/partition"):
        return dg.RunRequest(run_key=key, partition_key=run.tags["dagster/partition"], tags=tags)
    if all(run.tags.get(tag) for tag in _RANGE_TAGS):
        return dg.RunRequest(run_key=key, tags={**tags, **{t: run.tags[t] for t in _RANGE_TAGS}})
    return None


@dg.sensor(
    name="stuck_export_runs",
    job=order_export_job,
    minimum_interval_seconds=60,
    # A safety net, not a feature to opt into: it runs from the first start of the daemon.
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Fails export runs whose worker process died (SIGKILL, OOM, host restart), frees the "
        "erp_writes slot they hold and exports their days again."
    ),
)
def stuck_export_runs(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    storage = instance.event_log_storage
    now = datetime.now(UTC)
    holders = {slot.run_id for slot in storage.get_concurrency_info(POOL).claimed_slots}
    started = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=order_export_job.name, statuses=[dg.DagsterRunStatus.STARTED]
        )
    )
    runs = {run.run_id: run for run in started}
    for run_id in holders - runs.keys():
        held = instance.get_run_by_id(run_id)
        if held is None or held.status in FINISHED_STATUSES:
            freed = storage.free_concurrency_slots_for_run(run_id)
            context.log.info(f"freed {freed} {POOL} slots of finished run {run_id}")
        elif held.status == dg.DagsterRunStatus.STARTED:
            runs[run_id] = held
    seen = []
    for run in runs.values():
        worker = WorkerIdentity.from_tag(run.tags.get(WORKER_TAG))
        seen.append(RunSeen(run.run_id, worker, worker_alive(worker) if worker else None))
    verdict = judge(seen, read_suspects(context.cursor), now, GRACE)
    requests = []
    for run_id in verdict.dead:
        run = runs[run_id]
        message = (
            f"The export worker of this run ({run.tags.get(WORKER_TAG)}) is gone; marked failed "
            f"by the stuck_export_runs watchdog, its {POOL} slot freed and its days exported again."
        )
        instance.report_run_failed(run, message)
        storage.free_concurrency_slots_for_run(run_id)
        context.log.warning(f"run {run_id}: {message}")
        request = _recovery_request(run)
        if request is not None:
            requests.append(request)
    return dg.SensorResult(
        run_requests=requests,
        cursor=write_suspects(verdict.suspects),
        skip_reason=None
        if requests
        else dg.SkipReason(
            f"{len(runs)} export runs started, {len(verdict.suspects)} suspected dead, none confirmed"
        ),
    )


# The orphaned-orders check on its own, so it runs even while an export run waits for the pool.
orphaned_orders_job = dg.define_asset_job(
    "orphaned_orders_job",
    selection=dg.AssetSelection.checks(orphaned_orders),
    description="Runs the orphaned_orders check alone, outside the export job and its pool.",
)


@dg.schedule(
    name="orphaned_orders_every_30_minutes",
    job=orphaned_orders_job,
    cron_schedule="*/30 * * * *",
    execution_timezone=SHOP.timezone,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Looks for eligible orders missing from the ERP every 30 minutes.",
)
def orphaned_orders_every_30_minutes(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    stamp = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y%m%dT%H%M")
    return dg.RunRequest(run_key=f"orphaned-orders:{stamp}")
