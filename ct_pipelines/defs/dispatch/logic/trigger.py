"""When the dispatch sensor launches a run, as a pure decision over a small JSON state.

The ERP cursor itself lives in the integration store and only the ``erp_shipments`` asset moves
it, after the shipments are safely stored. The sensor merely peeks past that cursor, so a run
that crashes leaves the shipments pending and they are requested again; replays are harmless
because applied shipments are in the ledger and their delivery keys are on the orders.

Run keys come from the pending shipment numbers, so a tick that repeats (a lost sensor cursor)
cannot launch the same batch twice. A batch still pending long after it was requested (its run
failed) is requested once more under a new key, and queued failures get a retry run every so
often even when no new shipment arrives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from ct_pipelines.defs.dispatch.logic.engine import FLOW
from ct_pipelines.store import IntegrationStore


@dataclass
class TriggerState:
    requested_key: str | None = None
    requested_at: str | None = None
    attempt: int = 0
    retry_requested_at: str | None = None

    @classmethod
    def from_json(cls, text: str | None) -> TriggerState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(**{k: data.get(k) for k in asdict(cls()) if k in data})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Decision:
    run_key: str | None
    reason: str
    state: TriggerState


def batch_key(pending: Sequence[str]) -> str:
    return f"dispatch-{pending[0]}-{pending[-1]}-{len(pending)}"


def decide(
    state: TriggerState,
    pending: Sequence[str],
    failures_waiting: int,
    now: datetime,
    *,
    stale_after: timedelta,
    retry_every: timedelta,
) -> Decision:
    """The run to request now (if any), why, and the sensor's next state."""
    if pending:
        key = batch_key(pending)
        if key != state.requested_key:
            new = TriggerState(key, now.isoformat(), 0, state.retry_requested_at)
            return Decision(key, f"{len(pending)} new shipments from {pending[0]}", new)
        requested_at = datetime.fromisoformat(state.requested_at) if state.requested_at else None
        if requested_at is None or now - requested_at >= stale_after:
            attempt = state.attempt + 1
            new = TriggerState(key, now.isoformat(), attempt, state.retry_requested_at)
            return Decision(
                f"{key}-again-{attempt}",
                f"shipments from {pending[0]} still pending {stale_after} after they were "
                "requested; requesting them again",
                new,
            )
        return Decision(None, f"a run for shipments from {pending[0]} is already requested", state)
    if failures_waiting:
        last = (
            datetime.fromisoformat(state.retry_requested_at) if state.retry_requested_at else None
        )
        if last is None or now - last >= retry_every:
            new = TriggerState(
                state.requested_key, state.requested_at, state.attempt, now.isoformat()
            )
            return Decision(
                f"dispatch-retry-{now.strftime('%Y%m%dT%H%M%S')}",
                f"{failures_waiting} queued dispatch failures to retry",
                new,
            )
        return Decision(
            None, f"no new shipments; {failures_waiting} queued failures retry later", state
        )
    return Decision(None, "no new shipments since the last run", state)


def queued_failures(integration_store: IntegrationStore, now: datetime, retry_days: int) -> int:
    """Open dispatch failures young enough for the dispatch asset to retry them."""
    cutoff = now - timedelta(days=retry_days)
    return sum(
        1
        for record in integration_store.list_exceptions(flow=FLOW, status=["open", "retrying"])
        if record.created_at >= cutoff
    )
