"""How long one tick of the `new_commercetools_orders` sensor takes with N new orders.

Dagster gives a sensor evaluation 60 seconds. The tick reads at most 25,000 changes
(keyset-paged on lastModifiedAt and id, 500 a page), de-duplicates them, and returns one run
request per day and 1,000 orders, each carrying its order ids in its run config; it also looks
for failed incremental runs to ask for again. The baseline, measured in the same run against
the same sandbox, is the bare keyset polling loop: the same pages with the same predicates,
read with the bare client and no sensor logic.

    nice .venv/bin/python bench/order_sensor_tick.py               # 20,000 new orders
    nice .venv/bin/python bench/order_sensor_tick.py --orders 5000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2, help="best of this many (shared machine)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CT_PIPELINES_SANDBOX_DIR"] = str(Path(tmp) / "sandbox")
        os.environ["CT_PIPELINES_DB_URL"] = f"sqlite:///{Path(tmp) / 'store.db'}"
        os.environ.setdefault("DAGSTER_HOME", tmp)
        import dagster as dg

        from ct_pipelines.defs.order_to_cash.logic.orders import as_utc_literal
        from ct_pipelines.defs.order_to_cash.logic.polling import INITIAL_LOOKBACK, PAGE_SIZE
        from ct_pipelines.defs.order_to_cash.sensors import new_commercetools_orders
        from ct_pipelines.defs.resources import build_resources, sandbox_world

        world = sandbox_world(Path(tmp) / "sandbox")
        world.bulk_orders(args.orders, payment_kind="paid")
        resource = build_resources()["commercetools"]

        def bare_loop() -> tuple[float, int, int]:
            """The keyset polling loop alone: (seconds, pages, changes)."""
            since = as_utc_literal(datetime.now(UTC) - INITIAL_LOOKBACK)
            started = time.perf_counter()
            pages = changes = 0
            after: tuple[str, str] | None = None
            with resource.open_client() as client:
                while True:
                    where = ["lastModifiedAt >= :since"]
                    variables = {"since": since}
                    if after is not None:
                        where.append(
                            "(lastModifiedAt > :afterAt or (lastModifiedAt = :afterAt "
                            "and id > :afterId))"
                        )
                        variables.update(afterAt=after[0], afterId=after[1])
                    page = client.query(
                        "orders",
                        where=where,
                        variables=variables,
                        sort=["lastModifiedAt asc", "id asc"],
                        limit=PAGE_SIZE,
                        with_total=False,
                    )["results"]
                    pages += 1
                    changes += len(page)
                    if len(page) < PAGE_SIZE:
                        break
                    after = (page[-1]["lastModifiedAt"], page[-1]["id"])
            return time.perf_counter() - started, pages, changes

        def tick() -> tuple[float, dg.SensorResult]:
            with dg.instance_for_test() as instance:
                context = dg.build_sensor_context(
                    instance=instance, resources={"commercetools": resource}
                )
                started = time.perf_counter()
                result = new_commercetools_orders(context)
                return time.perf_counter() - started, result

        baselines, ticks = [], []
        result = None
        for _ in range(max(1, args.rounds)):  # alternating, so both see the same load
            baselines.append(bare_loop())
            seconds, result = tick()
            ticks.append(seconds)
        baseline, pages, changes = min(baselines)
        seconds = min(ticks)
        assert result is not None
        requests = list(result.run_requests or [])
        ids = sum(
            len(r.run_config["ops"]["erp_sales_orders"]["config"]["order_ids"]) for r in requests
        )
        config_bytes = max((len(json.dumps(r.run_config)) for r in requests), default=0)
        load = os.getloadavg()
        print(
            f"bench/order_sensor_tick.py: one tick that finds {args.orders:,} new orders "
            f"(plus the seeded shop's last 24 h); best of {args.rounds}, load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        print(
            f"  baseline: bare keyset polling loop, {pages} pages, {changes:,} changes  {baseline:6.2f} s"
        )
        print(
            f"  sensor tick                                          {seconds:6.2f} s  "
            f"({seconds / baseline:.2f} x baseline, {seconds / 60:.1%} of Dagster's 60 s limit)"
        )
        print(
            f"  {len(requests)} run requests carrying {ids:,} order ids "
            f"(largest run config {config_bytes / 1024:.0f} KiB)"
        )
        world.close()


if __name__ == "__main__":
    main()
