"""The store tests' fixtures for the order-to-cash tests: `store` is a migrated store on SQLite
and on PostgreSQL (CT_PIPELINES_TEST_PG_URL), so flow tests can run on both backends."""

from ct_pipelines_tests.store.conftest import postgres_server, store, store_url

__all__ = ["postgres_server", "store", "store_url"]
