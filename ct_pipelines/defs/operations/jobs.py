"""Jobs for operators: work the exception queue, refresh the overview, re-sync the product master."""

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

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
    "exception_retries sensor then launches each flow's re-processing. For the common cases "
    "use retry_exceptions_job and resolve_exceptions_job, whose config is typed.",
    tags={"ct/flow": GROUP},
)
def exception_queue_job() -> None:
    work_exception_queue()


def _ui_actor(context: dg.OpExecutionContext, actor: str) -> str:
    """Who acts: the config, else the user Dagster+ records; nothing is done anonymously."""
    who = actor.strip() or context.run.tags.get("dagster/user", "")
    if not who:
        raise dg.Failure("say who is acting: set actor in the run config (every action is audited)")
    return who


class RetryExceptionsConfig(dg.Config):
    """Retry every open exception of one category, e.g. ``transient_exhausted`` after an ERP
    outage or ``unknown_sku`` once the SKU exists in the ERP."""

    category: str = Field(description="the exception category, as in the exception_queue table")
    flow: str | None = Field(default=None, description="only this flow's (default: every flow)")
    actor: str = Field(default="", description="who asks (required unless Dagster+ knows the user)")


@dg.op(description="Flags every open exception of a category for retry (audited).")
def retry_exceptions_by_category(
    context: dg.OpExecutionContext, config: RetryExceptionsConfig, store: IntegrationStoreResource
) -> dg.Output[dict]:
    actor = _ui_actor(context, config.actor)
    now = datetime.now(UTC)
    where = ExceptionFilter(flow=config.flow or None, status=("open",), category=config.category)
    try:
        outcome = retry(store.get_store(), actor=actor, now=now, where=where)
    except QueueActionError as exc:
        raise dg.Failure(str(exc)) from None
    for flow in outcome.by_flow():
        target = RETRY_TARGETS.get(flow)
        context.log.info(
            "retry %s: %s",
            flow,
            target.behaviour if target else "no retry job; its next run picks it up",
        )
    if not outcome.flagged:
        context.log.warning(
            "no open exception of category %s%s",
            config.category,
            f" in {config.flow}" if config.flow else "",
        )
    summary = {"action": "retry", "actor": actor, "flagged": len(outcome.flagged)}
    return dg.Output(
        summary,
        metadata={
            "category": config.category,
            "flow": config.flow or "every flow",
            "actor": actor,
            "flagged": len(outcome.flagged),
            "table": markdown_table(records_table(outcome.flagged, now), 100),
            "next": "the exception_retries sensor launches each flow's re-processing; "
            "a success closes the exception",
        },
    )


@dg.job(
    name="retry_exceptions_job",
    description="Retry every open exception of a category (config: category, optional flow). "
    "The exception_retries sensor then re-runs each flow; a success closes the exception.",
    tags={"ct/flow": GROUP},
)
def retry_exceptions_job() -> None:
    retry_exceptions_by_category()


class ResolveExceptionsConfig(dg.Config):
    """Close exceptions by hand once fixed elsewhere: by id, or every unresolved one of a category."""

    note: str = Field(description="what was done (required, kept in the audit trail)")
    ids: list[int] = Field(default=[], description="exception ids from the exception_queue table")
    category: str | None = Field(default=None, description="or: every unresolved of this category")
    flow: str | None = Field(default=None, description="limit the category to this flow")
    actor: str = Field(default="", description="who resolves (required unless Dagster+ knows)")


@dg.op(description="Resolves exceptions by id or category with a note (audited).")
def resolve_exceptions(
    context: dg.OpExecutionContext, config: ResolveExceptionsConfig, store: IntegrationStoreResource
) -> dg.Output[dict]:
    actor = _ui_actor(context, config.actor)
    now = datetime.now(UTC)
    where = ExceptionFilter(flow=config.flow or None, category=config.category or None)
    try:
        resolved = resolve(
            store.get_store(), actor=actor, note=config.note, now=now, ids=config.ids, where=where
        )
    except QueueActionError as exc:
        raise dg.Failure(str(exc)) from None
    return dg.Output(
        {"action": "resolve", "actor": actor, "resolved": len(resolved)},
        metadata={
            "actor": actor,
            "resolved": len(resolved),
            "table": markdown_table(records_table(resolved, now), 100),
        },
    )


@dg.job(
    name="resolve_exceptions_job",
    description="Close exceptions fixed elsewhere (config: note, and ids or category).",
    tags={"ct/flow": GROUP},
)
def resolve_exceptions_job() -> None:
    resolve_exceptions()


operations_overview_job = dg.define_asset_job(
    name="operations_overview",
    selection=dg.AssetSelection.groups(GROUP),
    description="Refreshes failure_patterns and integration_health.",
    tags={"ct/flow": GROUP},
)
