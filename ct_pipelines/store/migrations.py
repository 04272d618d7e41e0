"""Ordered schema migrations, applied by `IntegrationStore.migrate()`.

Every Dagster process that opens the store calls `migrate()`, so two runs starting together must
not both create tables: the whole check-and-apply happens in one transaction under a lock
(pg_advisory_xact_lock on PostgreSQL, BEGIN IMMEDIATE on SQLite). Both backends have
transactional DDL, so a failed migration leaves the previous version intact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ct_pipelines.store import schema
from ct_pipelines.store.engine import Database

logger = logging.getLogger(__name__)

_MIGRATION_LOCK = ("ct_pipelines.store", "migrate")


class SchemaVersionError(RuntimeError):
    """The database was migrated by a newer ct_pipelines than the one running."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _version_1(conn: Connection) -> None:
    schema.metadata.create_all(conn, tables=list(schema.VERSION_1_TABLES), checkfirst=False)


def _version_2(conn: Connection) -> None:
    # The ledger knows an order by its id as well as by its document number (an order exported
    # before it had an orderNumber must not be exported again once it has one): index the id.
    conn.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {schema.LEDGER_ENTITY_ID_INDEX} "
        "ON export_ledger (flow, entity_id)"
    )


def _version_3(conn: Connection) -> None:
    # Self-contained (a table of its own, created only if missing), so it stays correct whatever
    # number it ends up with next to migrations written meanwhile.
    schema.metadata.create_all(conn, tables=[schema.export_claims], checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "export ledger, exception queue with audit trail, snapshots, cursors", _version_1),
    Migration(2, "export ledger: index by entity id (identity by order, not document)", _version_2),
    Migration(3, "export claims: owner and lease per entity being exported", _version_3),
)
LATEST_VERSION = MIGRATIONS[-1].version


def _check_order() -> None:
    versions = [m.version for m in MIGRATIONS]
    if versions != list(range(1, len(versions) + 1)):
        raise AssertionError(f"migrations must be numbered 1..n without gaps, got {versions}")


_check_order()


def current_version(conn: Connection) -> int:
    """The highest applied version; 0 for an empty database."""
    if not sa.inspect(conn).has_table(schema.schema_version.name):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar_one()
    return int(value or 0)


def migrate(db: Database) -> list[int]:
    """Bring the database to LATEST_VERSION; returns the versions applied (empty when up to date)."""
    with db.write() as conn:
        db.lock(conn, *_MIGRATION_LOCK)
        # Created outside the numbered migrations: it is what records them.
        schema.schema_version.create(conn, checkfirst=True)
        found = current_version(conn)
        if found > LATEST_VERSION:
            raise SchemaVersionError(
                f"the integration store is at schema version {found}, newer than this code "
                f"knows ({LATEST_VERSION}); upgrade ct_pipelines before running it here"
            )
        applied: list[int] = []
        for migration in MIGRATIONS:
            if migration.version <= found:
                continue
            migration.apply(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=db.now(),
                )
            )
            applied.append(migration.version)
            logger.info(
                "integration store: applied schema migration %d (%s)",
                migration.version,
                migration.description,
            )
        return applied
