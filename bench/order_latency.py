"""Payment to ERP sales order during a flash sale: the incremental export against the whole-day one.

A shop day already holds ``--orders`` orders (default 10,000; the issue's figure is 100,000),
all exported and marked. Then, on the sandbox's simulated clock, a steady stream of paid orders
(a day's worth spread evenly: ``--orders`` / 1,440 a minute) runs for 20 minutes with a burst
of ``--burst`` orders (default a fifth of the day: 20,000 on 100,000) in minutes 5 to 15.

What runs is real: the ``new_commercetools_orders`` sensor ticks every ``--interval`` simulated
seconds against the sandbox, and every run request it returns is executed as a run of
``order_export_job`` on a Dagster instance, in process (not through the daemon: the daemon's
timing is wall-clock and not reproducible; the requests, run keys, run config and tags are the
sensor's own, and a run key launched before launches nothing, as under the daemon). The runs
materialise the job's two assets, ``order_batches`` and ``erp_sales_orders``; the job's asset
checks are left out of the bench (they run after the export and do not delay it). The
whole-day design is today's: the same ticks, but one run per day and tick without order ids,
which rebuilds and walks the whole day. Every order is checked to reach the ERP exactly once.

How time is measured: simulated time, deterministic. Orders are placed at simulated moments;
a tick happens at its moment; each run's duration is charged from the work that run really did
(counted from its own materialisations and the sandbox ERP), at production rates:

- a tick or ``order_batches``: ``--ct-request-ms`` per commercetools request plus
  ``--ct-orders-per-second`` (1,100: the client's rate from the issue) per order read;
- ``erp_sales_orders``: ``--walk-per-second`` per order of its batch it walks (ledger and claim
  lookups), then the ERP writes at min(``--erp-rate``, ``--erp-in-flight`` / ``--erp-write-ms``)
  a second, in order of placement (an order's ERP time is when its own write completes), then
  the write-back, one commercetools request per order marked (at its snapshot version) spread
  over the export's ``workers`` threads: ``workers`` / ``--ct-request-ms`` orders a second;
- a run starts ``--launch-seconds`` after its request (the daemon's queue and a run worker's
  start), at most four runs at once (``max_concurrent_runs``), and ``erp_sales_orders`` steps one
  at a time (the ``erp_writes`` pool).

Latency = the simulated time the order's sales order is written - the moment it was placed
(paid). The limit is one sensor interval + 10 s. The wall-clock seconds the runs took on this
machine are shown too, per design, as the measured ratio of work.

    nice .venv/bin/python bench/order_latency.py --orders 5000    # 5,000-order day, 1,000 burst
    nice .venv/bin/python bench/order_latency.py --orders 100000  # the issue's size (long)
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Model:
    interval: float
    launch: float
    ct_rate: float
    ct_request: float
    walk_rate: float
    erp_throughput: float
    write_back_rate: float

    def tick_cost(self, changes: int) -> float:
        return math.ceil(max(changes, 1) / 500) * self.ct_request + changes / self.ct_rate


@dataclass
class Sim:
    slots: list[float]
    lane_free: float
    placed: dict[str, datetime]  # order number -> placement (sim)
    erp_at: dict[str, float] = field(default_factory=dict)  # order number -> seconds after t0
    runs: int = 0
    wall_seconds: float = 0.0
    failed_runs: int = 0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def _stream(args: argparse.Namespace, t0: datetime) -> list[datetime]:
    rng = random.Random(20261207)
    minutes = 20
    steady = max(1, round(args.orders / 1440))
    moments = [
        t0 + timedelta(seconds=rng.uniform(0, minutes * 60)) for _ in range(steady * minutes)
    ]
    moments += [
        t0 + timedelta(seconds=300 + rng.uniform(0, args.burst_minutes * 60))
        for _ in range(args.burst)
    ]
    return sorted(moments)


def _prepare(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """A day of ``--orders`` exported and marked orders, the seeded ones of that day exported."""
    import dagster as dg

    from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
    from ct_pipelines.defs.resources import build_resources, sandbox_world
    from ct_pipelines.kernel.shop import SHOP
    from ct_sandbox import db
    from ct_sandbox.seed import EXPORT_CHANNEL_KEY

    world = sandbox_world(root / "sandbox")
    # After everything the seeded shop holds (the sensor's high water mark only moves forward).
    t0 = (max(world.now(), datetime.now(UTC)) + timedelta(minutes=2)).replace(microsecond=0)
    t0 = t0.astimezone(SHOP.tz)
    day = t0.date()
    if (t0 + timedelta(hours=1)).date() != day:
        raise SystemExit("run it again after midnight (shop time): the window must fit one day")
    channel = next(
        d["id"] for d in world.documents.iter_all("channels") if d["key"] == EXPORT_CHANNEL_KEY
    )
    begin = datetime.combine(day, datetime.min.time(), tzinfo=SHOP.tz)
    rng = random.Random(1)
    span = max(60.0, (t0 - begin).total_seconds() - 600)
    prior = sorted(begin + timedelta(seconds=rng.uniform(0, span)) for _ in range(args.orders))
    store = build_resources()["store"].get_store()
    for start in range(0, len(prior), 20_000):
        docs = world.orders_at(prior[start : start + 20_000], synced_channel_id=channel)
        keys = [(d["orderNumber"], d["id"], 1, None) for d in docs]
        store.ledger.claim_many(FLOW, keys)
        store.ledger.mark_exported_many(
            FLOW, [(k, f"SO-PRIOR-{n}") for n, (k, *_rest) in enumerate(keys, start)]
        )
    _set_clock(world, t0 - timedelta(minutes=30), db)
    with dg.instance_for_test() as instance:
        job = _job()
        result = job.execute_in_process(
            partition_key=day.isoformat(),
            run_config=_config({}, 0.0),
            instance=instance,
            # Built now: the resources follow this design's sandbox and store.
            resources=_resources(),
            raise_on_error=False,
        )
        assert result.success, "preparing the day failed"
    world.close()
    return {"day": day.isoformat(), "t0": t0}


def _set_clock(world: Any, moment: datetime, db: Any) -> None:
    offset = (moment - datetime.now(moment.tzinfo)).total_seconds()
    db.set_meta(world.db_path, db.CLOCK_OFFSET_META, str(offset))


_JOB: Any = None
VERBOSE = False


def _job() -> Any:
    global _JOB
    if _JOB is None:
        import dagster as dg

        from ct_pipelines.definitions import defs

        loaded = defs()
        definitions = loaded if isinstance(loaded, dg.Definitions) else loaded()
        _JOB = definitions.resolve_job_def("order_export_job")
    return _JOB


def _assets() -> list[Any]:
    """order_export_job's two assets. Its asset checks (whole-day reads, run after the export
    in the same run) are left out: they take no part in the latency and would double the
    bench's wall time."""
    from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders, order_batches

    return [order_batches, erp_sales_orders]


