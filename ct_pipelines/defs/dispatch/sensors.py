"""The sensor that notices new ERP shipments (and queued failures) and launches dispatch."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from ct_pipelines.defs.dispatch import assets as dispatch_assets
from ct_pipelines.defs.dispatch.logic.trigger import TriggerState, decide, queued_failures
from ct_pipelines.defs.resources import ErpResource, IntegrationStoreResource

# One page is enough to know that something is waiting and to name the batch.
PEEK_LIMIT = 500
STALE_AFTER = timedelta(minutes=30)
RETRY_EVERY = timedelta(minutes=15)


@dg.sensor(
    name="new_erp_shipments",
    target=dispatch_assets.dispatch_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Peeks at the ERP/WMS for shipments past the stored cursor and launches dispatch; "
    "also retries queued dispatch failures every 15 minutes.",
)
def new_erp_shipments(
    context: dg.SensorEvaluationContext, erp: ErpResource, store: IntegrationStoreResource
) -> dg.SensorResult:
    integration_store = store.get_store()
    now = datetime.now(UTC)
    with erp.open_port() as port:
        page = port.shipments_since(
            integration_store.get_cursor(dispatch_assets.SHIPMENTS_CURSOR), PEEK_LIMIT
        )
    pending = [s.shipment_number for s in page.shipments]
    failures = (
        0
        if pending
        else queued_failures(integration_store, now, dispatch_assets.DispatchConfig().retry_days)
    )
    decision = decide(
        TriggerState.from_json(context.cursor),
        pending,
        failures,
        now,
        stale_after=STALE_AFTER,
        retry_every=RETRY_EVERY,
    )
    if decision.run_key is None:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(decision.reason), cursor=decision.state.to_json()
        )
    context.log.info("%s (run key %s)", decision.reason, decision.run_key)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=decision.run_key,
                tags={
                    "ct_pipelines/trigger": "new_erp_shipments",
                    "ct_pipelines/shipments": str(len(pending)),
                    "ct_pipelines/more_waiting": str(page.has_more).lower(),
                },
            )
        ],
        cursor=decision.state.to_json(),
    )
