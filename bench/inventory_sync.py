"""Inventory: the columnar diff against the former dict diff, then a whole sync against the sandbox.

Part 1, the diff (targets from ERP rows, the index of commercetools entries, the plan) at each
size in ``--sizes`` (entries = SKUs x 4 channels, with buffers: a default, per SKU and per SKU in
one channel), ``--changed`` of the entries off target (updates, creates, and entries whose
ERP row is gone). Both implementations run on the same generated data in the same run, each in
its own process so that one's memory cannot hide the other's:

- time: inputs held in lists first (ERP ``StockLevel`` models, entry JSON dicts as the client
  yields them), then the diff timed alone (best of ``--repeat``, garbage collector on);
- memory: inputs streamed row by row (as the sync reads them, page by page), the process's
  peak RSS and its growth over the RSS after start-up (interpreter, numpy, pandas, product);
- writes: the number of changes planned, which must equal the number of entries changed, and
  the two implementations must plan the same changes (compared by digest).

The baseline is the former implementation, kept in ``bench/inventory_dict_diff.py``.

Part 2, the whole sync through the real clients against the in-process sandbox at
``--sync-skus`` x 4 entries: seconds per phase and requests against the minimum (one write per
changed entry, one page of 500 per 500 entries read). ``--sync-skus 0`` skips it.

    nice .venv/bin/python bench/inventory_sync.py [--sizes 20000,200000,1000000] [--changed 0.01]
        [--repeat 3] [--sync-skus 50000] [--workers 8]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOCATIONS = {"WH-A": "scale-a", "WH-B": "scale-b", "WH-C": "scale-c", "WH-D": "scale-d"}
CHANNEL_IDS = {
    key: f"{n:08d}-aaaa-4000-8000-000000000000" for n, key in enumerate(LOCATIONS.values())
}
CHANNEL_NUMBERS = {key: n for n, key in enumerate(LOCATIONS.values())}
RULES: dict[str, Any] = {
    "default_buffer": {"absolute": 1, "percent": 5},
    "channels": {key: {"sources": [location]} for location, key in LOCATIONS.items()},
}
IMPLEMENTATIONS = ("dict", "columnar")


def _rules_data(skus: int) -> dict[str, Any]:
    data = dict(RULES)
    data["channels"] = {k: dict(v) for k, v in RULES["channels"].items()}
    data["channels"]["scale-d"]["buffer"] = {"absolute": 0, "percent": 12.5}
    # A buffer for one SKU in 250 in every channel, and for one in 500 in one channel.
    data["sku_buffers"] = [{"sku": _sku(i), "absolute": 3} for i in range(0, skus, 250)] + [
        {"sku": _sku(i), "channel": "scale-a", "percent": 33.3333} for i in range(1, skus, 500)
    ]
    return data


def _sku(i: int) -> str:
    return f"SCALE-{i:07d}"


class Data:
    """Deterministic inputs of ``entries`` (SKU, channel) pairs with ``changed`` of them off target."""

    def __init__(self, entries: int, changed: float, rules: Any) -> None:
        self.skus = entries // len(LOCATIONS)
        self.entries = self.skus * len(LOCATIONS)
        self.rules = rules
        picked = random.Random(7).sample(range(self.entries), round(self.entries * changed))
        # Of the changed entries: 1 in 10 missing in commercetools (a create), 1 in 10 without
        # its ERP row any more (set to 0), the rest with another quantity (an update).
        self.kind = {
            index: ("create", "gone", *("update",) * 8)[n % 10] for n, index in enumerate(picked)
        }
        self.updated_at = datetime(2026, 12, 1, tzinfo=UTC)

    @property
    def expected_writes(self) -> int:
        return len(self.kind)

    def _stock(self, i: int, j: int) -> tuple[int, int]:
        on_hand = (i * 7 + j * 13) % 200 - (3 if i % 997 == 0 else 0)
        reserved = 2 if (i + j) % 7 == 0 and on_hand > 5 else 0
        if self.kind.get(i * len(LOCATIONS) + j) == "create" and on_hand - reserved < 20:
            on_hand = 40  # a create is a write only when there is stock to publish
        return on_hand, reserved

    def erp_rows(self) -> Iterator[Any]:
        from ct_pipelines.erp.port import StockLevel

        letters = [location.removeprefix("WH-") for location in LOCATIONS]
        for i in range(self.skus):
            for j, letter in enumerate(letters):
                if self.kind.get(i * len(LOCATIONS) + j) == "gone":
                    continue
                on_hand, reserved = self._stock(i, j)
                yield StockLevel.model_construct(
                    sku=f"SCALE-{i:07d}",  # a new string per row, as decoding JSON makes
                    location=f"WH-{letter}",  # new string objects too
                    on_hand=on_hand,
                    reserved=reserved,
                    available=on_hand - reserved,
                    updated_at=self.updated_at,
                )

    def entry_docs(self) -> Iterator[dict[str, Any]]:
        channels = list(LOCATIONS.values())
        for i in range(self.skus):
            for j, channel in enumerate(channels):
                index = i * len(LOCATIONS) + j
                kind = self.kind.get(index)
                if kind == "create":
                    continue
                on_hand, reserved = self._stock(i, j)
                available = on_hand - reserved
                target = max(
                    available - self.rules.buffer_for(_sku(i), channel).units(available), 0
                )
                quantity = target
                if kind == "gone":
                    quantity = target + 5
                elif kind == "update":
                    quantity = target + 1 + index % 5
                yield {
                    "id": f"00000000-0000-4000-8000-{index:012x}",
                    "version": 1 + index % 3,
                    "key": f"SCALE-{i:07d}_{channel}",
                    "sku": f"SCALE-{i:07d}",
                    "supplyChannel": {
                        "typeId": "channel",
                        "id": f"{CHANNEL_NUMBERS[channel]:08d}-aaaa-4000-8000-000000000000",
                    },
                    "quantityOnStock": quantity,
                    "availableQuantity": quantity,
                    "createdAt": "2026-12-01T00:00:00.000Z",
                    "lastModifiedAt": "2026-12-01T00:00:00.000Z",
                }


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _diff_function(impl: str) -> Callable[[Any, Any, Any], Any]:
    """(ERP rows, entry docs, rules) -> plan, by the named implementation."""
    if impl == "dict":
        sys.path.insert(0, str(Path(__file__).parent))
        import inventory_dict_diff as old

        def run_old(rows: Any, docs: Any, rules: Any) -> Any:
            current = old.index_entries(docs, {v: k for k, v in CHANNEL_IDS.items()}, rules)
            targets = old.compute_targets(rows, rules)
            return old.plan_changes(targets, current, rules)  # type: ignore[arg-type]

        return run_old
    from ct_pipelines.defs.inventory.logic import compute_targets, index_entries, plan_changes

    def run_new(rows: Any, docs: Any, rules: Any) -> Any:
        current = index_entries(docs, {v: k for k, v in CHANNEL_IDS.items()}, rules)
        targets = compute_targets(rows, rules)
        return plan_changes(targets, current, rules)

    return run_new


def _digest(plan: Any) -> str:
    summary = repr(
        (
            plan.changes,
            sorted(plan.per_channel.items()),
            plan.unchanged,
            plan.zero_without_entry,
            plan.commercetools_only,
        )
    )
    return hashlib.sha256(summary.encode()).hexdigest()[:16]


def worker(impl: str, entries: int, changed: float, mode: str, repeat: int) -> dict[str, Any]:
    import numpy  # noqa: F401  (start-up cost, counted before the baseline)
    import pandas  # noqa: F401

    from ct_pipelines.defs.inventory.logic.rules import parse_rules

    diff = _diff_function(impl)
    skus = entries // len(LOCATIONS)
    rules = parse_rules(_rules_data(skus), source="bench rules")
    data = Data(entries, changed, rules)
    result: dict[str, Any] = {"impl": impl, "entries": data.entries, "mode": mode}
    if mode == "time":
        rows, docs = list(data.erp_rows()), list(data.entry_docs())
        times, cpu_times = [], []
        for _ in range(repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            plan = diff(rows, docs, rules)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        result.update(
            seconds=min(times),
            cpu_seconds=min(cpu_times),
            writes=len(plan.changes),
            digest=_digest(plan),
        )
    else:
        before = _max_rss_mib()
        start_rss = _rss_mib()
        started = time.perf_counter()
        plan = diff(data.erp_rows(), data.entry_docs(), rules)
        result.update(
            streamed_seconds=time.perf_counter() - started,
            start_rss_mib=start_rss,
            peak_rss_mib=_max_rss_mib(),
            growth_mib=_max_rss_mib() - max(before, start_rss),
            writes=len(plan.changes),
        )
    result["expected_writes"] = data.expected_writes
    return result


def _run_worker(impl: str, entries: int, args: argparse.Namespace, mode: str) -> dict[str, Any]:
    repeat = 1 if entries >= 1_000_000 else args.repeat
    command = [
        sys.executable,
        __file__,
        "--worker",
        impl,
        str(entries),
        str(args.changed),
        mode,
        str(repeat),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_diff(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"bench/inventory_sync.py part 1: the diff, {args.changed:.1%} of the entries changed; "
        f"dict = the former implementation, columnar = the current one"
    )
    print()
    print(
        f"  {'entries':>10}  {'impl':<9} {'diff s':>7} {'writes':>8} {'changed':>8}"
        f"  {'peak RSS MiB':>12} {'growth MiB':>10}  (streamed s)"
    )
    for entries in sizes:
        results = {}
        for impl in IMPLEMENTATIONS:
            timed = _run_worker(impl, entries, args, "time")
            memory = _run_worker(impl, entries, args, "memory")
            results[impl] = (timed, memory)
            print(
                f"  {timed['entries']:>10,}  {impl:<9} {timed['seconds']:7.2f} {timed['writes']:>8,}"
                f" {timed['expected_writes']:>8,}  {memory['peak_rss_mib']:12.0f}"
                f" {memory['growth_mib']:10.0f}  ({memory['streamed_seconds']:.2f})"
            )
            assert timed["writes"] == timed["expected_writes"] == memory["writes"], (timed, memory)
        (old_t, old_m), (new_t, new_m) = results["dict"], results["columnar"]
        assert old_t["digest"] == new_t["digest"], "the implementations planned different changes"
        print(
            f"  {'':>10}  columnar / dict: time {new_t['seconds'] / old_t['seconds']:.3f} x "
            f"({old_t['seconds'] / new_t['seconds']:.1f} x faster), peak RSS "
            f"{new_m['peak_rss_mib'] / old_m['peak_rss_mib']:.2f} x, RSS growth "
            f"{new_m['growth_mib'] / max(old_m['growth_mib'], 1):.3f} x; same plan: yes"
        )


def bench_sync(args: argparse.Namespace) -> None:
    from ct_pipelines.commercetools import CommercetoolsClient
    from ct_pipelines.defs.inventory.logic import InventoryOptions, InventorySync
    from ct_pipelines.defs.inventory.logic.rules import parse_rules
    from ct_pipelines.defs.resources import sandbox_settings
    from ct_pipelines.erp.rest import RestErpClient
    from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld
    from ct_sandbox.testing import CountingTransport, add_scale_inventory, change_scale_stock

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        world = SandboxWorld.open(Path(tmp))
        scale = add_scale_inventory(world, args.sync_skus)
        changed = change_scale_stock(world, scale, args.changed)
        rules = parse_rules(scale.rules_data, source="scale rules")
        entries = world.documents.count("inventory")
        print()
        print(
            f"bench/inventory_sync.py part 2: a whole sync, {scale.entries:,} entries "
            f"({args.sync_skus:,} SKUs x 4 channels), {len(changed):,} changed; {entries:,} entries "
            f"in the sandbox in all; set up in {time.perf_counter() - started:.1f} s"
        )
        with RestErpClient(
            SANDBOX_ERP_URL, None, transport=world.erp_transport(), page_size=5000
        ) as erp:
            started = time.perf_counter()
            levels = list(erp.iter_stock())
            erp_seconds = time.perf_counter() - started
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
    assert writes == len(changed) == len(result.plan.changes), (writes, len(changed))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        impl, entries, changed, mode, repeat = sys.argv[2:7]
        print(json.dumps(worker(impl, int(entries), float(changed), mode, int(repeat))))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000,200000,1000000", help="entries, comma-separated")
    parser.add_argument("--changed", type=float, default=0.01, help="share of entries changed")
    parser.add_argument("--repeat", type=int, default=3, help="diff repetitions below 1M (best)")
    parser.add_argument("--sync-skus", type=int, default=50_000, help="whole sync; 0 skips it")
    parser.add_argument("--workers", type=int, default=8, help="concurrent writes")
    args = parser.parse_args()
    bench_diff(args)
    if args.sync_skus:
        bench_sync(args)


if __name__ == "__main__":
    main()