def _resources() -> dict[str, Any]:
    from ct_pipelines.defs.resources import build_resources

    return build_resources()


def _config(run_config: dict[str, Any], rate: float) -> dict[str, Any]:
    ops = {k: dict(v) for k, v in (run_config.get("ops") or {}).items()}
    export = dict((ops.get("erp_sales_orders") or {}).get("config") or {})
    # No rate limit in the real run (the model charges the ERP's rate); no progress lines.
    export.update({"rate_per_second": rate, "progress_every_seconds": 3600.0})
    ops["erp_sales_orders"] = {"config": export}
    return {**run_config, "ops": ops}


def _meta(result: Any, asset: str) -> dict[str, Any]:
    events = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in events[-1].metadata.items()} if events else {}


def _run_design(
    design: str, args: argparse.Namespace, root: Path, prep: dict[str, Any], model: Model
) -> Sim:
    import dagster as dg

    from ct_pipelines.defs.order_to_cash import sensors
    from ct_pipelines.defs.order_to_cash.logic.polling import PollCursor
    from ct_pipelines.defs.resources import build_resources, sandbox_world
    from ct_sandbox import db

    world = sandbox_world(root / "sandbox")
    conn = db.connect(world.db_path)

    def erp_docs() -> set[str]:
        return {r[0] for r in conn.execute("SELECT external_document_number FROM erp_sales_orders")}

    t0: datetime = prep["t0"]
    moments = _stream(args, t0)
    sim = Sim(slots=[0.0] * 4, lane_free=0.0, placed={})
    inserted = 0

    def insert_until(moment: datetime) -> None:
        nonlocal inserted
        upto = inserted
        while upto < len(moments) and moments[upto] <= moment:
            upto += 1
        if upto > inserted:
            for doc in world.orders_at(moments[inserted:upto]):
                sim.placed[doc["orderNumber"]] = datetime.fromisoformat(
                    doc["createdAt"].replace("Z", "+00:00")
                )
            inserted = upto

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    queue: list[tuple[float, dg.RunRequest]] = []
    launched: set[str] = set()
    cursor = PollCursor(high_water=t0).to_json()
    resources = {"commercetools": build_resources()["commercetools"]}
    seen_before = erp_docs()
    with dg.instance_for_test() as instance:
        tick = 0
        while True:
            tick += 1
            now = tick * model.interval
            # The runs that start before this tick, in order (FIFO, four at once).
            _start_runs(queue, now, sim, model, instance, world, db, at, insert_until, erp_docs)
            if now > 20 * 60 and inserted == len(moments):
                waiting = set(sim.placed) - set(sim.erp_at)
                if not waiting and not queue:
                    break
            if tick > args.max_ticks:
                break
            _set_clock(world, at(now), db)
            insert_until(at(now))
            result = sensors.new_commercetools_orders(
                dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
            )
            assert isinstance(result, dg.SensorResult)
            cursor = result.cursor or cursor
            requests = list(result.run_requests or [])
            changes = sum(int(r.tags.get("ct_pipelines/orders", "0")) for r in requests)
            if design == "whole-day":
                requests = [
                    dg.RunRequest(
                        run_key=f"day:{day}:{tick}",
                        partition_key=day,
                        tags={"ct_pipelines/trigger": "new_commercetools_orders"},
                    )
                    for day in sorted({r.partition_key for r in requests if r.partition_key})
                ]
            ready = now + model.tick_cost(changes)
            if args.verbose:
                print(
                    f"[{design}] tick {tick} t={now:.0f}s placed={inserted} changes={changes} "
                    f"requests={len(requests)} queued={len(queue)} in_erp={len(sim.erp_at)}",
                    flush=True,
                )
            for request in requests:
                if request.run_key in launched:
                    continue  # the daemon launches a run key once
                launched.add(str(request.run_key))
                queue.append((ready, request))
    documents = erp_docs() - seen_before
    duplicates = conn.execute(
        "SELECT COUNT(*) FROM (SELECT external_document_number FROM erp_sales_orders "
        "GROUP BY 1 HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    assert duplicates == 0, f"{design}: {duplicates} orders in the ERP twice"
    missing = set(sim.placed) - documents
    if missing:
        print(f"  {design}: {len(missing)} orders not in the ERP by the last tick")
    world.close()
    return sim


def _start_runs(
    queue: list[tuple[float, Any]],
    before: float,
    sim: Sim,
    model: Model,
    instance: Any,
    world: Any,
    db: Any,
    at: Callable[[float], datetime],
    insert_until: Callable[[datetime], None],
    erp_docs: Callable[[], set[str]],
) -> None:
    import dagster as dg

    while queue:
        requested, request = queue[0]
        slot = min(range(len(sim.slots)), key=lambda i: sim.slots[i])
        start = max(requested + model.launch, sim.slots[slot])
        if start >= before:
            return
        queue.pop(0)
        _set_clock(world, at(start), db)
        insert_until(at(start))
        before_docs = erp_docs()
        tags = {**request.tags, "dagster/sensor_name": "new_commercetools_orders"}
        if request.run_key:
            tags["dagster/run_key"] = request.run_key
        began = time.perf_counter()
        result = dg.materialize(
            _assets(),
            partition_key=request.partition_key,
            run_config=_config(dict(request.run_config or {}), 0.0),
            tags=tags,
            instance=instance,
            # Built now: the resources follow this design's sandbox and store.
            resources=_resources(),
            raise_on_error=False,
        )
        sim.wall_seconds += time.perf_counter() - began
        sim.runs += 1
        sim.failed_runs += 0 if result.success else 1
        batch, export = _meta(result, "order_batches"), _meta(result, "erp_sales_orders")
        if VERBOSE:
            print(
                f"    run at {start:.0f}s success={result.success} read={batch.get('orders_updated', batch.get('dagster/row_count'))} "
                f"exported={export.get('orders_exported')} already={export.get('orders_already_exported')} "
                f"failed={export.get('orders_failed_permanent')}/{export.get('orders_failed_transient')}",
                flush=True,
            )
        if batch.get("scope") == "orders":
            read = int(batch.get("orders_updated", 0))
            requests = math.ceil(max(int(batch.get("orders_requested", 0)), 1) / 100)
        else:
            read = int(batch.get("dagster/row_count", 0))
            requests = math.ceil(max(read, 1) / 500)
        a_end = start + requests * model.ct_request + read / model.ct_rate
        b_start = max(a_end, sim.lane_free)
        walked = int(export.get("orders_requested", 0))
        written = sorted(erp_docs() - before_docs, key=lambda k: (sim.placed.get(k) is None, k))
        written.sort(key=lambda k: sim.placed[k] if k in sim.placed else at(0))
        clock = b_start + walked / model.walk_rate
        for k, key in enumerate(written, start=1):
            sim.erp_at.setdefault(key, clock + k / model.erp_throughput)
        marked = int(export.get("marked_in_commercetools", 0))
        b_end = clock + len(written) / model.erp_throughput + marked / model.write_back_rate
        sim.lane_free = b_end
        sim.slots[slot] = b_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=10_000, help="orders the day holds before")
    parser.add_argument("--burst", type=int, default=None, help="default: a fifth of --orders")
    parser.add_argument("--burst-minutes", type=int, default=10)
    parser.add_argument("--interval", type=float, default=60.0, help="sensor interval, seconds")
    parser.add_argument("--launch-seconds", type=float, default=5.0)
    parser.add_argument("--ct-orders-per-second", type=float, default=1_100.0)
    parser.add_argument("--ct-request-ms", type=float, default=25.0)
    parser.add_argument("--walk-per-second", type=float, default=20_000.0)
    parser.add_argument(
        "--erp-rate", type=float, default=50.0, help="erp_sales_orders rate_per_second"
    )
    parser.add_argument("--erp-in-flight", type=int, default=4)
    parser.add_argument("--erp-write-ms", type=float, default=50.0)
    parser.add_argument("--designs", default="incremental,whole-day")
    parser.add_argument("--max-ticks", type=int, default=90)
    parser.add_argument("--verbose", action="store_true", help="a line per tick")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    if args.burst is None:
        args.burst = args.orders // 5
    from ct_pipelines.defs.order_to_cash.assets import ErpExportConfig

    write_back_workers = int(ErpExportConfig.model_fields["workers"].default)
    model = Model(
        interval=args.interval,
        launch=args.launch_seconds,
        ct_rate=args.ct_orders_per_second,
        ct_request=args.ct_request_ms / 1000,
        walk_rate=args.walk_per_second,
        erp_throughput=min(args.erp_rate, args.erp_in_flight / (args.erp_write_ms / 1000)),
        write_back_rate=write_back_workers / (args.ct_request_ms / 1000),
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        os.environ["CT_PIPELINES_SANDBOX_DIR"] = str(base / "sandbox")
        os.environ["CT_PIPELINES_DB_URL"] = f"sqlite:///{base / 'store.db'}"
        os.environ.setdefault("DAGSTER_HOME", tmp)
        began = time.perf_counter()
        prep = _prepare(args, base)
        prepared = time.perf_counter() - began
        results: dict[str, Sim] = {}
        for design in args.designs.split(","):
            root = Path(tmp) / design
            shutil.copytree(base, root)
            os.environ["CT_PIPELINES_SANDBOX_DIR"] = str(root / "sandbox")
            os.environ["CT_PIPELINES_DB_URL"] = f"sqlite:///{root / 'store.db'}"
            results[design] = _run_design(design, args, root, prep, model)
    limit = args.interval + 10
    load = os.getloadavg()
    print(
        f"bench/order_latency.py: a day holding {args.orders:,} orders, then {args.burst:,} orders "
        f"in {args.burst_minutes} min plus a steady {max(1, round(args.orders / 1440))}/min "
        f"for 20 min; sensor every {args.interval:g} s"
    )
    print(
        "  real sensor ticks and real runs of order_export_job's two assets on a Dagster instance, executed in "
        "process (not by the daemon)"
    )
    print(
        f"  simulated time: commercetools {args.ct_orders_per_second:,.0f} orders/s + "
        f"{args.ct_request_ms:g} ms/request, ERP {model.erp_throughput:g} writes/s, "
        f"launch {args.launch_seconds:g} s, 4 runs at once, one export step at a time "
        f"(day prepared in {prepared:.0f} s wall)"
    )
    print(
        f"  write-back: {model.write_back_rate:g} orders/s (one request per order over "
        f"{write_back_workers} workers)"
    )
    print(
        f"  limit: sensor interval + 10 s = {limit:g} s; load average {load[0]:.2f} {load[1]:.2f}"
    )
    print(
        f"  {'design':<12} {'orders':>7} {'p50 s':>8} {'p95 s':>8} {'p99 s':>8} {'max s':>8} "
        f"{'runs':>5} {'run wall s':>10}  p95 within limit"
    )
    for design, sim in results.items():
        latencies = [
            sim.erp_at[k] - (sim.placed[k] - prep["t0"]).total_seconds()
            for k in sim.placed
            if k in sim.erp_at
        ]
        p95 = _percentile(latencies, 95)
        print(
            f"  {design:<12} {len(latencies):>7} {_percentile(latencies, 50):>8.1f} {p95:>8.1f} "
            f"{_percentile(latencies, 99):>8.1f} {max(latencies, default=float('nan')):>8.1f} "
            f"{sim.runs:>5} {sim.wall_seconds:>10.1f}  {'yes' if p95 <= limit else 'NO'}"
            + (f"  ({sim.failed_runs} runs failed)" if sim.failed_runs else "")
        )
    if len(results) == 2:
        inc, day = results.get("incremental"), results.get("whole-day")
        if inc and day and inc.wall_seconds:
            print(
                f"  measured on this machine: the whole-day runs took "
                f"{day.wall_seconds / inc.wall_seconds:.1f} x the incremental runs' wall time"
            )


if __name__ == "__main__":
    main()
