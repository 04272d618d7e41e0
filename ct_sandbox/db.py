"""SQLite plumbing shared by every part of the sandbox world (one ``world.db`` file).

Contract (used by the commercetools and ERP sandbox apps, seed and world):

- ``connect(path) -> sqlite3.Connection``: one connection per thread and database file, kept in a
  ``threading.local`` (WAL, ``busy_timeout`` 30 s, ``check_same_thread=False``, autocommit mode so
  that transactions are always explicit). The connection is closed when its thread ends.
- ``transaction(conn, write=True)``: ``BEGIN IMMEDIATE`` for writes (``BEGIN`` for reads), commit
  on success, rollback on error. Nested use joins the outer transaction.

Additions beyond the contract:

- ``close_all(path=None)``: close every connection this process opened (to one file or all), for
  example before copying the sandbox directory; later ``connect`` calls reopen transparently.
- ``ensure_schema(conn)``: creates the commercetools-side tables (documents, tokens, faults,
  request log, meta). Idempotent and cheap; run once per process and file by ``connect``.
- ``get_meta(path, name)`` / ``set_meta(path, name, value)``: a small key/value table
  ``sandbox_meta`` for world-wide settings (for example the simulated clock offset).
- ``sandbox_now(path)``: the world's clock, UTC wall time plus the offset stored in meta
  ``clock_offset_seconds`` (so ``SandboxWorld.advance`` moves time for every process).
- ``format_timestamp(dt)``: commercetools' timestamp format, ``2026-01-31T09:30:00.123Z``.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000

_local = threading.local()
_registry_lock = threading.Lock()
# Every open connection, so close_all can reach connections owned by other threads.
_registry: dict[int, tuple[str, sqlite3.Connection]] = {}
# Bumped by close_all so that threads notice their cached connection was closed.
_generations: dict[str, int] = {}
_schema_ready: set[str] = set()

SCHEMA = """
CREATE TABLE IF NOT EXISTS ct_documents (
    resource TEXT NOT NULL,
    id TEXT NOT NULL,
    key TEXT,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    last_modified_at TEXT NOT NULL,
    sku TEXT,
    order_number TEXT,
    supply_channel TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ct_documents_id ON ct_documents (resource, id);
CREATE UNIQUE INDEX IF NOT EXISTS ct_documents_key ON ct_documents (resource, key)
    WHERE key IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS ct_documents_order_number ON ct_documents (resource, order_number)
    WHERE order_number IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS ct_documents_inventory_pair
    ON ct_documents (resource, sku, ifnull(supply_channel, ''))
    WHERE resource = 'inventory';
CREATE INDEX IF NOT EXISTS ct_documents_sku ON ct_documents (resource, sku) WHERE sku IS NOT NULL;
CREATE INDEX IF NOT EXISTS ct_documents_created ON ct_documents (resource, created_at);
CREATE INDEX IF NOT EXISTS ct_documents_modified ON ct_documents (resource, last_modified_at);
CREATE INDEX IF NOT EXISTS ct_documents_channel ON ct_documents (resource, supply_channel)
    WHERE supply_channel IS NOT NULL;

-- SKUs are unique across all products (current and staged variants).
CREATE TABLE IF NOT EXISTS ct_product_skus (
    sku TEXT PRIMARY KEY,
    product_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ct_product_skus_product ON ct_product_skus (product_id);

-- Access tokens are stored hashed: the database never holds a usable credential.
CREATE TABLE IF NOT EXISTS ct_tokens (
    token_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ct_api_clients (
    client_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    token_ttl_seconds INTEGER
);

CREATE TABLE IF NOT EXISTS sandbox_faults (
    side TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_fault_state (
    side TEXT PRIMARY KEY,
    draws INTEGER NOT NULL DEFAULT 0,
    injected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sandbox_request_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    side TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER,
    fault TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sandbox_request_log_side ON sandbox_request_log (side, seq);
CREATE TABLE IF NOT EXISTS sandbox_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class _Holder:
    """Owns one thread's connection; closes it when the thread's locals are discarded."""

    def __init__(self, path: str, conn: sqlite3.Connection, generation: int) -> None:
        self.path = path
        self.conn = conn
        self.generation = generation

    def __del__(self) -> None:
        with _registry_lock:
            _registry.pop(id(self.conn), None)
        with suppress(sqlite3.Error):
            self.conn.close()


def _normalise(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if os.path.isabs(text):
        # Every request opens its thread's connection through here: resolving the same absolute
        # path again (several lstat calls each time) cost more than the request's own queries.
        return _resolved(text)
    return str(Path(text).resolve())


def normalise_path(path: str | os.PathLike[str]) -> str:
    """The resolved path that identifies a database file in this process (cached)."""
    return _normalise(path)


@functools.lru_cache(maxsize=256)
def _resolved(path: str) -> str:
    return str(Path(path).resolve())


def _open(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL is durable across application crashes, which is all a sandbox needs.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """This thread's connection to the database at ``path`` (opened and migrated on first use)."""
    key = _normalise(path)
    holders: dict[str, _Holder] = _local.__dict__.setdefault("holders", {})
    holder = holders.get(key)
    generation = _generations.get(key, 0)
    if holder is not None and holder.generation == generation:
        return holder.conn
    conn = _open(key)
    if key not in _schema_ready:
        ensure_schema(conn)
        _schema_ready.add(key)
    holders[key] = _Holder(key, conn, generation)
    with _registry_lock:
        _registry[id(conn)] = (key, conn)
    return conn


def close_all(path: str | os.PathLike[str] | None = None) -> None:
    """Close this process's connections (to ``path``, or all) after a WAL checkpoint."""
    key = _normalise(path) if path is not None else None
    with _registry_lock:
        targets = [(p, c) for p, c in _registry.values() if key is None or p == key]
        for p, c in targets:
            _registry.pop(id(c), None)
            _generations[p] = _generations.get(p, 0) + 1
    checkpointed: set[str] = set()
    for p, c in targets:
        try:
            if p not in checkpointed and not c.in_transaction:
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                checkpointed.add(p)
            c.close()
        except sqlite3.Error:
            pass


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the sandbox tables this module owns (idempotent)."""
    conn.executescript(SCHEMA)


@contextmanager
def transaction(conn: sqlite3.Connection, write: bool = True) -> Iterator[sqlite3.Connection]:
    """Run a block in one transaction; BEGIN IMMEDIATE for writes so writers queue, not deadlock."""
    if conn.in_transaction:
        # Joined: the outermost block commits or rolls back.
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def get_meta(path: str | os.PathLike[str], name: str) -> str | None:
    row = connect(path).execute("SELECT value FROM sandbox_meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(path: str | os.PathLike[str], name: str, value: str) -> None:
    conn = connect(path)
    with transaction(conn):
        conn.execute(
            "INSERT INTO sandbox_meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )


CLOCK_OFFSET_META = "clock_offset_seconds"


def sandbox_now(path: str | os.PathLike[str]) -> datetime:
    """The simulated world time: real UTC time shifted by the stored clock offset."""
    offset = get_meta(path, CLOCK_OFFSET_META)
    now = datetime.now(UTC)
    return now + timedelta(seconds=float(offset)) if offset else now


def format_timestamp(moment: datetime) -> str:
    """commercetools' timestamp format: UTC with milliseconds and a Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
