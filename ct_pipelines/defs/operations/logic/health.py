"""Integration health: one overview of every flow for the people who own the integration.

Per flow: when it last succeeded, what is waiting (ledger backlog), the open exceptions by age,
the checks that fail now and their drift counts, and failed runs. A status sums it up:

- ``action needed``: an ERROR check fails, a run failed in the last day, or an exception has
  been open for more than a day;
- ``attention``: a WARN check fails, exceptions are open, a retry has hung for hours, or the
  flow has not succeeded for longer than its expected cadence;
- ``ok``; or ``never run``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from ct_pipelines.store import ExceptionRecord

AGE_BUCKETS = (
    ("under_1h", timedelta(hours=1)),
    ("1h_to_24h", timedelta(hours=24)),
    ("1d_to_7d", timedelta(days=7)),
    ("over_7d", None),
)
HEALTH_COLUMNS = [
    "flow",
    "status",
    "last_success",
    "hours_since_success",
    "backlog_pending",
    "backlog_failed",
    "open_exceptions",
    "retrying",
    *(f"open_{name}" for name, _ in AGE_BUCKETS),
    "oldest_open_hours",
    "failing_checks",
    "drift_count",
    "failed_runs_24h",
]
_NOT_A_DRIFT_COUNT = ("checked", "compared", "ratio", "share", "age", "minutes", "hours")
STALE_RETRY = timedelta(hours=2)


@dataclass(frozen=True)
class CheckState:
    """The latest evaluation of one asset check."""

    flow: str
    asset: str
    check: str
    passed: bool | None  # None: never evaluated
    severity: str | None
    at: datetime | None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def drift_count(self) -> int:
        """The check's headline count: the metadata named like the check, else the first count."""
        values = {k: getattr(v, "value", v) for k, v in self.metadata.items()}
        own = values.get(self.check)
        if isinstance(own, int) and not isinstance(own, bool):
            return own
        for name, value in values.items():
            if (
                isinstance(value, int)
                and not isinstance(value, bool)
                and not name.startswith("dagster/")
                and not any(word in name for word in _NOT_A_DRIFT_COUNT)
            ):
                return value
        return 0


@dataclass(frozen=True)
class FailedRun:
    flow: str
    job: str
    run_id: str
    at: datetime


@dataclass(frozen=True)
class FlowFacts:
    flow: str
    last_success: datetime | None
    backlog_pending: int = 0
    backlog_failed: int = 0
    # Hours without success before the flow is called late (its cadence plus slack).
    expected_every_hours: float = 26.0


def _age_bucket(age: timedelta) -> str:
    for name, limit in AGE_BUCKETS:
        if limit is None or age < limit:
            return name
    return AGE_BUCKETS[-1][0]


def _status(
    facts: FlowFacts,
    checks: Sequence[CheckState],
    open_records: Sequence[ExceptionRecord],
    failed_runs: Sequence[FailedRun],
    now: datetime,
) -> str:
    failing = [c for c in checks if c.passed is False]
    oldest = min((r.created_at for r in open_records), default=None)
    if (
        any(c.severity == "ERROR" for c in failing)
        or failed_runs
        or (oldest is not None and now - oldest > timedelta(days=1))
    ):
        return "action needed"
    if facts.last_success is None:
        return "never run"
    stale_retry = any(
        r.status == "retrying" and now - r.updated_at > STALE_RETRY for r in open_records
    )
    late = now - facts.last_success > timedelta(hours=facts.expected_every_hours)
    if failing or open_records or stale_retry or late:
        return "attention"
    return "ok"


