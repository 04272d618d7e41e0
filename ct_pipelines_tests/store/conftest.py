"""Every store test runs on SQLite and on PostgreSQL.

PostgreSQL comes from CT_PIPELINES_TEST_PG_URL. Each test gets its own schema (created here,
dropped afterwards; names carry a per-session token, so concurrent sessions on one server never
collide). Without the variable the PostgreSQL half skips with a visible reason, except under
CI=true, where a missing or unreachable PostgreSQL fails the test instead.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from ct_pipelines.store import IntegrationStore
from ct_pipelines.store.engine import normalise_url, safe_url

PG_URL_VARIABLE = "CT_PIPELINES_TEST_PG_URL"


@dataclass
class PostgresServer:
    url: URL | None
    problem: str | None
    admin: Engine | None = None
    prefix: str = field(default_factory=lambda: f"ct_test_{uuid.uuid4().hex[:10]}")
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def new_schema(self) -> str:
        assert self.admin is not None
        name = f"{self.prefix}_{next(self.counter)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        return name

    def drop_schema(self, name: str) -> None:
        assert self.admin is not None
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    raw = os.environ.get(PG_URL_VARIABLE, "").strip()
    if not raw:
        yield PostgresServer(None, f"{PG_URL_VARIABLE} is not set")
        return
    url = normalise_url(raw, source=PG_URL_VARIABLE)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        admin.dispose()
        reason = f"PostgreSQL at {safe_url(url)} is unreachable ({type(exc.orig or exc).__name__})"
        yield PostgresServer(url, reason)
        return
    server = PostgresServer(url, None, admin)
    yield server
    # Sweep what a crashed test may have left behind; only this session's schemas.
    with admin.connect() as conn:
        leftovers = conn.execute(
            sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"),
            {"prefix": f"{server.prefix}_%"},
        ).scalars()
        for name in list(leftovers):
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    admin.dispose()


def require_postgres(server: PostgresServer) -> None:
    if server.problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{server.problem}: CI requires the PostgreSQL store tests to run", pytrace=False
        )
    pytest.skip(
        f"{server.problem}: PostgreSQL store tests skipped "
        f"(e.g. {PG_URL_VARIABLE}=postgresql://postgres@127.0.0.1:5432/test)"
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> Iterator[str]:
    """A URL to an empty database on each backend (not yet migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    require_postgres(postgres_server)
    assert postgres_server.url is not None
    schema = postgres_server.new_schema()
    url = postgres_server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        postgres_server.drop_schema(schema)


@pytest.fixture
def store(store_url: str) -> Iterator[IntegrationStore]:
    """A migrated store on each backend."""
    integration_store = IntegrationStore(store_url)
    integration_store.migrate()
    try:
        yield integration_store
    finally:
        integration_store.close()


class ManualClock:
    """A clock tests move by hand, for ageing exceptions and ordering snapshots."""

    def __init__(self, start: datetime = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clocked_store(
    store: IntegrationStore, store_url: str, clock: ManualClock
) -> Iterator[IntegrationStore]:
    """The same database as `store`, seen through a store whose clock the test controls."""
    integration_store = IntegrationStore(store_url, clock=clock)
    try:
        yield integration_store
    finally:
        integration_store.close()
