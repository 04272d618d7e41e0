"""The Dagster instance on PostgreSQL, configured exactly as the README says (`postgresql://`).

SQLAlchemy 2.1 maps a plain `postgresql://` URL to psycopg 3, on which dagster-postgres's
`NOTIFY run_events, $1` fails every run; the project pins SQLAlchemy below 2.1, and this test
runs a real materialisation on such an instance so a later upgrade cannot break it silently.
Each test gets its own database (created and dropped here). Without CT_PIPELINES_TEST_PG_URL the
test skips, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster import DagsterInstance
from sqlalchemy.engine import make_url

from ct_pipelines.defs.order_to_cash.assets import order_batches
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.defs.order_to_cash.helpers import past_day, world_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def instance_database_url() -> Iterator[str]:
    raw = os.environ.get("CT_PIPELINES_TEST_PG_URL", "").strip()
    if not raw:
        if os.environ.get("CI") == "true":
            pytest.fail("CT_PIPELINES_TEST_PG_URL is not set under CI=true")
        pytest.skip("CT_PIPELINES_TEST_PG_URL is not set")
    server = make_url(raw)
    name = f"ct_instance_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        server.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    # The spelling an operator copies from the README: plain postgresql://, no driver named.
    yield server.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


def test_a_materialisation_runs_on_a_postgresql_instance_with_a_plain_url(
    instance_database_url: str, sandbox_dir: Path, tmp_path: Path
) -> None:
    assert instance_database_url.startswith("postgresql://")
    home = tmp_path / "pg_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        f"storage:\n  postgres:\n    postgres_url: {instance_database_url}\n"
    )
    world = world_for(sandbox_dir)
    day = past_day(world, 2)
    world.bulk_orders(5, day=day, payment_kind="paid")
    instance = DagsterInstance.from_config(str(home))
    try:
        result = dg.materialize(
            [order_batches],
            partition_key=day.isoformat(),
            resources=build_resources(),
            instance=instance,
        )
        assert result.success
        record = instance.get_latest_materialization_event(dg.AssetKey("order_batches"))
        assert record is not None
        assert record.dagster_event is not None
        assert record.dagster_event.partition == day.isoformat()
    finally:
        instance.dispose()
