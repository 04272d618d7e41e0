"""Jobs of the inventory flow: the near-real-time delta, the full reconciliation, staleness."""

from __future__ import annotations

import dagster as dg

from ct_pipelines.defs.inventory import checks

# The sensor's runs: only the SKUs whose stock moved (run config from the sensor).
inventory_delta_sync_job = dg.define_asset_job(
    name="inventory_delta_sync",
    selection=dg.AssetSelection.assets("inventory_sync"),
    description="Writes the stock of the SKUs that moved in the ERP/WMS since the last tick.",
    tags={"ct/flow": "inventory", "ct/cadence": "delta"},
)

# The schedule's runs: every mapped channel, then a snapshot whose checks judge the result.
inventory_full_reconciliation_job = dg.define_asset_job(
    name="inventory_full_reconciliation",
    selection=dg.AssetSelection.assets("inventory_sync", checks.SNAPSHOTS),
    description="Compares every SKU and channel, repairs what the deltas missed, snapshots both.",
    config={"ops": {"inventory_sync": {"config": {"mode": "full"}}}},
    tags={"ct/flow": "inventory", "ct/cadence": "full"},
)

inventory_staleness_job = dg.define_asset_job(
    name="inventory_snapshot_staleness",
    selection=dg.AssetSelection.checks(
        dg.AssetCheckKey(dg.AssetKey(checks.SNAPSHOTS), checks.STALENESS)
    ),
    description="Checks that inventory snapshots keep arriving at the reconciliation cadence.",
    tags={"ct/flow": "inventory"},
)