@dataclass
class HealthReport:
    flows: pd.DataFrame
    checks: list[CheckState]
    failed_runs: list[FailedRun]
    generated_at: datetime

    def status_of(self, flow: str) -> str:
        return str(self.flows.set_index("flow").loc[flow, "status"])

    def markdown(self) -> str:
        icon = {"ok": "🟢", "attention": "🟠", "action needed": "🔴", "never run": "⚪"}
        table = self.flows.assign(status=[f"{icon.get(s, '')} {s}" for s in self.flows["status"]])
        lines = [
            f"**Integration health** as of {self.generated_at.isoformat(timespec='minutes')}",
            "",
            "Read when this asset ran, not live: each flow's last success and each check's "
            "latest evaluation, with how many hours old each was then. Materialise it after "
            "the flows (or on its schedule) to see their newest results.",
            "",
            table[
                [
                    "flow",
                    "status",
                    "last_success",
                    "hours_since_success",
                    "backlog_pending",
                    "backlog_failed",
                    "open_exceptions",
                    "oldest_open_hours",
                    "failing_checks",
                    "failed_runs_24h",
                ]
            ].to_markdown(index=False),
            "",
            "**Open exceptions by age**",
            "",
            self.flows[
                ["flow", "retrying", *(f"open_{name}" for name, _ in AGE_BUCKETS)]
            ].to_markdown(index=False),
        ]
        evaluated = [c for c in self.checks if c.passed is not None]
        if evaluated:
            check_rows = pd.DataFrame(
                [
                    {
                        "flow": c.flow,
                        "check": c.check,
                        "asset": c.asset,
                        "result": "passed" if c.passed else f"FAILED ({c.severity})",
                        "drift_count": c.drift_count,
                        "evaluated_at": c.at.isoformat(timespec="minutes") if c.at else "",
                        "hours_old": round((self.generated_at - c.at).total_seconds() / 3600, 1)
                        if c.at
                        else None,
                    }
                    for c in sorted(evaluated, key=lambda c: (c.passed, c.flow, c.check))
                ]
            )
            lines += ["", "**Checks (latest evaluation)**", "", check_rows.to_markdown(index=False)]
        never = sorted(c.check for c in self.checks if c.passed is None)
        if never:
            lines += ["", "Never evaluated: " + ", ".join(f"`{name}`" for name in never)]
        if self.failed_runs:
            runs = pd.DataFrame(
                [
                    {"flow": r.flow, "job": r.job, "run": r.run_id[:8], "at": r.at.isoformat()}
                    for r in self.failed_runs
                ]
            )
            lines += ["", "**Failed runs (last 24 hours)**", "", runs.to_markdown(index=False)]
        lines += ["", "What each status and check means: docs/runbook.md."]
        return "\n".join(lines)


def integration_health(
    facts: Iterable[FlowFacts],
    checks: Sequence[CheckState],
    unresolved: Sequence[ExceptionRecord],
    failed_runs: Sequence[FailedRun],
    *,
    now: datetime,
) -> HealthReport:
    facts_by_flow = {f.flow: f for f in facts}
    # A flow known only from the queue (e.g. retired) still shows up.
    for record in unresolved:
        facts_by_flow.setdefault(record.flow, FlowFacts(record.flow, None))
    rows = []
    for flow in sorted(facts_by_flow):
        fact = facts_by_flow[flow]
        flow_checks = [c for c in checks if c.flow == flow]
        records = [r for r in unresolved if r.flow == flow and r.status != "resolved"]
        runs = [r for r in failed_runs if r.flow == flow]
        buckets = dict.fromkeys((name for name, _ in AGE_BUCKETS), 0)
        for record in records:
            if record.status == "open":
                buckets[_age_bucket(now - record.created_at)] += 1
        oldest = min((r.created_at for r in records), default=None)
        failing = [c for c in flow_checks if c.passed is False]
        rows.append(
            {
                "flow": flow,
                "status": _status(fact, flow_checks, records, runs, now),
                "last_success": fact.last_success.isoformat(timespec="minutes")
                if fact.last_success
                else "never",
                "hours_since_success": round((now - fact.last_success).total_seconds() / 3600, 1)
                if fact.last_success
                else None,
                "backlog_pending": fact.backlog_pending,
                "backlog_failed": fact.backlog_failed,
                "open_exceptions": len(records),
                "retrying": sum(1 for r in records if r.status == "retrying"),
                **{f"open_{name}": count for name, count in buckets.items()},
                "oldest_open_hours": round((now - oldest).total_seconds() / 3600, 1)
                if oldest
                else 0.0,
                "failing_checks": ", ".join(c.check for c in failing) or "none",
                "drift_count": sum(c.drift_count for c in failing),
                "failed_runs_24h": len(runs),
            }
        )
    return HealthReport(
        flows=pd.DataFrame(rows, columns=HEALTH_COLUMNS),
        checks=list(checks),
        failed_runs=list(failed_runs),
        generated_at=now,
    )
