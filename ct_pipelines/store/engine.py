"""Where the integration store lives and how it is reached: URL rules, engine set-up, transactions.

The store must outlive a Dagster run, and several runs (separate processes) may write to it at
once. SQLite is the zero-configuration default; PostgreSQL is for shared deployments. The rules
here make both behave the same way for the rest of the package: writers are serialised where the
database needs it, every timestamp is timezone-aware UTC, and the URL's password never reaches a
log line, a repr or an exception message.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

DB_URL_VARIABLE = "CT_PIPELINES_DB_URL"
SQLITE_FILE_NAME = "ct_pipelines.db"

# Long enough to ride out another run's snapshot write; short enough that a stuck writer surfaces.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

# Execution option that asks for a write transaction (BEGIN IMMEDIATE on SQLite).
_WRITE_OPTION = "ct_pipelines_write"

Clock = Callable[[], datetime]


class StoreConfigurationError(ValueError):
    """The store's URL or location is missing or unusable. The message never contains a password."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _parse(url: str | URL, *, source: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        # SQLAlchemy's own message repeats the whole string, password included.
        raise StoreConfigurationError(f"{source} is not a valid SQLAlchemy database URL") from None


def normalise_url(url: str | URL, *, source: str = "the store URL") -> URL:
    """Parse a store URL and pin PostgreSQL to psycopg 3, the driver this project installs.

    Operators write `postgresql://...` (or the `postgres://` spelling some platforms hand out);
    SQLAlchemy would pick psycopg2 for those, which the store is not tested against.
    """
    parsed = _parse(url, source=source)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise StoreConfigurationError(
        f"{source} must be a sqlite:// or postgresql:// URL, not {backend}://"
    )


def safe_url(url: str | URL) -> str:
    """The URL as it may be logged or shown: password replaced by ***."""
    return _parse(url, source="the store URL").render_as_string(hide_password=True)


def store_url_from_env(
    environ: Mapping[str, str] = os.environ, dagster_home: str | os.PathLike[str] | None = None
) -> str:
    """The store URL for this deployment: CT_PIPELINES_DB_URL, else SQLite under DAGSTER_HOME.

    The returned string carries the password (it is what the engine connects with); show it only
    through `safe_url`.
    """
    configured = (environ.get(DB_URL_VARIABLE) or "").strip()
    if configured:
        url = normalise_url(configured, source=DB_URL_VARIABLE)
        return url.render_as_string(hide_password=False)
    home = dagster_home if dagster_home is not None else environ.get("DAGSTER_HOME")
    if not home:
        raise StoreConfigurationError(
            f"Neither {DB_URL_VARIABLE} nor DAGSTER_HOME is set: the integration store needs one "
            f"(SQLite default: $DAGSTER_HOME/{SQLITE_FILE_NAME})"
        )
    path = Path(home).expanduser().resolve() / SQLITE_FILE_NAME
    return URL.create("sqlite", database=path.as_posix()).render_as_string(hide_password=False)


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_store_engine(url: str | URL) -> Engine:
    """An engine with the connection rules the store relies on (see the module docstring)."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "postgresql":
        # pre_ping: a long-lived code server outlives database restarts and idle-connection reaping.
        return sa.create_engine(parsed, pool_pre_ping=True)

    connect_args: dict[str, Any] = {
        "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
        "check_same_thread": False,
    }
    if _is_memory_sqlite(parsed):
        engine = sa.create_engine(parsed, connect_args=connect_args, poolclass=StaticPool)
    else:
        Path(str(parsed.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args=connect_args)
    _configure_sqlite(engine)
    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch a new database file to WAL, waiting out other first connections.

    Changing the journal mode needs an exclusive lock and SQLite answers "database is locked" at
    once instead of calling the busy handler, so several processes opening a fresh store together
    (two Dagster runs, a sensor) retry here for up to the busy timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself, so writers can ask for IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # WAL: readers (the UI, a sensor) never block the writer and vice versa.
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            # Durable across application crashes in WAL mode, and much faster for bulk snapshots.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with "database is
        # locked" when another process committed in between; IMMEDIATE takes the write lock up
        # front and waits politely (busy_timeout) instead.
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def advisory_key(*parts: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock, derived from readable names."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Database:
    """The engine plus the transaction and locking rules shared by the ledger, queue and snapshots."""

    def __init__(self, url: str | URL, *, clock: Clock = utc_now) -> None:
        self.url = normalise_url(url)
        self.engine = create_store_engine(self.url)
        self.clock = clock

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def now(self) -> datetime:
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the store's clock must return timezone-aware datetimes")
        return moment.astimezone(UTC)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: serialised against other writers on SQLite."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: one consistent view, never blocks writers."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def lock(self, conn: Connection, *parts: str) -> None:
        """Serialise writers of one logical thing until the transaction ends.

        PostgreSQL needs an explicit advisory lock; SQLite's BEGIN IMMEDIATE already admits one
        writer at a time, so there is nothing more to do there.
        """
        if self.is_postgresql:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(*parts)}
            )

    def dispose(self) -> None:
        self.engine.dispose()


def require_aware(value: datetime, name: str) -> datetime:
    """Reject naive datetimes: a naive time in a store shared across machines is ambiguous."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got a naive datetime)")
    return value.astimezone(UTC)
