"""Runs one day's ERP export in a process of its own, so a test can kill it part-way.

    python -m ct_pipelines_tests.defs.order_to_cash.export_worker <day> [--instance] [--ids FILE]

With ``--instance`` the run is recorded in the DAGSTER_HOME instance (and claims its pool slot
there), as a run launched by the daemon would be. With ``--ids FILE`` (one order id a line) it
is an incremental run, as the order sensor asks for: only those orders are exported.

The environment (DAGSTER_HOME, CT_PIPELINES_SANDBOX_DIR, CT_PIPELINES_DB_URL) says where.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg

from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders
from ct_pipelines.defs.resources import build_resources


def main(day: str, on_instance: bool = False, order_ids: list[str] | None = None) -> int:
    instance = dg.DagsterInstance.get() if on_instance else None
    config: dict[str, object] = {"workers": 2, "rate_per_second": 0.0}
    if order_ids:
        config["order_ids"] = order_ids
    result = dg.materialize(
        [erp_sales_orders],
        partition_key=day,
        resources=build_resources(),
        instance=instance,
        run_config={"ops": {"erp_sales_orders": {"config": config}}},
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    args = sys.argv[2:]
    ids = None
    if "--ids" in args:
        ids = Path(args[args.index("--ids") + 1]).read_text().split()
    sys.exit(main(sys.argv[1], "--instance" in args, ids))
