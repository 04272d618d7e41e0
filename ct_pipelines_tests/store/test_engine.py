"""Where the store lives, and that its password never shows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from ct_pipelines.store import IntegrationStore, StoreConfigurationError, store_url_from_env

PASSWORD = "s3cr3t-Pa55"


def test_default_is_sqlite_under_dagster_home(tmp_path: Path) -> None:
    url = store_url_from_env({"DAGSTER_HOME": str(tmp_path)})
    assert url == f"sqlite:///{(tmp_path / 'ct_pipelines.db').as_posix()}"
    # An explicit home wins over the environment's.
    other = tmp_path / "other"
    assert store_url_from_env({"DAGSTER_HOME": str(tmp_path)}, dagster_home=other).endswith(
        "other/ct_pipelines.db"
    )


def test_without_db_url_or_dagster_home_the_error_says_what_to_set() -> None:
    with pytest.raises(StoreConfigurationError, match="CT_PIPELINES_DB_URL nor DAGSTER_HOME"):
        store_url_from_env({})


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("postgresql://app@db.internal:5432/ct", "postgresql+psycopg://app@db.internal:5432/ct"),
        ("postgres://app@db.internal/ct", "postgresql+psycopg://app@db.internal/ct"),
        ("postgresql+psycopg://app@db.internal/ct", "postgresql+psycopg://app@db.internal/ct"),
        ("sqlite:////var/lib/ct/store.db", "sqlite:////var/lib/ct/store.db"),
    ],
)
def test_db_url_wins_and_postgresql_uses_psycopg3(configured: str, expected: str) -> None:
    environ = {"CT_PIPELINES_DB_URL": configured, "DAGSTER_HOME": "/ignored"}
    assert store_url_from_env(environ) == expected


def test_db_url_keeps_the_password_for_connecting() -> None:
    url = store_url_from_env({"CT_PIPELINES_DB_URL": f"postgresql://app:{PASSWORD}@db/ct"})
    assert url == f"postgresql+psycopg://app:{PASSWORD}@db/ct"


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(StoreConfigurationError, match="mysql"):
        store_url_from_env({"CT_PIPELINES_DB_URL": f"mysql://app:{PASSWORD}@db/ct"})


def test_an_unparseable_url_is_reported_without_echoing_it() -> None:
    with pytest.raises(StoreConfigurationError) as raised:
        store_url_from_env({"CT_PIPELINES_DB_URL": f"not a url :{PASSWORD}@"})
    assert PASSWORD not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_password_never_reaches_repr_url_logs_or_connection_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="ct_pipelines")
    # Port 1: nothing listens there, so the connection error path is exercised too.
    store = IntegrationStore(f"postgresql://app:{PASSWORD}@127.0.0.1:1/ct?connect_timeout=2")
    try:
        assert PASSWORD not in repr(store)
        assert PASSWORD not in str(store.url)
        assert "***" in store.url
        with pytest.raises(sa.exc.OperationalError) as raised:
            store.migrate()
        assert PASSWORD not in str(raised.value)
    finally:
        store.close()
    assert caplog.records, "the store should log where it is"
    assert PASSWORD not in caplog.text


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    store = IntegrationStore(f"sqlite:///{tmp_path / 'nested' / 'store.db'}")
    try:
        store.migrate()  # also proves the missing parent directory is created
        with store._db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


def test_from_env_opens_the_sqlite_default(tmp_path: Path) -> None:
    with IntegrationStore.from_env({"DAGSTER_HOME": str(tmp_path)}) as store:
        assert store.dialect == "sqlite"
        store.migrate()
    assert (tmp_path / "ct_pipelines.db").exists()
