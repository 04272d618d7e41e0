"""The export ledger: which business entities a flow has handed to the ERP, and with what result.

Its unique key (flow, entity_key) is what makes exports exactly-once across runs, retries and
backfills: a flow claims an entity before exporting it and skips entities already exported.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ct_pipelines.kernel.scrub import scrub
from ct_pipelines.store.engine import Database
from ct_pipelines.store.safe import safe_key, safe_optional_key, safe_text
from ct_pipelines.store.schema import export_claims, export_ledger

LedgerStatus = Literal["pending", "exported", "failed"]

# Well below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement.
KEY_CHUNK_SIZE = 1000
_MAX_ERROR_LENGTH = 2000


class LedgerEntryNotFound(LookupError):
    """An update named an entity the flow never claimed."""


class LedgerConflict(RuntimeError):
    """An update would contradict what the ledger already records (e.g. a second ERP document)."""


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    flow: str
    entity_key: str
    entity_id: str | None
    entity_version: int | None
    status: LedgerStatus
    external_ref: str | None
    payload_hash: str | None
    attempts: int
    last_error: str | None
    first_seen_at: datetime
    last_attempt_at: datetime | None
    exported_at: datetime | None
    updated_at: datetime

    @property
    def is_exported(self) -> bool:
        return self.status == "exported"


def payload_hash(payload: Mapping[str, Any]) -> str:
    """A stable SHA-256 of a payload, so a flow can tell whether an exported entity has changed.

    Keys are sorted and Decimals written as strings, so equal payloads hash equally across runs.
    """

    def default(value: Any) -> str:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(f"payload_hash cannot encode {type(value).__name__}")

    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=default)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _entry(row: sa.Row[Any]) -> LedgerEntry:
    return LedgerEntry(**row._mapping)


def _insert(db: Database) -> Any:
    return postgresql.insert(export_ledger) if db.is_postgresql else sqlite.insert(export_ledger)


class ExportLedger:
    """Claim, record and query exports for one store. Thread-safe; share one per process."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
        self,
        flow: str,
        entity_key: str,
        entity_id: str | None = None,
        entity_version: int | None = None,
        payload_hash: str | None = None,
    ) -> LedgerEntry:
        """Insert-or-get the ledger row for an entity; two concurrent claims produce one row.

        An entity not yet exported takes the newest id/version/hash seen, so the next export
        attempt sends the latest state. An exported row is left as it is: it records what the ERP
        received. Compare `entry.payload_hash` with yours to see whether the entity changed since.
        """
        _require_text(flow=flow, entity_key=entity_key)
        entity_key = safe_key(entity_key)
        entity_id = safe_optional_key(entity_id)
        now = self._db.now()
        statement = _insert(self._db).values(
            flow=flow,
            entity_key=entity_key,
            entity_id=entity_id,
            entity_version=entity_version,
            payload_hash=payload_hash,
            status="pending",
            attempts=0,
            first_seen_at=now,
            updated_at=now,
        )
        # Race-safe through the unique key: the database, not a prior SELECT, decides who inserts.
        statement = statement.on_conflict_do_update(
            index_elements=[export_ledger.c.flow, export_ledger.c.entity_key],
            set_={
                "entity_id": sa.func.coalesce(
                    statement.excluded.entity_id, export_ledger.c.entity_id
                ),
                "entity_version": sa.func.coalesce(
                    statement.excluded.entity_version, export_ledger.c.entity_version
                ),
                "payload_hash": sa.func.coalesce(
                    statement.excluded.payload_hash, export_ledger.c.payload_hash
                ),
                "updated_at": now,
            },
            where=export_ledger.c.status != "exported",
        )
        with self._db.write() as conn:
            conn.execute(statement)
            return self._get(conn, flow, entity_key)

    def mark_exported(self, flow: str, entity_key: str, external_ref: str) -> LedgerEntry:
        """Record the ERP document that now holds the entity.

        Repeating it with the same document is harmless (a retried step); a different document
        means the entity reached the ERP twice, which the caller must hear about.
        """
        _require_text(external_ref=external_ref)
        external_ref = safe_key(external_ref)
        now = self._db.now()
        with self._db.write() as conn:
            current = self._get(conn, flow, entity_key, for_update=True)
            if current.status == "exported":
                if current.external_ref == external_ref:
                    return current
                raise LedgerConflict(
                    f"{flow}/{entity_key} is already exported as {current.external_ref!r}, "
                    f"refusing to record a second ERP document {external_ref!r}"
                )
            conn.execute(
                export_ledger.update()
                .where(export_ledger.c.id == current.id)
                .values(
                    status="exported",
                    external_ref=external_ref,
                    attempts=export_ledger.c.attempts + 1,
                    last_error=None,
                    last_attempt_at=now,
                    exported_at=now,
                    updated_at=now,
                )
            )
            return self._get(conn, flow, entity_key)

    def mark_failed(self, flow: str, entity_key: str, error: str) -> LedgerEntry:
        """Record a failed export attempt; the entity stays claimable for the next run.

        An exported entry is never downgraded: a failure then concerns something else (e.g. an
        amendment) and belongs on the exception queue.
        """
        now = self._db.now()
        with self._db.write() as conn:
            current = self._get(conn, flow, entity_key, for_update=True)
            if current.status == "exported":
                raise LedgerConflict(
                    f"{flow}/{entity_key} is already exported as {current.external_ref!r}; "
                    "a later failure must not mark it failed"
                )
            conn.execute(
                export_ledger.update()
                .where(export_ledger.c.id == current.id)
                .values(
                    status="failed",
                    attempts=export_ledger.c.attempts + 1,
                    last_error=safe_text(scrub(error), _MAX_ERROR_LENGTH),
                    last_attempt_at=now,
                    updated_at=now,
                )
            )
            return self._get(conn, flow, entity_key)

    def claim_many(
        self, flow: str, claims: Iterable[tuple[str, str | None, int | None, str | None]]
    ) -> int:
        """``claim`` for many (entity_key, entity_id, entity_version, payload_hash) in one
        transaction: a day-sized batch records what it is about to send in one write."""
        rows = list(claims)
        for key, *_ in rows:
            _require_text(flow=flow, entity_key=key)
        if not rows:
            return 0
        now = self._db.now()
        insert = _insert(self._db)
        statement = insert.on_conflict_do_update(
            index_elements=[export_ledger.c.flow, export_ledger.c.entity_key],
            set_={
                "entity_id": sa.func.coalesce(insert.excluded.entity_id, export_ledger.c.entity_id),
                "entity_version": sa.func.coalesce(
                    insert.excluded.entity_version, export_ledger.c.entity_version
                ),
                "payload_hash": sa.func.coalesce(
                    insert.excluded.payload_hash, export_ledger.c.payload_hash
                ),
                "updated_at": now,
            },
            where=export_ledger.c.status != "exported",
        )
        values = [
            {
                "flow": flow,
                "entity_key": key,
                "entity_id": entity_id,
                "entity_version": version,
                "payload_hash": digest,
                "status": "pending",
                "attempts": 0,
                "first_seen_at": now,
                "updated_at": now,
            }
            for key, entity_id, version, digest in rows
        ]
        for value in values:
            value["entity_key"] = safe_key(str(value["entity_key"]))
            entity_id = value["entity_id"]
            value["entity_id"] = safe_optional_key(None if entity_id is None else str(entity_id))
        with self._db.write() as conn:
            for start in range(0, len(values), KEY_CHUNK_SIZE):
                conn.execute(statement, values[start : start + KEY_CHUNK_SIZE])
        return len(values)

    def mark_exported_many(
        self, flow: str, entries: Iterable[tuple[str, str]], *, owner: str | None = None
    ) -> int:
        """``mark_exported`` for many (entity_key, external_ref) in one transaction.

        Same rules as one at a time: a repeat with the same document is harmless, a different
        document for an exported entity raises LedgerConflict (and nothing of the batch is kept).
        With ``owner``, that owner's export claims on these entities end in the same transaction
        (see ``store/claims.py``).
        """
        wanted = {safe_key(key): safe_key(ref) for key, ref in entries}
        for key, ref in wanted.items():
            _require_text(entity_key=key, external_ref=ref)
        if not wanted:
            return 0
        for attempt in range(1, 4):
            try:
                return self._mark_exported_many(flow, wanted, owner)
            except sa.exc.DBAPIError as exc:
                # A lock cycle PostgreSQL broke by aborting this side: the batch is run again.
                if attempt == 3 or getattr(exc.orig, "sqlstate", None) not in ("40P01", "40001"):
                    raise
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _mark_exported_many(self, flow: str, wanted: dict[str, str], owner: str | None) -> int:
        now = self._db.now()
        changed = 0
        with self._db.write() as conn:
            keys = sorted(wanted)
            if owner is not None:
                # Claims first, ledger rows second: the order a claimer taking over takes them
                # in, so the two never wait on each other in a cycle.
                for start in range(0, len(keys), KEY_CHUNK_SIZE):
                    conn.execute(
                        export_claims.delete().where(
                            export_claims.c.flow == flow,
                            export_claims.c.owner == owner,
                            export_claims.c.entity_key.in_(keys[start : start + KEY_CHUNK_SIZE]),
                        )
                    )
            current: dict[str, sa.Row[Any]] = {}
            for start in range(0, len(keys), KEY_CHUNK_SIZE):
                query = sa.select(export_ledger).where(
                    export_ledger.c.flow == flow,
                    export_ledger.c.entity_key.in_(keys[start : start + KEY_CHUNK_SIZE]),
                )
                if self._db.is_postgresql:
                    query = query.with_for_update()
                current.update({row.entity_key: row for row in conn.execute(query)})
            missing = set(keys) - set(current)
            if missing:
                raise LedgerEntryNotFound(
                    f"{flow}: {len(missing)} entities have no ledger entry (e.g. {min(missing)}); claim them first"
                )
            updates = []
            for key in keys:
                row = current[key]
                if row.status == "exported":
                    if row.external_ref != wanted[key]:
                        raise LedgerConflict(
                            f"{flow}/{key} is already exported as {row.external_ref!r}, "
                            f"refusing to record a second ERP document {wanted[key]!r}"
                        )
                    continue
                updates.append({"row_id": row.id, "ref": wanted[key]})
            if updates:
                conn.execute(
                    export_ledger.update()
                    .where(export_ledger.c.id == sa.bindparam("row_id"))
                    .values(
                        status="exported",
                        external_ref=sa.bindparam("ref"),
                        attempts=export_ledger.c.attempts + 1,
                        last_error=None,
                        last_attempt_at=now,
                        exported_at=now,
                        updated_at=now,
                    ),
                    updates,
                )
                changed = len(updates)
        return changed

    def get(self, flow: str, entity_key: str) -> LedgerEntry | None:
        with self._db.read() as conn:
            row = conn.execute(_by_key(flow, entity_key)).one_or_none()
        return _entry(row) if row is not None else None

    def list(
        self, flow: str, status: LedgerStatus | None = None, *, limit: int | None = None
    ) -> builtins.list[LedgerEntry]:
        """Entries of one flow in the order they were first seen."""
        query = sa.select(export_ledger).where(export_ledger.c.flow == flow)
        if status is not None:
            query = query.where(export_ledger.c.status == status)
        query = query.order_by(export_ledger.c.first_seen_at, export_ledger.c.id).limit(limit)
        with self._db.read() as conn:
            return [_entry(row) for row in conn.execute(query)]

    def exported_keys(self, flow: str, keys: Iterable[str]) -> set[str]:
        """Which of `keys` this flow has exported: one query per chunk, for day-sized batches."""
        by_stored = {safe_key(key): key for key in keys}
        wanted = sorted(by_stored)
        found: set[str] = set()
        with self._db.read() as conn:
            for start in range(0, len(wanted), KEY_CHUNK_SIZE):
                chunk = wanted[start : start + KEY_CHUNK_SIZE]
                found.update(
                    conn.execute(
                        sa.select(export_ledger.c.entity_key).where(
                            export_ledger.c.flow == flow,
                            export_ledger.c.status == "exported",
                            export_ledger.c.entity_key.in_(chunk),
                        )
                    ).scalars()
                )
        return {by_stored[key] for key in found}

    def exported_by_entity_id(
        self, flow: str, entity_ids: Iterable[str]
    ) -> dict[str, tuple[str, str | None]]:
        """Entity id -> (entity_key, external_ref) of this flow's exported entries for those ids.

        Identity by entity, not by key: an order exported under its id-derived document number is
        found here after it got an ``orderNumber`` (a new key) and is not sent a second time.
        """
        by_stored = {safe_key(entity_id): entity_id for entity_id in entity_ids}
        wanted = sorted(by_stored)
        found: dict[str, tuple[str, str | None]] = {}
        with self._db.read() as conn:
            for start in range(0, len(wanted), KEY_CHUNK_SIZE):
                chunk = wanted[start : start + KEY_CHUNK_SIZE]
                rows = conn.execute(
                    sa.select(
                        export_ledger.c.entity_id,
                        export_ledger.c.entity_key,
                        export_ledger.c.external_ref,
                    )
                    .where(
                        export_ledger.c.flow == flow,
                        export_ledger.c.status == "exported",
                        export_ledger.c.entity_id.in_(chunk),
                    )
                    .order_by(export_ledger.c.exported_at, export_ledger.c.id)
                )
                for row in rows:
                    found.setdefault(by_stored[row.entity_id], (row.entity_key, row.external_ref))
        return found

    def keys_by_entity_id(self, flow: str, entity_ids: Iterable[str]) -> dict[str, set[str]]:
        """Entity id -> every key this flow ever claimed for it (any status).

        Claims are written before any ERP write, so an order the ERP may hold under another
        document number always has a row here under that number.
        """
        by_stored = {safe_key(entity_id): entity_id for entity_id in entity_ids}
        wanted = sorted(by_stored)
        found: dict[str, set[str]] = {}
        with self._db.read() as conn:
            for start in range(0, len(wanted), KEY_CHUNK_SIZE):
                rows = conn.execute(
                    sa.select(export_ledger.c.entity_id, export_ledger.c.entity_key).where(
                        export_ledger.c.flow == flow,
                        export_ledger.c.entity_id.in_(wanted[start : start + KEY_CHUNK_SIZE]),
                    )
                )
                for row in rows:
                    found.setdefault(by_stored[row.entity_id], set()).add(row.entity_key)
        return found

    def _get(
        self, conn: Connection, flow: str, entity_key: str, *, for_update: bool = False
    ) -> LedgerEntry:
        query = _by_key(flow, entity_key)
        if for_update:
            # Row lock on PostgreSQL for read-then-update; SQLite's BEGIN IMMEDIATE already has it.
            query = query.with_for_update()
        row = conn.execute(query).one_or_none()
        if row is None:
            raise LedgerEntryNotFound(f"{flow}/{entity_key} has no ledger entry; claim it first")
        return _entry(row)


def _by_key(flow: str, entity_key: str) -> sa.Select[Any]:
    return sa.select(export_ledger).where(
        export_ledger.c.flow == flow, export_ledger.c.entity_key == safe_key(entity_key)
    )


def _require_text(**values: str) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string")
