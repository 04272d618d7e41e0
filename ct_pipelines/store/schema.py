"""The store's tables (see migrations.py for what each schema version added) as SQLAlchemy Core objects.

Changing a table here is a schema change: add a migration in `migrations.py` that alters existing
databases, and keep migration 1 creating the version-1 shape (copy the version-1 definitions into
the migration before editing them here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on both backends.

    SQLite has no time zone type and hands back naive values; storing naive UTC there (as sortable
    ISO text) and re-attaching UTC on the way out keeps comparisons and ordering correct.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("the integration store only accepts timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL so operators can query details and snapshot rows in SQL.
Json: sa.types.TypeEngine[Any] = sa.JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

LEDGER_STATUSES = ("pending", "exported", "failed")

export_ledger = sa.Table(
    "export_ledger",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("entity_key", sa.String(255), nullable=False),
    sa.Column("entity_id", sa.String(255)),
    sa.Column("entity_version", sa.BigInteger),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("external_ref", sa.String(255)),
    sa.Column("payload_hash", sa.String(128)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("first_seen_at", UtcDateTime, nullable=False),
    sa.Column("last_attempt_at", UtcDateTime),
    sa.Column("exported_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # The exactly-once guarantee: one ledger row per business entity and flow.
    sa.UniqueConstraint("flow", "entity_key"),
    sa.CheckConstraint(f"status IN {LEDGER_STATUSES!r}", name="status"),
    sa.Index(None, "flow", "status"),
)

# Created by migration 2 (not declared on the table, so migration 1 keeps the version-1 shape).
LEDGER_ENTITY_ID_INDEX = "ix_export_ledger_flow_entity_id"

EXCEPTION_STATUSES = ("open", "retrying", "resolved")

exception_queue = sa.Table(
    "exception_queue",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("entity_key", sa.String(255), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("payload_ref", sa.String(255)),
    sa.Column("details", Json),
    sa.Column("sku", sa.String(255)),
    sa.Column("channel", sa.String(255)),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("resolved_by", sa.String(255)),
    sa.Column("resolution_note", sa.Text),
    sa.CheckConstraint(f"status IN {EXCEPTION_STATUSES!r}", name="status"),
    sa.Index(None, "flow", "status"),
    sa.Index(None, "status", "category"),
    sa.Index(None, "flow", "entity_key"),
    sa.Index(None, "sku"),
    # At most one unresolved exception per entity and category: a recurrence bumps attempts.
    sa.Index(
        "uq_exception_queue_unresolved",
        "flow",
        "entity_key",
        "category",
        unique=True,
        sqlite_where=sa.text("status <> 'resolved'"),
        postgresql_where=sa.text("status <> 'resolved'"),
    ),
)

exception_events = sa.Table(
    "exception_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column(
        "exception_id",
        Id,
        sa.ForeignKey("exception_queue.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("detail", Json),
    sa.Index(None, "exception_id", "id"),
)

snapshot_runs = sa.Table(
    "snapshot_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("partition_key", sa.String(200)),
    sa.Column("taken_at", UtcDateTime, nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("columns", Json, nullable=False),
    sa.Column("written_at", UtcDateTime, nullable=False),
    # One run per partition; NULL partition keys are distinct on both backends, so unpartitioned
    # snapshots keep their history.
    sa.UniqueConstraint("name", "partition_key"),
    sa.Index(None, "name", "taken_at"),
)

snapshot_rows = sa.Table(
    "snapshot_rows",
    metadata,
    sa.Column(
        "run_id",
        Id,
        sa.ForeignKey("snapshot_runs.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("row_no", sa.Integer, primary_key=True, autoincrement=False),
    # Plain json, not jsonb: rows are written and read whole, and json stores the text as given
    # (about twice as fast both ways for large snapshots), while staying queryable with ->>.
    sa.Column("data", sa.JSON(), nullable=False),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Who is exporting an entity right now (created by migration 3): one row per claimed
# (flow, entity_key), with the owner (host, pid, process start, a nonce) and the lease's end. The
# ledger row says what happened; this says who may act on it meanwhile. A row is removed when its
# entity is recorded (exported or failed) or its owner releases it; an expired lease, or an owner
# whose process is provably gone, may be taken over.
export_claims = sa.Table(
    "export_claims",
    metadata,
    sa.Column("flow", sa.String(100), primary_key=True),
    sa.Column("entity_key", sa.String(255), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("claimed_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Index(None, "owner"),
)

# The tables migration 1 creates, in dependency order.
VERSION_1_TABLES = (
    export_ledger,
    exception_queue,
    exception_events,
    snapshot_runs,
    snapshot_rows,
    cursors,
)
