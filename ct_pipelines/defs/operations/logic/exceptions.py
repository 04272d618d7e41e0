"""Working the exception queue: list, retry and resolve, one exception or by filter.

Who did what and when is written by the store itself (``exception_events``): ``retrying`` with
the actor when a retry is asked for, ``resolved`` with the actor and the note, ``recurred`` or
``auto_resolved`` when the flow re-processes the entity. Retrying only flags; the
``exception_retries`` sensor then launches the flow's re-processing (the ``RetryTarget`` per
flow, which the Dagster side declares: ``ct_pipelines.defs.operations.retry_targets``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeGuard, get_args

import pandas as pd

from ct_pipelines.kernel.money import display_money
from ct_pipelines.store import ExceptionRecord, ExceptionStatus, IntegrationStore

UNRESOLVED = ("open", "retrying")


def is_exception_status(value: str) -> TypeGuard[ExceptionStatus]:
    """A status the store holds; no stored exception has any other."""
    return value in get_args(ExceptionStatus)


@dataclass(frozen=True)
class RetryTarget:
    """How a flow re-processes what an operator asked to retry."""

    job_name: str
    # order_to_cash: the job runs per shop day, so each order's day is re-run.
    per_order_day: bool
    behaviour: str


class QueueActionError(ValueError):
    """An operator action that is refused as asked (no target, no note, no actor)."""


@dataclass(frozen=True)
class ExceptionFilter:
    flow: str | None = None
    status: tuple[str, ...] = UNRESOLVED
    category: str | None = None
    entity_key: str | None = None
    sku: str | None = None
    channel: str | None = None
    older_than_hours: float | None = None

    @property
    def narrows(self) -> bool:
        """True when it picks something narrower than "everything unresolved"."""
        return any(
            value is not None
            for value in (
                self.flow,
                self.category,
                self.entity_key,
                self.sku,
                self.channel,
                self.older_than_hours,
            )
        )

    def matches(self, record: ExceptionRecord, now: datetime) -> bool:
        checks = (
            self.flow is None or record.flow == self.flow,
            not self.status or record.status in self.status,
            self.category is None or record.category == self.category,
            self.entity_key is None or record.entity_key == self.entity_key,
            self.sku is None or record.sku == self.sku,
            self.channel is None or channel_of(record) == self.channel,
            self.older_than_hours is None
            or record.created_at < now - timedelta(hours=self.older_than_hours),
        )
        return all(checks)

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in self.__dict__.items() if value is not None]
        return ", ".join(parts) if parts else "everything"


def channel_of(record: ExceptionRecord) -> str | None:
    """The channel an exception concerns: its own column, else what its details name."""
    if record.channel:
        return record.channel
    details = record.details or {}
    for key in ("channel", "channel_key", "supply_channel", "distribution_channel", "store"):
        value = details.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def select(
    store: IntegrationStore,
    *,
    ids: Iterable[int] = (),
    where: ExceptionFilter | None = None,
    now: datetime,
) -> list[ExceptionRecord]:
    """Exceptions by id (each must exist) or by filter, oldest first."""
    wanted = sorted(set(ids))
    where = where or ExceptionFilter()
    if wanted:
        records = [store.get_exception(exception_id) for exception_id in wanted]
    else:
        records = store.list_exceptions(
            flow=where.flow,
            # a status the store cannot hold matches no row, as the filter's own check says
            status=[s for s in where.status if is_exception_status(s)] if where.status else None,
            category=where.category,
            entity_key=where.entity_key,
        )
    return [record for record in records if where.matches(record, now)]


def _require(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise QueueActionError("say who is acting (--actor / actor): every action is audited")
    return actor


def _targets(
    store: IntegrationStore,
    ids: Sequence[int],
    where: ExceptionFilter | None,
    all_matching: bool,
    now: datetime,
) -> list[ExceptionRecord]:
    if not ids and not (where is not None and where.narrows) and not all_matching:
        raise QueueActionError(
            "name exception ids or a filter (flow, category, SKU, channel, age); "
            "acting on every unresolved exception needs --all"
        )
    return select(store, ids=ids, where=where, now=now)


@dataclass
class RetryOutcome:
    flagged: list[ExceptionRecord] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def by_flow(self) -> dict[str, list[ExceptionRecord]]:
        flows: dict[str, list[ExceptionRecord]] = {}
        for record in self.flagged:
            flows.setdefault(record.flow, []).append(record)
        return flows


def retry(
    store: IntegrationStore,
    *,
    actor: str,
    now: datetime,
    ids: Sequence[int] = (),
    where: ExceptionFilter | None = None,
    all_matching: bool = False,
) -> RetryOutcome:
    """Flag exceptions for retry (audited as ``retrying`` by ``actor``)."""
    actor = _require(actor)
    targets = _targets(store, ids, where, all_matching, now)
    outcome = RetryOutcome()
    for record in targets:
        if record.status != "open":
            outcome.skipped.append((record.id, f"already {record.status}"))
    outcome.flagged = store.mark_retrying([r.id for r in targets if r.status == "open"], actor)
    return outcome


def resolve(
    store: IntegrationStore,
    *,
    actor: str,
    note: str,
    now: datetime,
    ids: Sequence[int] = (),
    where: ExceptionFilter | None = None,
    all_matching: bool = False,
) -> list[ExceptionRecord]:
    """Close exceptions by hand with a note (audited as ``resolved`` by ``actor``)."""
    actor = _require(actor)
    if not (note or "").strip():
        raise QueueActionError("a resolution needs a note saying what was done")
    targets = _targets(store, ids, where, all_matching, now)
    return [
        store.resolve_exception(record.id, actor, note.strip())
        for record in targets
        if record.status != "resolved"
    ]


# --- turning retry flags into runs -------------------------------------------------------------


@dataclass(frozen=True)
class PendingRetry:
    record: ExceptionRecord
    event_id: int  # the audit row that asked for the retry


def pending_retries(store: IntegrationStore, after_event_id: int) -> list[PendingRetry]:
    """Exceptions flagged ``retrying`` by an audit row newer than ``after_event_id``."""
    pending = []
    for record in store.list_exceptions(status="retrying"):
        asked = [e.id for e in store.exception_events(record.id) if e.action == "retrying"]
        if asked and max(asked) > after_event_id:
            pending.append(PendingRetry(record, max(asked)))
    return pending


@dataclass(frozen=True)
class RetryRun:
    flow: str
    job_name: str
    partition_key: str | None
    exception_ids: tuple[int, ...]
    run_key: str


_ORDER_REF = re.compile(r"^order:(?P<id>[^@]+)")


def order_id_of(record: ExceptionRecord) -> str | None:
    """The commercetools order id the queue row points at (payload_ref or details)."""
    match = _ORDER_REF.match(record.payload_ref or "")
    if match and match["id"] not in ("None", ""):
        return match["id"]
    value = (record.details or {}).get("order_id")
    return str(value) if value else None


def plan_retry_runs(
    pending: Sequence[PendingRetry],
    order_day: Callable[[ExceptionRecord], str | None],
    targets: Mapping[str, RetryTarget],
) -> tuple[list[RetryRun], list[tuple[ExceptionRecord, str]]]:
    """One run per flow (per shop day for order_to_cash), and what cannot be planned, with why."""
    groups: dict[tuple[str, str | None], list[PendingRetry]] = {}
    unplanned: list[tuple[ExceptionRecord, str]] = []
    for item in pending:
        target = targets.get(item.record.flow)
        if target is None:
            unplanned.append(
                (item.record, f"flow {item.record.flow} has no retry job; its next run picks it up")
            )
            continue
        day = None
        if target.per_order_day:
            day = order_day(item.record)
            if day is None:
                unplanned.append((item.record, "the order's day could not be found"))
                continue
        groups.setdefault((item.record.flow, day), []).append(item)
    runs = []
    for (flow, day), items in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        latest = max(i.event_id for i in items)
        runs.append(
            RetryRun(
                flow=flow,
                job_name=targets[flow].job_name,
                partition_key=day,
                exception_ids=tuple(sorted(i.record.id for i in items)),
                run_key=f"exception-retry:{flow}:{day or 'all'}:{latest}",
            )
        )
    return runs, unplanned


def order_amounts(store: Any, now: datetime, days: int = 14) -> dict[str, tuple[int, str]]:
    """Each order of the last ``days`` materialised shop days: external document number ->
    (gross in minor units, currency), for showing the amount at stake beside an exception."""
    from ct_pipelines.defs.order_to_cash.logic.checks import recent_batches

    batches = recent_batches(store, days, now)
    if not len(batches):
        return {}
    return {
        str(doc): (int(gross), str(currency))
        for doc, gross, currency in zip(
            batches["external_document_number"],
            batches["gross_minor"],
            batches["currency"],
            strict=True,
        )
        if pd.notna(gross)
    }


def records_table(
    records: Iterable[ExceptionRecord],
    now: datetime,
    amounts: Mapping[str, tuple[int, str]] | None = None,
) -> list[dict[str, Any]]:
    """Rows for people: id, flow, what, the amount at stake (an order's gross, as people read
    it and in minor units), why, how old, who resolved it."""
    amounts = amounts or {}
    rows = []
    for record in records:
        age = now - record.created_at
        money = amounts.get(record.entity_key)
        rows.append(
            {
                "id": record.id,
                "flow": record.flow,
                "entity": record.entity_key,
                "amount": display_money(*money) if money else "",
                "amount_minor": money[0] if money else None,
                "category": record.category,
                "status": record.status,
                "attempts": record.attempts,
                "sku": record.sku or "",
                "channel": channel_of(record) or "",
                "age_hours": round(age.total_seconds() / 3600, 1),
                "reason": record.reason,
            }
        )
    return rows


# --- the queue as people read it (the exception_queue asset) -------------------------------------

QUEUE_COLUMNS = {
    "id": "exception id (use it with the CLI or exception_queue_job)",
    "flow": "the flow that parked it",
    "status": "open, retrying (a retry was asked for) or resolved",
    "category": "why, in one word (unknown_sku, transient_exhausted, ...)",
    "entity": "the order number, SKU, shipment or product concerned",
    "sku": "the SKU concerned, when there is one",
    "amount": "the order's gross amount, formatted (minor units in amount_minor)",
    "amount_minor": "the order's gross amount in minor units of its currency",
    "age": "how long ago it was first parked",
    "attempts": "how often the flow tried",
    "reason": "the full reason, as recorded",
    "retry": "how to retry it (a job from the UI, or the command line)",
    "resolve": "how to close it by hand once fixed elsewhere",
}


def _age(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} days"


def queue_rows(
    records: Iterable[ExceptionRecord],
    now: datetime,
    *,
    amounts: Mapping[str, tuple[int, str]] | None = None,
    display: Callable[[int, str], str] | None = None,
) -> list[dict[str, Any]]:
    """Open, retrying and resolved exceptions as the operator's table: what, why, how old, the
    amount at stake and how to retry or resolve each. ``amounts`` maps an order's external
    document number to (gross minor units, currency); ``display`` formats them."""
    amounts = amounts or {}
    rows = []
    for record in records:
        money = amounts.get(record.entity_key)
        if record.status == "resolved":
            retry_how = ""
            resolve_how = f"resolved by {record.resolved_by or '?'}: {record.resolution_note or ''}"
        else:
            retry_how = (
                f"launch retry_exceptions_job (category: {record.category}, flow: {record.flow})"
                f" or: ct-pipelines exceptions retry {record.id}"
                if record.status == "open"
                else "retry asked for; the flow's next run closes it on success"
            )
            resolve_how = (
                f"launch resolve_exceptions_job (ids: [{record.id}], note: ...) or: "
                f'ct-pipelines exceptions resolve {record.id} --note "..."'
            )
        rows.append(
            {
                "id": record.id,
                "flow": record.flow,
                "status": record.status,
                "category": record.category,
                "entity": record.entity_key,
                "sku": record.sku or "",
                "amount": display(*money) if money and display else "",
                "amount_minor": money[0] if money else None,
                "age": _age(now - record.created_at),
                "attempts": record.attempts,
                "reason": record.reason,
                "retry": retry_how,
                "resolve": resolve_how,
            }
        )
    return rows
