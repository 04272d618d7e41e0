"""How fresh the flows with a cadence should be, so the UI shows when one falls behind.

- inventory: a full reconciliation every CT_PIPELINES_INVENTORY_RECONCILE_MINUTES (30 by
  default), delta syncs in between: late after one missed run, failing after two;
- finance: the nightly job (CT_PIPELINES_FINANCE_CRON, 02:00 by default) builds yesterday:
  late an hour past a day, failing two hours past.
"""

from datetime import timedelta

import dagster as dg

from ct_pipelines.defs.inventory.logic.settings import InventorySettings

_INVENTORY = InventorySettings.from_env()

INVENTORY_CADENCE = dg.FreshnessPolicy.time_window(
    warn_window=_INVENTORY.cadence + _INVENTORY.staleness_grace,
    fail_window=2 * _INVENTORY.cadence + _INVENTORY.staleness_grace,
)
FINANCE_NIGHTLY = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(hours=25), fail_window=timedelta(hours=26)
)
