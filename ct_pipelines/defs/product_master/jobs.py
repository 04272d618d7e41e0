"""The product master job: read the master, then synchronise commercetools products."""

import dagster as dg

# The retry target for product master exceptions (see defs/operations/retry_targets.py).
product_master_sync_job = dg.define_asset_job(
    name="product_master_sync_job",
    selection=dg.AssetSelection.groups("product_master"),
    description="Reads the product master and synchronises commercetools products, with checks.",
    tags={"ct/flow": "product_master"},
)
