"""The schema is versioned, migrations are idempotent and safe when processes start together."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
import sqlalchemy as sa

from ct_pipelines.store import LATEST_VERSION, IntegrationStore, SchemaVersionError
from ct_pipelines.store import schema as store_schema

ALL_VERSIONS = list(range(1, LATEST_VERSION + 1))


def _version_rows(store: IntegrationStore) -> list[tuple[int, str]]:
    with store._db.read() as conn:
        return [
            (row.version, row.description)
            for row in conn.execute(
                sa.select(store_schema.schema_version).order_by(
                    store_schema.schema_version.c.version
                )
            )
        ]


def test_migrate_records_version_and_a_second_run_is_a_no_op(store_url: str) -> None:
    with IntegrationStore(store_url) as store:
        assert store.schema_version() == 0
        assert store.migrate() == ALL_VERSIONS
        assert store.schema_version() == LATEST_VERSION
        first = _version_rows(store)
        store.write_snapshot("probe", pd.DataFrame({"a": [1]}), taken_at=store._db.now())

        assert store.migrate() == []
        assert _version_rows(store) == first
        assert [version for version, _ in first] == ALL_VERSIONS
        # Data survives a repeated migrate (nothing was recreated).
        assert len(store.list_snapshots("probe")) == 1


def test_migrated_tables_match_what_the_code_queries(store: IntegrationStore) -> None:
    with store._db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in store_schema.metadata.sorted_tables:
            reflected = {column["name"] for column in inspector.get_columns(table.name)}
            assert reflected == set(table.columns.keys()), table.name


def test_concurrent_migrations_apply_version_1_once(store_url: str) -> None:
    stores = [IntegrationStore(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def start(store: IntegrationStore) -> None:
        barrier.wait()
        try:
            results.append(store.migrate())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert sorted(results) == [[], [], [], ALL_VERSIONS]
        assert [v for v, _ in _version_rows(stores[0])] == ALL_VERSIONS
    finally:
        for store in stores:
            store.close()


def test_a_database_from_newer_code_is_refused(store: IntegrationStore) -> None:
    with store._db.write() as conn:
        conn.execute(
            store_schema.schema_version.insert().values(
                version=LATEST_VERSION + 1,
                description="from the future",
                applied_at=store._db.now(),
            )
        )
    with pytest.raises(SchemaVersionError, match="newer than this code"):
        store.migrate()
