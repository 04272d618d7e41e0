"""Jobs for operators: work the exception queue, refresh the overview, re-sync the product master."""

from datetime import UTC, datetime

import dagster as dg

from ct_pipelines.defs.metadata import markdown_table
from ct_pipelines.defs.operations.assets import GROUP
from ct_pipelines.defs.operations.logic.exceptions import (
    UNRESOLVED,
    ExceptionFilter,
    QueueActionError,
    records_table,
    resolve,
    retry,
    select,
)
from ct_pipelines.defs.operations.retry_targets import RETRY_TARGETS
from ct_pipelines.defs.resources import IntegrationStoreResource

ACTIONS = ("list", "retry", "resolve")


class ExceptionQueueConfig(dg.Config):
    """One action on the exception queue: on the ids given, or on what the filter matches."""

    action: str = "list"  # list | retry | resolve
    # Who acts (required for retry and resolve; recorded in the audit trail).
    actor: str = ""
    # Why: required for resolve ("credit note raised", "SKU created in ERP").
    note: str = ""
    ids: list[int] = []
    flow: str | None = None
    category: str | None = None
    entity_key: str | None = None
    sku: str | None = None
    channel: str | None = None
    older_than_hours: float | None = None
    status: list[str] = list(UNRESOLVED)
    # Acting on every unresolved exception (no ids, no filter) must be asked for explicitly.
    all_matching: bool = False

    def where(self) -> ExceptionFilter:
        return ExceptionFilter(
            flow=self.flow,
            status=tuple(self.status),
            category=self.category,
            entity_key=self.entity_key,
            sku=self.sku,
            channel=self.channel,
            older_than_hours=self.older_than_hours,
        )


@dg.op(
    description="Lists, retries or resolves exceptions; every change is audited with who and why."
)
def work_exception_queue(
    context: dg.OpExecutionContext, config: ExceptionQueueConfig, store: IntegrationStoreResource
) -> dg.Output[dict]:
    if config.action not in ACTIONS:
        raise dg.Failure(f"action must be one of {', '.join(ACTIONS)}, not {config.action!r}")
    integration_store = store.get_store()
    now = datetime.now(UTC)
    # Dagster+ records who launched the run; in OSS the config names the operator.
    actor = config.actor or context.run.tags.get("dagster/user", "")
    try:
        if config.action == "list":
            records = select(integration_store, ids=config.ids, where=config.where(), now=now)
            rows = records_table(records, now)
            summary = {"action": "list", "matched": len(rows)}
        elif config.action == "retry":
            outcome = retry(
                integration_store,
                actor=actor,
                now=now,
                ids=config.ids,
                where=config.where(),
                all_matching=config.all_matching,
            )
            rows = records_table(outcome.flagged, now)
            summary = {
                "action": "retry",
                "actor": actor,
                "flagged": len(outcome.flagged),
                "skipped": len(outcome.skipped),
                "flows": sorted(outcome.by_flow()),
            }
            for flow in outcome.by_flow():
                target = RETRY_TARGETS.get(flow)
                context.log.info(
                    "retry %s: %s",
                    flow,
                    target.behaviour if target else "no retry job; its next run picks it up",
                )
        else:
            resolved = resolve(
                integration_store,
                actor=actor,
                note=config.note,
                now=now,
                ids=config.ids,
                where=config.where(),
                all_matching=config.all_matching,
            )
            rows = records_table(resolved, now)
            summary = {"action": "resolve", "actor": actor, "resolved": len(resolved)}
    except QueueActionError as exc:
        raise dg.Failure(str(exc)) from None
    context.log.info("exception queue: %s", summary)
    return dg.Output(
        summary,
        metadata={
            "action": config.action,
            "actor": actor or "",
            "exceptions": len(rows),
            "filter": config.where().describe() if not config.ids else f"ids {config.ids}",
            "table": markdown_table(rows, 100),
        },
    )


@dg.job(
    name="exception_queue_job",
    description="Work the exception queue from the UI: action list | retry | resolve, on ids or "
    "a filter (flow, category, SKU, channel, age). Retry flags the exceptions; the "
    "exception_retries sensor then launches each flow's re-processing.",
    tags={"ct/flow": GROUP},
)
def exception_queue_job() -> None:
    work_exception_queue()


operations_overview_job = dg.define_asset_job(
    name="operations_overview",
    selection=dg.AssetSelection.groups(GROUP),
    description="Refreshes failure_patterns and integration_health.",
    tags={"ct/flow": GROUP},
)
