"""What the operations assets and sensors read from the Dagster instance (runs, events, checks)."""

import functools
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.events import DagsterEventType

from ct_pipelines.defs.operations.logic.check_alerts import CheckEvaluation
from ct_pipelines.defs.operations.logic.health import CheckState, FailedRun

# Asset groups that are not business flows.
NOT_FLOWS = frozenset({"operations", "default"})


@functools.cache
def _project_repository() -> dg.RepositoryDefinition:
    from ct_pipelines.definitions import defs

    return defs().get_repository_def()


def repository_of(context: dg.AssetExecutionContext) -> dg.RepositoryDefinition:
    """The code location's definitions, to see every flow, asset, check and job.

    Runs launched from the code location carry them; in-process executions (tests, the demo)
    do not, and then the project's Definitions are loaded (once per process).
    """
    try:
        return context.repository_def
    except Exception:  # dagster raises a CheckError when no repository is attached
        return _project_repository()


def flows_by_asset(asset_graph: AssetGraph) -> dict[dg.AssetKey, str]:
    """Asset key -> flow (its asset group), for every asset in the code location."""
    return {
        key: asset_graph.get(key).group_name or "default"
        for key in asset_graph.get_all_asset_keys()
    }


def _event_records(
    instance: dg.DagsterInstance, records_filter: dg.EventRecordsFilter, limit: int, ascending: bool
) -> Sequence[dg.EventLogRecord]:
    # get_event_records is deprecated for 2.0 without a replacement for check evaluations yet.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return instance.get_event_records(records_filter, limit=limit, ascending=ascending)


def _evaluation(record: dg.EventLogRecord) -> CheckEvaluation | None:
    event = record.event_log_entry.dagster_event
    data = event.event_specific_data if event is not None else None
    if not isinstance(data, dg.AssetCheckEvaluation):
        return None
    return CheckEvaluation(
        storage_id=record.storage_id,
        at=datetime.fromtimestamp(record.timestamp, UTC),
        asset=data.asset_key.to_user_string(),
        check=data.check_name,
        passed=bool(data.passed),
        severity=data.severity.value if data.severity is not None else "ERROR",
        description=data.description,
        metadata=dict(data.metadata or {}),
        run_id=record.run_id,
    )


def check_evaluations(
    instance: dg.DagsterInstance,
    *,
    after_storage_id: int | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[CheckEvaluation]:
    """Asset check evaluations, oldest first, since a time and after a storage id.

    The time bounds the query (SQLite's run-sharded event log refuses a bare id cursor); the
    id drops what an earlier tick has seen already.
    """
    records_filter = dg.EventRecordsFilter(
        event_type=DagsterEventType.ASSET_CHECK_EVALUATION,
        after_timestamp=since.timestamp() if since is not None else None,
    )
    records = _event_records(instance, records_filter, limit, ascending=True)
    evaluations = [e for e in (_evaluation(r) for r in records) if e is not None]
    if after_storage_id is not None:
        evaluations = [e for e in evaluations if e.storage_id > after_storage_id]
    return evaluations


def latest_evaluation_mark(instance: dg.DagsterInstance) -> tuple[int, str] | None:
    """(storage id, ISO time) of the newest check evaluation: where a sensor may start."""
    records = _event_records(
        instance,
        dg.EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION),
        1,
        ascending=False,
    )
    if not records:
        return None
    return records[0].storage_id, datetime.fromtimestamp(records[0].timestamp, UTC).isoformat()


def latest_check_states(instance: dg.DagsterInstance, asset_graph: AssetGraph) -> list[CheckState]:
    flows = flows_by_asset(asset_graph)
    states = []
    for key in sorted(asset_graph.asset_check_keys, key=lambda k: (str(k.asset_key), k.name)):
        flow = flows.get(key.asset_key, "default")
        record = instance.get_latest_asset_check_evaluation_record(key)
        evaluation = (
            record.event.dagster_event.event_specific_data
            if record is not None and record.event is not None and record.event.dagster_event
            else None
        )
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            states.append(
                CheckState(flow, key.asset_key.to_user_string(), key.name, None, None, None)
            )
            continue
        states.append(
            CheckState(
                flow=flow,
                asset=key.asset_key.to_user_string(),
                check=key.name,
                passed=bool(evaluation.passed),
                severity=evaluation.severity.value if evaluation.severity else "ERROR",
                at=datetime.fromtimestamp(record.event.timestamp, UTC),  # type: ignore[union-attr]
                metadata=dict(evaluation.metadata or {}),
            )
        )
    return states


def last_success(instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey]) -> datetime | None:
    """The latest materialisation of any of ``keys``."""
    times = []
    for key in keys:
        event = instance.get_latest_materialization_event(key)
        if event is not None:
            times.append(datetime.fromtimestamp(event.timestamp, UTC))
    return max(times, default=None)


def failed_runs(
    instance: dg.DagsterInstance, repository_def: dg.RepositoryDefinition, since: datetime
) -> list[FailedRun]:
    """Failed runs since ``since``, attributed to the flows whose assets they were to build."""
    flows = flows_by_asset(repository_def.asset_graph)
    jobs: dict[str, set[str]] = {}
    for job in repository_def.get_all_jobs():
        keys = job.asset_layer.selected_asset_keys if job.asset_layer else set()
        jobs[job.name] = {flows[k] for k in keys if k in flows}
    result = []
    runs = instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], created_after=since),
        limit=500,
    )
    for run in runs:
        if run.asset_selection:
            run_flows = {flows[k] for k in run.asset_selection if k in flows}
        else:
            run_flows = jobs.get(run.job_name, set())
        run_flows = {f for f in run_flows if f not in NOT_FLOWS} or {
            run.tags.get("ct/flow", "other")
        }
        record = instance.get_run_record_by_id(run.run_id)
        at = record.end_time if record is not None and record.end_time else since.timestamp()
        for flow in sorted(run_flows):
            result.append(
                FailedRun(flow, run.job_name, run.run_id, datetime.fromtimestamp(at, UTC))
            )
    return result
