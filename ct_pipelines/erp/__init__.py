"""The ERP/WMS side: a vendor-neutral port, its REST adapter and typed errors (no Dagster here)."""

from ct_pipelines.erp.errors import (
    ErpError,
    ErpRecordLockedError,
    ErpTransientError,
    ErpValidationError,
)
from ct_pipelines.erp.port import ErpPort

__all__ = [
    "ErpError",
    "ErpPort",
    "ErpRecordLockedError",
    "ErpTransientError",
    "ErpValidationError",
]
