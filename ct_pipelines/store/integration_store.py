"""`IntegrationStore`: the one object flows use for state that must outlive a Dagster run."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL

from ct_pipelines.store.claims import ExportClaims
from ct_pipelines.store.engine import Clock, Database, safe_url, store_url_from_env, utc_now
from ct_pipelines.store.exception_queue import (
    DEFAULT_ACTOR,
    ExceptionEvent,
    ExceptionQueue,
    ExceptionRecord,
    ExceptionStatus,
)
from ct_pipelines.store.ledger import ExportLedger, LedgerEntry
from ct_pipelines.store.migrations import current_version, migrate
from ct_pipelines.store.schema import cursors
from ct_pipelines.store.snapshots import SnapshotInfo, Snapshots

logger = logging.getLogger(__name__)


class IntegrationStore:
    """Export ledger and claims, exception queue, snapshots and cursors on SQLite or PostgreSQL.

    One instance per process is enough (it holds a connection pool and is thread-safe). Call
    `migrate()` once after opening; it is cheap when the schema is current.
    """

    def __init__(self, url: str | URL, *, clock: Clock = utc_now) -> None:
        self._db = Database(url, clock=clock)
        self.ledger = ExportLedger(self._db)
        self.claims = ExportClaims(self._db)
        self.exceptions = ExceptionQueue(self._db)
        self.snapshots = Snapshots(self._db)
        logger.debug("integration store at %s", self.url)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] = os.environ,
        dagster_home: str | os.PathLike[str] | None = None,
        *,
        clock: Clock = utc_now,
    ) -> IntegrationStore:
        """The deployment's store: CT_PIPELINES_DB_URL, else SQLite under DAGSTER_HOME."""
        return cls(store_url_from_env(environ, dagster_home), clock=clock)

    @property
    def url(self) -> str:
        """The database URL with the password hidden: safe for logs and the UI."""
        return safe_url(self._db.url)

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def __repr__(self) -> str:
        return f"IntegrationStore({self.url!r})"

    def close(self) -> None:
        """Release pooled connections (tests, CLI commands); the store is unusable afterwards."""
        self._db.dispose()

    def __enter__(self) -> IntegrationStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- schema --------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied (empty when up to date)."""
        applied = migrate(self._db)
        if applied:
            logger.info("integration store %s migrated to schema version %d", self.url, applied[-1])
        return applied

    def schema_version(self) -> int:
        """The applied schema version (0 for a store never migrated)."""
        with self._db.read() as conn:
            return current_version(conn)

    # --- export ledger (see ExportLedger for the full API, e.g. ledger.list) ------------------

    def claim(
        self,
        flow: str,
        entity_key: str,
        entity_id: str | None = None,
        entity_version: int | None = None,
        payload_hash: str | None = None,
    ) -> LedgerEntry:
        return self.ledger.claim(flow, entity_key, entity_id, entity_version, payload_hash)

    def mark_exported(self, flow: str, entity_key: str, external_ref: str) -> LedgerEntry:
        return self.ledger.mark_exported(flow, entity_key, external_ref)

    def mark_failed(self, flow: str, entity_key: str, error: str) -> LedgerEntry:
        return self.ledger.mark_failed(flow, entity_key, error)

    def exported_keys(self, flow: str, keys: Iterable[str]) -> set[str]:
        return self.ledger.exported_keys(flow, keys)

    # --- exception queue -------------------------------------------------------------------

    def record_exception(
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
        """Queue an entity a flow could not process (deduplicated while unresolved)."""
        return self.exceptions.record(
            flow=flow,
            entity_key=entity_key,
            category=category,
            reason=reason,
            payload_ref=payload_ref,
            details=details,
            sku=sku,
            channel=channel,
            actor=actor,
        )

    def list_exceptions(
        self,
        flow: str | None = None,
        status: ExceptionStatus | Sequence[ExceptionStatus] | None = None,
        category: str | None = None,
        entity_key: str | None = None,
        older_than: datetime | timedelta | None = None,
        *,
        limit: int | None = None,
    ) -> list[ExceptionRecord]:
        return self.exceptions.list(
            flow=flow,
            status=status,
            category=category,
            entity_key=entity_key,
            older_than=older_than,
            limit=limit,
        )

    def get_exception(self, exception_id: int) -> ExceptionRecord:
        return self.exceptions.get(exception_id)

    def exception_events(self, exception_id: int) -> list[ExceptionEvent]:
        return self.exceptions.events(exception_id)

    def resolve_exception(self, exception_id: int, actor: str, note: str) -> ExceptionRecord:
        return self.exceptions.resolve(exception_id, actor, note)

    def mark_retrying(self, ids: Iterable[int], actor: str) -> list[ExceptionRecord]:
        return self.exceptions.mark_retrying(ids, actor)

    def close_on_success(
        self, flow: str, entity_key: str, actor: str = DEFAULT_ACTOR
    ) -> list[ExceptionRecord]:
        return self.exceptions.close_on_success(flow, entity_key, actor)

    # --- snapshots -------------------------------------------------------------------------

    def write_snapshot(
        self,
        name: str,
        rows: pd.DataFrame,
        *,
        partition_key: str | None = None,
        taken_at: datetime,
    ) -> SnapshotInfo:
        return self.snapshots.write(name, rows, partition_key=partition_key, taken_at=taken_at)

    def read_snapshot(
        self, name: str, partition_key: str | None = None, taken_at: datetime | None = None
    ) -> pd.DataFrame:
        return self.snapshots.read(name, partition_key=partition_key, taken_at=taken_at)

    def upsert_snapshot(
        self,
        name: str,
        rows: pd.DataFrame,
        *,
        partition_key: str,
        key: str,
        taken_at: datetime,
    ) -> SnapshotInfo:
        """Update a partition's snapshot in place for these rows (matched on ``key``)."""
        return self.snapshots.upsert(
            name, rows, partition_key=partition_key, key=key, taken_at=taken_at
        )

    def read_snapshot_rows(
        self, name: str, partition_key: str | None, *, key: str, values: Sequence[str]
    ) -> pd.DataFrame:
        """The rows of a snapshot whose ``key`` is one of ``values`` (no full decode)."""
        return self.snapshots.read_rows(name, partition_key, key=key, values=values)

    def list_snapshots(self, name: str) -> list[SnapshotInfo]:
        return self.snapshots.list(name)

    def prune_snapshots(self, name: str, keep: int) -> int:
        return self.snapshots.prune(name, keep)

    # --- cursors ---------------------------------------------------------------------------

    def get_cursor(self, name: str) -> str | None:
        """A sensor's or flow's own checkpoint (e.g. the ERP's stock-movement cursor)."""
        with self._db.read() as conn:
            return conn.execute(
                sa.select(cursors.c.value).where(cursors.c.name == name)
            ).scalar_one_or_none()

    def set_cursor(self, name: str, value: str) -> None:
        if not name:
            raise ValueError("a cursor needs a name")
        now = self._db.now()
        insert = (postgresql.insert if self._db.is_postgresql else sqlite.insert)(cursors)
        statement = insert.values(name=name, value=value, updated_at=now).on_conflict_do_update(
            index_elements=[cursors.c.name], set_={"value": value, "updated_at": now}
        )
        with self._db.write() as conn:
            conn.execute(statement)
