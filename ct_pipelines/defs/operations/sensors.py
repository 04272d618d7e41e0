"""Operations sensors: launch the retries operators ask for, and alert on failures."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from ct_pipelines.defs.dispatch import assets as dispatch_assets
from ct_pipelines.defs.finance import schedules as finance_schedules
from ct_pipelines.defs.inventory import jobs as inventory_jobs
from ct_pipelines.defs.operations.instance_reads import check_evaluations, latest_evaluation_mark
from ct_pipelines.defs.operations.logic.alerts import StepFailure, run_failure_alert
from ct_pipelines.defs.operations.logic.check_alerts import CheckAlertState, decide_check_alerts
from ct_pipelines.defs.operations.logic.exceptions import (
    RetryTarget,
    pending_retries,
    plan_retry_runs,
)
from ct_pipelines.defs.operations.logic.retry_days import order_day_finder
from ct_pipelines.defs.operations.resources import AlertsResource
from ct_pipelines.defs.operations.retry_targets import RETRY_TARGETS
from ct_pipelines.defs.order_to_cash import sensors as o2c_sensors
from ct_pipelines.defs.partitions import order_days
from ct_pipelines.defs.product_master import jobs as product_master_jobs
from ct_pipelines.defs.resources import CommercetoolsResource, IntegrationStoreResource

_PER_RUN = RetryTarget("", per_order_day=False, behaviour="")
# A freshly started alert sensor looks back this far, not over the whole history.
INITIAL_LOOKBACK = timedelta(hours=1)
EVALUATIONS_PER_TICK = 500
# The exception classes Dagster wraps an op's own exception in.
_WRAPPERS = ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError")
NOT_CONFIGURED = (
    "no alert destination configured: set CT_PIPELINES_ALERT_WEBHOOK_URL and/or "
    "CT_PIPELINES_SLACK_TOKEN"
)


@dg.sensor(
    name="exception_retries",
    jobs=[
        o2c_sensors.order_export_job,
        dispatch_assets.dispatch_job,
        product_master_jobs.product_master_sync_job,
        inventory_jobs.inventory_full_reconciliation_job,
        finance_schedules.finance_nightly_job,
    ],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches the re-processing operators asked for (ct-pipelines exceptions retry, "
    "or exception_queue_job): order_export_job or finance_nightly per shop day, dispatch_job, "
    "product_master_sync_job or inventory_full_reconciliation.",
)
def exception_retries(
    context: dg.SensorEvaluationContext,
    store: IntegrationStoreResource,
    commercetools: CommercetoolsResource,
) -> dg.SensorResult:
    after = int(context.cursor or 0)
    pending = pending_retries(store.get_store(), after)
    if not pending:
        return dg.SensorResult(skip_reason=dg.SkipReason("no retry asked for since the last tick"))
    cursor = str(max(after, *(p.event_id for p in pending)))
    if any(RETRY_TARGETS.get(p.record.flow, _PER_RUN).per_order_day for p in pending):
        with commercetools.open_client() as client:
            runs, unplanned = plan_retry_runs(pending, order_day_finder(client), RETRY_TARGETS)
    else:
        runs, unplanned = plan_retry_runs(pending, lambda record: None, RETRY_TARGETS)
    valid_days = set(order_days.get_partition_keys())
    requests = []
    for run in runs:
        if run.partition_key is not None and run.partition_key not in valid_days:
            context.log.warning(
                "exceptions %s: day %s is outside the order_days partitions",
                run.exception_ids,
                run.partition_key,
            )
            continue
        requests.append(
            dg.RunRequest(
                run_key=run.run_key,
                job_name=run.job_name,
                partition_key=run.partition_key,
                tags={
                    "ct_pipelines/trigger": "exception_retries",
                    "ct_pipelines/exceptions": ",".join(map(str, run.exception_ids))[:200],
                },
            )
        )
    for record, reason in unplanned:
        context.log.warning("exception %s (%s) not relaunched: %s", record.id, record.flow, reason)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


@dg.sensor(
    name="check_failure_alerts",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends an alert for every asset check that fails with ERROR severity (once per "
    "incident, again after 6 hours if still failing) and an all-clear when it passes again.",
)
def check_failure_alerts(
    context: dg.SensorEvaluationContext, alerts: AlertsResource
) -> dg.SensorResult:
    state = CheckAlertState.from_json(context.cursor)
    if state.after is None:
        since = datetime.now(UTC) - INITIAL_LOOKBACK
        evaluations = check_evaluations(context.instance, since=since, limit=EVALUATIONS_PER_TICK)
    else:
        evaluations = check_evaluations(
            context.instance,
            after_storage_id=state.after,
            since=state.seen_at(),
            limit=EVALUATIONS_PER_TICK,
        )
    if not alerts.configured:
        newest = latest_evaluation_mark(context.instance)
        if newest is not None:
            state.after, state.after_at = newest
        return dg.SensorResult(skip_reason=dg.SkipReason(NOT_CONFIGURED), cursor=state.to_json())
    messages, next_state = decide_check_alerts(
        state, evaluations, ui_url=alerts.link_base(), secrets=alerts.secrets()
    )
    if next_state.after is None:
        newest = latest_evaluation_mark(context.instance)
        if newest is not None:
            next_state.after, next_state.after_at = newest
    # A delivery failure raises: the cursor stays put and the next tick tries again.
    for message in messages:
        alerts.send(message)
    if not messages:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{len(evaluations)} check evaluations, nothing to alert"),
            cursor=next_state.to_json(),
        )
    context.log.info("sent %d check alerts", len(messages))
    return dg.SensorResult(cursor=next_state.to_json())


@dg.run_failure_sensor(
    name="run_failure_alerts",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends an alert when a run of this code location fails: job, failed steps and "
    "error type, never the data the run was handling.",
)
def run_failure_alerts(
    context: dg.RunFailureSensorContext, alerts: AlertsResource
) -> dg.SkipReason | None:
    if not alerts.configured:
        return dg.SkipReason(NOT_CONFIGURED)
    failures = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        # Dagster wraps the op's own exception; the cause is what people need to see.
        while error is not None and error.cause is not None and error.cls_name in _WRAPPERS:
            error = error.cause
        failures.append(
            StepFailure(
                step=event.step_key or "?",
                error_type=error.cls_name if error is not None else None,
                message=error.message if error is not None else None,
            )
        )
    run = context.dagster_run
    alerts.send(
        run_failure_alert(
            job=run.job_name,
            run_id=run.run_id,
            partition=run.tags.get("dagster/partition"),
            failures=failures,
            run_message=context.failure_event.message,
            ui_url=alerts.link_base(),
            secrets=alerts.secrets(),
        )
    )
    return None
