"""Which check evaluations to alert on: ERROR failures, once per incident, and the all-clear.

A check that keeps failing run after run is one incident, not one alert per run: a failing
check is announced once and again only after ``realert_after`` if it is still failing; when it
passes again after an alert, an all-clear follows. The state is the sensor's cursor (JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ct_pipelines.defs.operations.logic.alerts import (
    Alert,
    check_failure_alert,
    check_recovered_alert,
)

REALERT_AFTER = timedelta(hours=6)


@dataclass(frozen=True)
class CheckEvaluation:
    storage_id: int
    at: datetime
    asset: str
    check: str
    passed: bool
    severity: str  # ERROR | WARN
    description: str | None
    metadata: Mapping[str, Any]
    run_id: str | None

    @property
    def key(self) -> str:
        return f"{self.asset}:{self.check}"


@dataclass
class CheckAlertState:
    after: int | None = None  # last event storage id looked at
    # When that event happened (ISO): SQLite's run-sharded event log pages by time, not by id.
    after_at: str | None = None
    alerted: dict[str, str] = field(default_factory=dict)  # check key -> ISO time of last alert

    @classmethod
    def from_json(cls, text: str | None) -> CheckAlertState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            after=data.get("after"),
            after_at=data.get("after_at"),
            alerted=dict(data.get("alerted") or {}),
        )

    def to_json(self) -> str:
        return json.dumps(
            {"after": self.after, "after_at": self.after_at, "alerted": self.alerted},
            sort_keys=True,
        )

    def seen_at(self) -> datetime | None:
        # A second of slack: events stamped in the same second are told apart by storage id.
        return (
            datetime.fromisoformat(self.after_at) - timedelta(seconds=1) if self.after_at else None
        )


def decide_check_alerts(
    state: CheckAlertState,
    evaluations: Iterable[CheckEvaluation],
    *,
    ui_url: str | None = None,
    secrets: Iterable[str] = (),
    realert_after: timedelta = REALERT_AFTER,
) -> tuple[list[Alert], CheckAlertState]:
    """The alerts to send for ``evaluations`` (oldest first) and the state after sending them."""
    secrets = list(secrets)
    alerted = dict(state.alerted)
    after = state.after
    after_at = state.after_at
    alerts: list[Alert] = []
    for evaluation in evaluations:
        if state.after is not None and evaluation.storage_id <= state.after:
            continue
        if after is None or evaluation.storage_id > after:
            after, after_at = evaluation.storage_id, evaluation.at.isoformat()
        previous = alerted.get(evaluation.key)
        if evaluation.passed:
            if previous is not None:
                alerts.append(
                    check_recovered_alert(
                        asset=evaluation.asset,
                        check=evaluation.check,
                        run_id=evaluation.run_id,
                        at=evaluation.at,
                        ui_url=ui_url,
                    )
                )
                del alerted[evaluation.key]
            continue
        if evaluation.severity != "ERROR":
            continue
        if (
            previous is not None
            and evaluation.at - datetime.fromisoformat(previous) < realert_after
        ):
            continue
        alerts.append(
            check_failure_alert(
                asset=evaluation.asset,
                check=evaluation.check,
                severity=evaluation.severity,
                description=evaluation.description,
                metadata=evaluation.metadata,
                run_id=evaluation.run_id,
                at=evaluation.at,
                ui_url=ui_url,
                secrets=secrets,
            )
        )
        alerted[evaluation.key] = evaluation.at.isoformat()
    return alerts, CheckAlertState(after=after, after_at=after_at, alerted=alerted)
