"""How long one tick of the `new_commercetools_orders` sensor takes with N new orders.

Dagster gives a sensor evaluation 60 seconds. The tick reads at most 5,000 changes (ten pages of
500, keyset-paged on lastModifiedAt and id) and leaves the rest to the next tick. The baseline,
measured in the same run, is reading the same pages with the bare client and no sensor logic.

    .venv/bin/python bench/order_sensor_tick.py --orders 5000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=5_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CT_PIPELINES_SANDBOX_DIR"] = str(Path(tmp) / "sandbox")
        os.environ["CT_PIPELINES_DB_URL"] = f"sqlite:///{Path(tmp) / 'store.db'}"
        os.environ.setdefault("DAGSTER_HOME", tmp)
        import dagster as dg

        from ct_pipelines.defs.order_to_cash.sensors import new_commercetools_orders
        from ct_pipelines.defs.resources import build_resources, sandbox_world

        world = sandbox_world(Path(tmp) / "sandbox")
        world.bulk_orders(args.orders, payment_kind="paid")
        resource = build_resources()["commercetools"]

        with resource.open_client() as client:
            started = time.perf_counter()
            pages = 0
            for page_start in range(0, args.orders, 500):
                client.query(
                    "orders",
                    sort=["lastModifiedAt asc", "id asc"],
                    limit=500,
                    offset=min(page_start, 10_000),
                )
                pages += 1
            baseline = time.perf_counter() - started

        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(
                instance=instance, resources={"commercetools": resource}
            )
            started = time.perf_counter()
            result = new_commercetools_orders(context)
            seconds = time.perf_counter() - started
        print(
            f"bench/order_sensor_tick.py: one tick with {args.orders} new orders (plus the seeded shop)"
        )
        print(f"  baseline: {pages} bare pages of 500      {baseline:6.2f} s")
        print(
            f"  sensor tick                          {seconds:6.2f} s  ({seconds / baseline:.2f} x baseline, "
            f"{seconds / 60:.1%} of Dagster's 60 s limit), {len(result.run_requests)} run requests"
        )
        world.close()


if __name__ == "__main__":
    main()
