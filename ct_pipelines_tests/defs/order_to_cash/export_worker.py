"""Runs one day's ERP export in a process of its own, so a test can kill it part-way.

    python -m ct_pipelines_tests.defs.order_to_cash.export_worker <day> [--instance]

With ``--instance`` the run is recorded in the DAGSTER_HOME instance (and claims its pool slot
there), as a run launched by the daemon would be.

The environment (DAGSTER_HOME, CT_PIPELINES_SANDBOX_DIR, CT_PIPELINES_DB_URL) says where.
"""

from __future__ import annotations

import sys

import dagster as dg

from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders
from ct_pipelines.defs.resources import build_resources


def main(day: str, on_instance: bool = False) -> int:
    instance = dg.DagsterInstance.get() if on_instance else None
    result = dg.materialize(
        [erp_sales_orders],
        partition_key=day,
        resources=build_resources(),
        instance=instance,
        run_config={
            "ops": {"erp_sales_orders": {"config": {"workers": 2, "rate_per_second": 0.0}}}
        },
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], "--instance" in sys.argv[2:]))
