"""The exception queue: entities a flow could not process, with a readable reason and an audit trail.

Bad input must not sink a batch, so flows record the entity here and carry on. Operators work the
queue (retry, resolve), and a later successful run closes what it fixed. Every change writes an
exception_events row, so "who did what, when" is always answerable.
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ct_pipelines.kernel.scrub import scrub, scrub_value
from ct_pipelines.store.engine import Database, require_aware
from ct_pipelines.store.safe import (
    changed_originals,
    safe_json,
    safe_key,
    safe_optional_key,
    safe_text,
)
from ct_pipelines.store.schema import exception_events, exception_queue

ExceptionStatus = Literal["open", "retrying", "resolved"]
_UNRESOLVED = ("open", "retrying")

DEFAULT_ACTOR = "ct_pipelines"
_MAX_REASON_LENGTH = 4000
REDACTED = "[redacted]"

# Keys whose values must never be stored: credentials, and personal data the queue does not need
# to explain a failure (a payload_ref lets an operator look the entity up in the source system).
_SENSITIVE_KEY = re.compile(
    r"(secret|token|password|passwd|authori[sz]ation|api[_-]?key|cookie|credential"
    r"|e-?mail|phone|mobile|first[_-]?name|last[_-]?name|full[_-]?name|street|address"
    r"|birth|iban|card)",
    re.IGNORECASE,
)


class ExceptionCategory(StrEnum):
    """Categories the flows use; any other non-empty string is accepted too."""

    UNKNOWN_SKU = "unknown_sku"
    UNKNOWN_TAX_CODE = "unknown_tax_code"
    VALIDATION = "validation"
    TRANSIENT_EXHAUSTED = "transient_exhausted"
    CONFLICT = "conflict"


class ExceptionNotFound(LookupError):
    """An operator action named an exception id that does not exist."""


@dataclass(frozen=True)
class ExceptionRecord:
    id: int
    flow: str
    entity_key: str
    category: str
    reason: str
    attempts: int
    payload_ref: str | None
    details: dict[str, Any] | None
    sku: str | None
    channel: str | None
    status: ExceptionStatus
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None


@dataclass(frozen=True)
class ExceptionEvent:
    id: int
    exception_id: int
    action: str
    actor: str
    at: datetime
    detail: dict[str, Any] | None


def scrub_details(value: Any) -> Any:
    """Details as JSON-safe values with credentials and personal data redacted.

    The queue is read by people and kept for a long time; what explains a failure is ids, SKUs,
    codes and amounts, never who the customer is or how to log in somewhere.
    """
    if isinstance(value, Mapping):
        return {
            str(key): REDACTED if _SENSITIVE_KEY.search(str(key)) else scrub_details(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub_details(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        # JSON (and PostgreSQL's jsonb) has no NaN or infinity.
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _record(row: sa.Row[Any]) -> ExceptionRecord:
    return ExceptionRecord(**row._mapping)


def _event(row: sa.Row[Any]) -> ExceptionEvent:
    return ExceptionEvent(**row._mapping)


class ExceptionQueue:
    """Record, list and work exceptions for one store. Thread-safe; share one per process."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        *,
        flow: str,
        entity_key: str,
        category: str,
        reason: str,
        payload_ref: str | None = None,
        details: Mapping[str, Any] | None = None,
        sku: str | None = None,
        channel: str | None = None,
        actor: str = DEFAULT_ACTOR,
    ) -> ExceptionRecord:
        """Queue an exception, or count a recurrence of the unresolved one for the same problem.

        Same flow + entity_key + category while open or retrying means the same problem seen
        again: attempts goes up, reason/details are refreshed and a retried exception reopens.
        """
        for name, value in (("flow", flow), ("entity_key", entity_key), ("category", category)):
            if not value or not str(value).strip():
                raise ValueError(f"{name} must be a non-empty string")
        # Every value made safe for both backends (length, NUL, encoding) and scrubbed of
        # secrets; what had to change is kept, escaped, in details["original"].
        originals = changed_originals(
            entity_key=entity_key, payload_ref=payload_ref, sku=sku, channel=channel
        )
        entity_key = safe_key(entity_key)
        category = safe_key(str(category), 64)
        payload_ref = safe_optional_key(payload_ref)
        sku = safe_optional_key(sku)
        channel = safe_optional_key(channel)
        actor = safe_key(actor)
        reason = safe_text(scrub(str(reason)), _MAX_REASON_LENGTH) or "no reason given"
        merged = dict(details) if details is not None else None
        if originals:
            merged = {**(merged or {}), "original": originals}
        clean = safe_json(scrub_value(scrub_details(merged))) if merged is not None else None
        now = self._db.now()
        with self._db.write() as conn:
            # The partial unique index is the safety net; the lock makes the recurrence path the
            # normal one on PostgreSQL instead of an integrity error.
            self._db.lock(conn, "exception_queue", flow, entity_key, category)
            existing = conn.execute(
                sa.select(exception_queue).where(
                    exception_queue.c.flow == flow,
                    exception_queue.c.entity_key == entity_key,
                    exception_queue.c.category == category,
                    exception_queue.c.status.in_(_UNRESOLVED),
                )
            ).one_or_none()
            if existing is None:
                exception_id = conn.execute(
                    exception_queue.insert()
                    .values(
                        flow=flow,
                        entity_key=entity_key,
                        category=category,
                        reason=reason,
                        attempts=1,
                        payload_ref=payload_ref,
                        details=clean,
                        sku=sku,
                        channel=channel,
                        status="open",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(exception_queue.c.id)
                ).scalar_one()
                _audit(conn, exception_id, "recorded", actor, now, {"reason": reason})
            else:
                exception_id = existing.id
                attempts = existing.attempts + 1
                conn.execute(
                    exception_queue.update()
                    .where(exception_queue.c.id == exception_id)
                    .values(
                        reason=reason,
                        attempts=attempts,
                        status="open",
                        updated_at=now,
                        # Keep what an earlier occurrence knew when this one knows less.
                        payload_ref=payload_ref or existing.payload_ref,
                        details=clean if clean is not None else existing.details,
                        sku=sku or existing.sku,
                        channel=channel or existing.channel,
                    )
                )
                _audit(
                    conn,
                    exception_id,
                    "recurred",
                    actor,
                    now,
                    {"reason": reason, "attempts": attempts, "previous_status": existing.status},
                )
            return _get(conn, exception_id)

    def list(
        self,
        flow: str | None = None,
        status: ExceptionStatus | Sequence[ExceptionStatus] | None = None,
        category: str | None = None,
        entity_key: str | None = None,
        older_than: datetime | timedelta | None = None,
        *,
        limit: int | None = None,
    ) -> list[ExceptionRecord]:
        """Exceptions matching every given filter, oldest first.

        `older_than` is a moment (created before it) or an age (created more than that long ago),
        for "what has been stuck for two days".
        """
        query = sa.select(exception_queue)
        if flow is not None:
            query = query.where(exception_queue.c.flow == flow)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            query = query.where(exception_queue.c.status.in_(statuses))
        if category is not None:
            query = query.where(exception_queue.c.category == str(category))
        if entity_key is not None:
            query = query.where(exception_queue.c.entity_key == safe_key(entity_key))
        if older_than is not None:
            cutoff = (
                self._db.now() - older_than
                if isinstance(older_than, timedelta)
                else require_aware(older_than, "older_than")
            )
            query = query.where(exception_queue.c.created_at < cutoff)
        query = query.order_by(exception_queue.c.created_at, exception_queue.c.id).limit(limit)
        with self._db.read() as conn:
            return [_record(row) for row in conn.execute(query)]

    def get(self, exception_id: int) -> ExceptionRecord:
        with self._db.read() as conn:
            return _get(conn, exception_id)

    def events(self, exception_id: int) -> builtins.list[ExceptionEvent]:
        """The audit trail of one exception, in order."""
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(exception_events)
                .where(exception_events.c.exception_id == exception_id)
                .order_by(exception_events.c.id)
            )
            return [_event(row) for row in rows]

    def resolve(self, exception_id: int, actor: str, note: str) -> ExceptionRecord:
        """Close an exception by hand. Resolving a resolved exception changes nothing."""
        _require_actor(actor)
        actor = safe_key(actor)
        note = safe_text(scrub(note), _MAX_REASON_LENGTH) or ""
        now = self._db.now()
        with self._db.write() as conn:
            current = _get(conn, exception_id, for_update=True)
            if current.status == "resolved":
                return current
            _resolve(conn, exception_id, actor, note, now)
            _audit(conn, exception_id, "resolved", actor, now, {"note": note})
            return _get(conn, exception_id)

    def mark_retrying(self, ids: Iterable[int], actor: str) -> builtins.list[ExceptionRecord]:
        """Flag exceptions as being retried (all or none); resolved ones are left alone.

        Returns the exceptions that changed. The retry's outcome then either closes them
        (`close_on_success`) or reopens them with one more attempt (`record`).
        """
        _require_actor(actor)
        wanted = sorted(set(ids))
        now = self._db.now()
        changed: list[ExceptionRecord] = []
        with self._db.write() as conn:
            for exception_id in wanted:
                current = _get(conn, exception_id, for_update=True)
                if current.status != "open":
                    continue
                conn.execute(
                    exception_queue.update()
                    .where(exception_queue.c.id == exception_id)
                    .values(status="retrying", updated_at=now)
                )
                _audit(conn, exception_id, "retrying", actor, now, None)
                changed.append(_get(conn, exception_id))
        return changed

    def close_on_success(
        self, flow: str, entity_key: str, actor: str = DEFAULT_ACTOR
    ) -> builtins.list[ExceptionRecord]:
        """Resolve every unresolved exception of an entity that has now gone through."""
        _require_actor(actor)
        entity_key = safe_key(entity_key)
        now = self._db.now()
        note = "resolved automatically: a later run processed the entity successfully"
        closed: list[ExceptionRecord] = []
        with self._db.write() as conn:
            open_ids = conn.execute(
                sa.select(exception_queue.c.id)
                .where(
                    exception_queue.c.flow == flow,
                    exception_queue.c.entity_key == entity_key,
                    exception_queue.c.status.in_(_UNRESOLVED),
                )
                .order_by(exception_queue.c.id)
                .with_for_update()
            ).scalars()
            for exception_id in list(open_ids):
                _resolve(conn, exception_id, actor, note, now)
                _audit(conn, exception_id, "auto_resolved", actor, now, {"note": note})
                closed.append(_get(conn, exception_id))
        return closed


def _require_actor(actor: str) -> None:
    if not actor or not actor.strip():
        raise ValueError("an actor is required: the audit trail records who acted")


def _get(conn: Connection, exception_id: int, *, for_update: bool = False) -> ExceptionRecord:
    query = sa.select(exception_queue).where(exception_queue.c.id == exception_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None:
        raise ExceptionNotFound(f"no exception with id {exception_id}")
    return _record(row)


def _resolve(conn: Connection, exception_id: int, actor: str, note: str, now: datetime) -> None:
    conn.execute(
        exception_queue.update()
        .where(exception_queue.c.id == exception_id)
        .values(
            status="resolved",
            updated_at=now,
            resolved_at=now,
            resolved_by=safe_key(actor),
            resolution_note=note,
        )
    )


def _audit(
    conn: Connection,
    exception_id: int,
    action: str,
    actor: str,
    at: datetime,
    detail: dict[str, Any] | None,
) -> None:
    conn.execute(
        exception_events.insert().values(
            exception_id=exception_id,
            action=action,
            actor=safe_key(actor),
            at=at,
            detail=safe_json(scrub_value(detail)) if detail is not None else None,
        )
    )
