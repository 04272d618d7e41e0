"""Diff and sync 200,000 inventory entries (50,000 SKUs x 4 channels) with 1 % of the stock moved.

Prints the seconds of each phase (the diff on its own, then the whole sync through the real
clients against the in-process sandbox) and the requests sent against the minimum possible:
one write per changed entry, and one page of 500 per 500 entries read.

    .venv/bin/python bench/inventory_sync.py [--skus 50000] [--changed 0.01] [--workers 8]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of stock rows moved")
    parser.add_argument("--workers", type=int, default=8, help="concurrent writes")
    parser.add_argument("--repeat", type=int, default=5, help="diff repetitions (best is shown)")
    args = parser.parse_args()

    from ct_pipelines.commercetools import CommercetoolsClient
    from ct_pipelines.defs.inventory.logic import (
        InventoryOptions,
        InventorySync,
        compute_targets,
        index_entries,
        plan_changes,
    )
    from ct_pipelines.defs.inventory.logic.rules import parse_rules
    from ct_pipelines.defs.resources import sandbox_settings
    from ct_pipelines.erp.rest import RestErpClient
    from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld
    from ct_sandbox.testing import CountingTransport, add_scale_inventory, change_scale_stock

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        world = SandboxWorld.open(Path(tmp))
        scale = add_scale_inventory(world, args.skus)
        changed = change_scale_stock(world, scale, args.changed)
        rules = parse_rules(scale.rules_data, source="scale rules")
        entries = world.documents.count("inventory")
        print(
            f"bench/inventory_sync.py: {scale.entries:,} entries ({args.skus:,} SKUs x 4 channels), "
            f"{len(changed):,} changed ({args.changed:.1%}); {entries:,} entries in the sandbox "
            f"in all; set up in {time.perf_counter() - started:.1f} s"
        )

        with RestErpClient(
            SANDBOX_ERP_URL, None, transport=world.erp_transport(), page_size=5000
        ) as erp:
            started = time.perf_counter()
            levels = list(erp.iter_stock())
            erp_seconds = time.perf_counter() - started

        # The diff alone, on data in memory: targets from ERP rows, then the plan.
        transport = CountingTransport(world.commercetools_transport())
        with CommercetoolsClient(sandbox_settings(), transport=transport) as client:
            sync = InventorySync(client, rules)
            directory = sync.read_channels()
            docs = list(client.query_all("inventory"))
        current = index_entries(docs, directory.key_by_id, rules)
        target_times, plan_times = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            targets = compute_targets(levels, rules)
            target_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            plan = plan_changes(targets, current, rules)
            plan_times.append(time.perf_counter() - started)
        assert len(plan.changes) == len(changed), (len(plan.changes), len(changed))

        # The whole sync, every request counted at the transport.
        transport = CountingTransport(world.commercetools_transport())
        with CommercetoolsClient(sandbox_settings(), transport=transport) as client:
            started = time.perf_counter()
            result = InventorySync(client, rules, InventoryOptions(max_workers=args.workers)).run(
                levels
            )
            sync_seconds = time.perf_counter() - started
        world_products = world.documents.count("products")
        world.close()

    writes = transport.count("POST", "/inventory/")
    reads = transport.count("GET")
    products = world_products // 500 + 1  # the shop's SKUs, read once for the guard
    # channels + keyset pages of 500 + product pages
    read_minimum = 1 + math.floor(entries / 500) + 1 + products
    print()
    print(f"  ERP stock read (REST, pages of 5000)  : {erp_seconds:8.2f} s  {len(levels):,} rows")
    print(f"  diff: targets from ERP rows (best)    : {min(target_times):8.2f} s")
    print(f"  diff: plan against commercetools      : {min(plan_times):8.2f} s")
    print(
        f"  diff total (best of {args.repeat})               : "
        f"{min(target_times) + min(plan_times):8.2f} s  for {scale.entries:,} entries"
    )
    print(f"  sync total                            : {sync_seconds:8.2f} s")
    for phase, seconds in result.seconds.items():
        print(f"    {phase:<36}: {seconds:8.2f} s")
    print()
    print(f"  writes sent                           : {writes:8,}  (minimum {len(changed):,})")
    print(f"  reads sent                            : {reads:8,}  (minimum {read_minimum:,})")
    print(
        f"  requests sent / minimum               : {writes + reads:8,} / "
        f"{len(changed) + read_minimum:,}  (+ {transport.count('POST', '/oauth/token')} token)"
    )
    stats = result.stats
    print(
        f"  outcome: {stats.updated:,} updated, {stats.created:,} created, "
        f"{stats.unchanged:,} unchanged, {stats.failed:,} failed, {stats.conflicts:,} conflicts"
    )


if __name__ == "__main__":
    main()
