"""The integration store: what must outlive a Dagster run.

- the export ledger (exactly-once exports to the ERP),
- the exception queue with its audit trail (bad input never sinks a batch),
- snapshots that assets write (with their time, so drift can be followed),
- cursors that sensors and flows keep.

SQLite under DAGSTER_HOME by default, PostgreSQL when CT_PIPELINES_DB_URL says so.
"""

from ct_pipelines.store.engine import StoreConfigurationError, safe_url, store_url_from_env
from ct_pipelines.store.exception_queue import (
    ExceptionCategory,
    ExceptionEvent,
    ExceptionNotFound,
    ExceptionRecord,
    ExceptionStatus,
)
from ct_pipelines.store.integration_store import IntegrationStore
from ct_pipelines.store.ledger import (
    LedgerConflict,
    LedgerEntry,
    LedgerEntryNotFound,
    LedgerStatus,
    payload_hash,
)
from ct_pipelines.store.migrations import LATEST_VERSION, SchemaVersionError
from ct_pipelines.store.snapshots import SnapshotInfo, SnapshotNotFound

__all__ = [
    "LATEST_VERSION",
    "ExceptionCategory",
    "ExceptionEvent",
    "ExceptionNotFound",
    "ExceptionRecord",
    "ExceptionStatus",
    "IntegrationStore",
    "LedgerConflict",
    "LedgerEntry",
    "LedgerEntryNotFound",
    "LedgerStatus",
    "SchemaVersionError",
    "SnapshotInfo",
    "SnapshotNotFound",
    "StoreConfigurationError",
    "payload_hash",
    "safe_url",
    "store_url_from_env",
]
