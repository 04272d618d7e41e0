"""Shared set-up for the order-to-cash tests: a sandbox day of orders and a materialisation."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import dagster as dg

from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders, order_batches
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.defs.resources import build_resources, sandbox_world
from ct_pipelines.kernel.shop import SHOP
from ct_sandbox.faults import request_log


def world_for(sandbox_dir: Path) -> Any:
    return sandbox_world(sandbox_dir)


def past_day(world: Any, days_back: int = 1) -> date:
    return world.now().astimezone(SHOP.tz).date() - timedelta(days=days_back)


def export_day(
    day: date | str,
    *,
    workers: int = 4,
    extra_config: dict[str, Any] | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    config = {"workers": workers, "rate_per_second": 0.0, **(extra_config or {})}
    return dg.materialize(
        [order_batches, erp_sales_orders],
        partition_key=str(day),
        resources=build_resources(),
        run_config={"ops": {"erp_sales_orders": {"config": config}}},
        raise_on_error=raise_on_error,
    )


def erp_documents(world: Any) -> dict[str, int]:
    """External document number -> how many sales orders the ERP holds for it."""
    from ct_sandbox import db

    conn = db.connect(world.db_path)
    rows = conn.execute(
        "SELECT external_document_number, COUNT(*) FROM erp_sales_orders GROUP BY 1"
    ).fetchall()
    return {doc: n for doc, n in rows}


def sales_order_creates(world: Any) -> dict[str, int]:
    """How many times the ERP answered 201 Created to a sales-order PUT, per document."""
    counts: dict[str, int] = {}
    for record in request_log(world.db_path, "erp"):
        if record.method == "PUT" and "/sales-orders/" in record.path and record.status == 201:
            key = unquote(record.path.rsplit("/", 1)[-1])
            counts[key] = counts.get(key, 0) + 1
    return counts


PROJECT_ROOT = Path(__file__).parents[3]


def start_export_worker(
    day: date, *, on_instance: bool = False, ids_file: Path | None = None
) -> subprocess.Popen[bytes]:
    """One day's export in a process of its own (see export_worker.py), ready to be killed;
    with ``ids_file`` an incremental export of just those orders."""
    command = [sys.executable, "-m", "ct_pipelines_tests.defs.order_to_cash.export_worker"]
    return subprocess.Popen(
        [
            *command,
            day.isoformat(),
            *(["--instance"] if on_instance else []),
            *(["--ids", str(ids_file)] if ids_file is not None else []),
        ],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_when(
    worker: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 300
) -> None:
    """SIGKILL the worker's process group once ``ready()`` holds: progress decides, not time
    (the timeout only bounds a hung test)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert worker.poll() is None, "the export finished before it could be killed"
        assert time.monotonic() < deadline, "the export made no progress to kill it at"
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=60)


def launch_like_the_daemon(
    instance: dg.DagsterInstance,
    requests: list[dg.RunRequest],
    *,
    sensor_name: str = "new_commercetools_orders",
    export_config: dict[str, Any] | None = None,
) -> list[dg.ExecuteInProcessResult]:
    """Run a tick's run requests of ``order_export_job`` on ``instance`` as the daemon would:
    a run key already launched by this sensor launches nothing; the run carries the request's
    partition, run config and tags (plus the sensor's). ``export_config`` is merged into
    ``erp_sales_orders``' config (e.g. no rate limit in tests)."""
    from ct_pipelines.definitions import defs

    loaded = defs()
    definitions = loaded if isinstance(loaded, dg.Definitions) else loaded()
    job = definitions.resolve_job_def("order_export_job")
    results = []
    for request in requests:
        if request.run_key and instance.get_runs(
            filters=dg.RunsFilter(
                tags={"dagster/sensor_name": sensor_name, "dagster/run_key": request.run_key}
            ),
            limit=1,
        ):
            continue
        run_config = copy.deepcopy(dict(request.run_config or {}))
        ops = run_config.setdefault("ops", {})
        export = ops.setdefault("erp_sales_orders", {}).setdefault("config", {})
        export.update({"rate_per_second": 0.0, **(export_config or {})})
        tags = {**request.tags, "dagster/sensor_name": sensor_name}
        if request.run_key:
            tags["dagster/run_key"] = request.run_key
        results.append(
            job.execute_in_process(
                run_config=run_config,
                partition_key=request.partition_key,
                tags=tags,
                instance=instance,
                raise_on_error=False,
            )
        )
    return results


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = result.asset_materializations_for_node(asset)
    assert events, f"{asset} did not materialise"
    return {k: v.value for k, v in events[-1].metadata.items()}


__all__ = [
    "FLOW",
    "PROJECT_ROOT",
    "erp_documents",
    "export_day",
    "kill_when",
    "launch_like_the_daemon",
    "materialization",
    "past_day",
    "sales_order_creates",
    "start_export_worker",
    "world_for",
]
