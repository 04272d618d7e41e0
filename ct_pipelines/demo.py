"""`make demo`: run the whole pipeline once against the sandbox, without the UI, and summarise.

Runs are recorded in the Dagster instance at $DAGSTER_HOME, so `make dev` shows them afterwards.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg

DEMO_DAYS = 7


def _partition_range(days: int) -> tuple[str, str]:
    from ct_pipelines.settings import SHOP

    today = datetime.now(UTC).astimezone(SHOP.tz).date()
    return (today - timedelta(days=days - 1)).isoformat(), today.isoformat()


def run_demo(out=sys.stdout) -> int:
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set; run `make demo`, which sets it.", file=out)
        return 2
    # The demo always uses the sandbox, whatever credentials the shell happens to hold.
    os.environ["CT_PIPELINES_MODE"] = "sandbox"
    for name in ("CT_PIPELINES_COMMERCETOOLS", "CT_PIPELINES_ERP"):
        os.environ.pop(name, None)

    from ct_pipelines.defs.inventory.assets import inventory_snapshots
    from ct_pipelines.defs.order_to_cash.assets import order_batches
    from ct_pipelines.defs.product_master.assets import product_master
    from ct_pipelines.defs.resources import build_resources, sandbox_dir
    from ct_pipelines.sandbox import SandboxWorld

    home = sandbox_dir()
    print(f"ct_pipelines demo — sandbox world in {home}", file=out)
    world = SandboxWorld.open(home)
    # Let an hour of simulated trade happen, so there is something new since the last demo.
    world.advance(minutes=60)

    resources = build_resources()
    instance = dg.DagsterInstance.get()
    first = dg.materialize(
        [product_master, inventory_snapshots], resources=resources, instance=instance
    )
    start, end = _partition_range(DEMO_DAYS)
    second = dg.materialize(
        [order_batches],
        resources=resources,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
    )
    if not (first.success and second.success):
        print("demo FAILED: see the run logs above", file=out)
        return 1

    store = resources["store"].get_store()
    products = store.read_snapshot("product_master")
    stock = store.read_snapshot("inventory_snapshots")
    batches = [
        store.read_snapshot("order_batches", partition_key=key) for key in _keys_between(start, end)
    ]
    orders = sum(len(b) for b in batches)
    eligible = sum(int(b["eligible"].sum()) for b in batches if len(b))
    print("", file=out)
    print("Summary (read from the sandbox through the real clients)", file=out)
    print(f"  products (SKUs) in the product master : {len(products):>7}", file=out)
    print(f"    active                              : {int(products['active'].sum()):>7}", file=out)
    print(
        f"  stock entries                         : {len(stock):>7}"
        f"  (ERP {int((stock['system'] == 'erp').sum())},"
        f" commercetools {int((stock['system'] == 'commercetools').sum())})",
        file=out,
    )
    print(f"  orders in order_batches {start}..{end} : {orders:>7}", file=out)
    print(f"    eligible for the ERP                : {eligible:>7}", file=out)
    print(
        f"  Dagster runs: {first.run_id[:8]}, {second.run_id[:8]} (see them with `make dev`)",
        file=out,
    )
    return 0


def _keys_between(start: str, end: str) -> list[str]:
    first = datetime.fromisoformat(start).date()
    last = datetime.fromisoformat(end).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def main() -> None:
    sys.exit(run_demo())


if __name__ == "__main__":
    main()
