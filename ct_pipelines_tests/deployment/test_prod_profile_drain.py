"""The production profile under load: a real dagster-daemon on PostgreSQL drains a backfill of
14 shop days and the order sensor's runs launched at the same time.

The profile is started exactly as `make prod-local` starts it (deploy/prod_local.py with
deploy/dagster.yaml, daemon only), against a fresh PostgreSQL database for the instance and
another for the integration store. commercetools is the sandbox; the sandbox ERP is served over
HTTP from this test process, so every run worker writes to one ERP and the ERP itself counts the
writes in flight across all of them (its write limit is set far above the profile's, so the ERP
measures rather than enforces). Shown:

- every run reaches SUCCESS (generous timeouts, no timing assertion);
- in-flight ERP writes never exceed the limit the profile sets: the erp_writes pool (one export
  step at a time, `pools.default_limit`) times the step's `max_in_flight_writes`; and the
  erp_sales_orders steps of different runs never overlap (their start and end events);
- no two export runs of the same shop day overlap (the dagster/partition tag limit);
- every eligible order is in the ERP exactly once (one sales order, one 201 Created), none lost.

Without CT_PIPELINES_TEST_PG_URL, or without a server behind it, it skips; under CI=true both
fail the run instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy.engine import URL, make_url

from ct_pipelines.defs.order_to_cash.assets import ErpExportConfig
from ct_pipelines.defs.resources import build_resources
from ct_pipelines.kernel.eligibility import eligibility
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines_tests.defs.order_to_cash.helpers import erp_documents, sales_order_creates

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "deploy" / "dagster.yaml"
BACKFILL_DAYS = 14
PAID_PER_DAY = 6
PENDING_PER_DAY = 2
# Days (back from today) whose pending orders get paid during the test: the sensor sees the
# changes and asks for runs of days the backfill is also exporting.
PAID_LATER_DAYS = (3, 10)
FRESH_ORDERS = 6  # half today, half yesterday: today's and yesterday's sensor runs
ERP_WRITE_LATENCY_MS = 40
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

T = TypeVar("T")


def _wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 2.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _server_url() -> URL:
    raw = os.environ.get("CT_PIPELINES_TEST_PG_URL", "").strip()
    if not raw:
        if os.environ.get("CI") == "true":
            pytest.fail("CT_PIPELINES_TEST_PG_URL is not set under CI=true")
        pytest.skip("CT_PIPELINES_TEST_PG_URL is not set")
    return make_url(raw)


def _admin(server: URL) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=server.host or "127.0.0.1",
        port=server.port or 5432,
        user=server.username or "postgres",
        password=server.password or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


@pytest.fixture
def databases() -> Iterator[tuple[URL, str]]:
    """(server, instance database name); the store's database is `<name>_store`."""
    server = _server_url()
    try:
        admin = _admin(server)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {server.host}:{server.port} is not reachable: {exc}")
        pytest.skip(f"PostgreSQL at {server.host}:{server.port} is not reachable")
    name = f"ct_drain_{uuid.uuid4().hex[:10]}"
    with admin:
        for db in (name, f"{name}_store"):
            admin.execute(f'CREATE DATABASE "{db}"')
    yield server, name
    with _admin(server) as admin:
        for db in (name, f"{name}_store"):
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,)
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{db}"')


def _profile_limits() -> tuple[int, int]:
    """(pool default limit, tag limit per shop day) as deploy/dagster.yaml sets them."""
    profile = yaml.safe_load(PROFILE.read_text())
    pool_limit = int(profile["concurrency"]["pools"]["default_limit"])
    per_day = [
        int(limit["limit"])
        for limit in profile["concurrency"]["runs"]["tag_concurrency_limits"]
        if limit["key"] == "dagster/partition"
    ]
    assert per_day, "deploy/dagster.yaml has no dagster/partition tag limit"
    return pool_limit, per_day[0]


def _dagster(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    executable = str(Path(sys.executable).parent / "dagster")
    return subprocess.Popen(
        [executable, *args, "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _finish(process: subprocess.Popen[bytes], what: str, timeout: float = 300) -> str:
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        # The CLI's own code server must not outlive it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    text = out.decode(errors="replace")
    assert process.returncode == 0, f"{what} failed ({process.returncode}):\n{text[-3000:]}"
    return text


def _intervals(
    instance: DagsterInstance, run_ids: list[str], step: str
) -> list[tuple[float, float, str]]:
    """(start, end, run id) of `step` in each run, from the runs' event logs."""
    found = []
    for run_id in run_ids:
        start = end = None
        for entry in instance.all_logs(
            run_id,
            of_type={
                DagsterEventType.STEP_START,
                DagsterEventType.STEP_SUCCESS,
                DagsterEventType.STEP_FAILURE,
            },
        ):
            event = entry.dagster_event
            if event is None or event.step_key != step:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                start = entry.timestamp
            else:
                end = entry.timestamp
        assert start is not None and end is not None, f"{step} did not run in {run_id}"
        found.append((start, end, run_id))
    return sorted(found)


def _overlaps(intervals: list[tuple[float, float, str]]) -> list[tuple[str, str]]:
    return [
        (a[2], b[2]) for i, a in enumerate(intervals) for b in intervals[i + 1 :] if b[0] < a[1]
    ]


def test_the_profile_drains_a_backfill_and_sensor_runs_within_the_limits(
    databases: tuple[URL, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ct_sandbox import SandboxWorld
    from ct_sandbox.transport import start_server

    server, name = databases
    pool_limit, per_day_limit = _profile_limits()
    in_flight_per_step = ErpExportConfig().max_in_flight_writes
    write_limit = pool_limit * in_flight_per_step

    # A clean shop with a short history; the test's own orders are the load.
    sandbox = tmp_path / "sandbox"
    world = SandboxWorld.open(sandbox, orders=5, planted=False)
    today = world.now().astimezone(SHOP.tz).date()
    days = [today - timedelta(days=n) for n in range(BACKFILL_DAYS, 0, -1)]
    pending: dict[int, list[str]] = {}
    for n, day in zip(range(BACKFILL_DAYS, 0, -1), days, strict=True):
        world.bulk_orders(PAID_PER_DAY, day=day, payment_kind="paid")
        pending[n] = world.bulk_orders(PENDING_PER_DAY, day=day, payment_kind="pending")
    # Placed at stated moments, half today and half yesterday (shop time), so the sensor has
    # both days to ask for whatever the hour: spread over the last 24 hours, all of them fell
    # on yesterday when the test ran early in the morning.
    now = world.now()
    midnight = datetime.combine(today, datetime.min.time(), tzinfo=SHOP.tz)
    since_midnight = now - midnight
    world.orders_at(
        [
            midnight + since_midnight * (i + 1) / (FRESH_ORDERS // 2 + 1)
            for i in range(FRESH_ORDERS // 2)
        ]
        + [
            midnight - timedelta(hours=2 * (i + 1)) for i in range(FRESH_ORDERS - FRESH_ORDERS // 2)
        ],
        payment_kind="paid",
    )

    # One ERP for every run worker, counting its own writes in flight; far above the profile's
    # limit, so a broken pool would show as a higher peak instead of 423 answers.
    erp = world.erp_app()
    erp.configure(write_limit=write_limit * 4, write_latency_ms=ERP_WRITE_LATENCY_MS)
    erp.reset_metrics()
    http = start_server(world.commercetools_app(), erp)

    home = tmp_path / "prod_home"
    env = {
        **os.environ,
        "DAGSTER_PG_HOST": server.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(server.port or 5432),
        "DAGSTER_PG_USER": server.username or "postgres",
        "DAGSTER_PG_PASSWORD": server.password or "",
        "DAGSTER_PG_DB": name,
        "DAGSTER_HOME": str(home),
        "CT_PIPELINES_DB_URL": server.set(
            drivername="postgresql", database=f"{name}_store"
        ).render_as_string(hide_password=False),
        "CT_PIPELINES_SANDBOX_DIR": str(sandbox),
        "CT_PIPELINES_COMMERCETOOLS": "sandbox",
        "CT_PIPELINES_ERP_URL": f"{http.url}/erp",
        "CT_PIPELINES_ERP_TOKEN": "drain-test",
        "PYTHONPATH": str(ROOT),
    }
    for key in (
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
        "CT_PIPELINES_SANDBOX_DIR",
        "CT_PIPELINES_DB_URL",
        "CT_PIPELINES_COMMERCETOOLS",
        "CT_PIPELINES_ERP_URL",
        "CT_PIPELINES_ERP_TOKEN",
    ):
        monkeypatch.setenv(key, env[key])

    started = time.monotonic()
    profile = subprocess.Popen(
        [sys.executable, "deploy/prod_local.py", "--home", str(home), "--no-webserver"],
        cwd=ROOT,
        env=env,
        stdout=open(tmp_path / "prod_local.log", "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    instance: DagsterInstance | None = None
    try:
        _wait_for("dagster.yaml in DAGSTER_HOME", lambda: (home / "dagster.yaml").exists(), 60, 0.5)
        instance = DagsterInstance.from_config(str(home))
        _wait_for(
            "the daemon's sensor and run-queue heartbeats",
            lambda: {"SENSOR", "QUEUED_RUN_COORDINATOR"} <= set(instance.get_daemon_heartbeats()),
            300,
        )

        # Payments that arrive later: the sensor sees these orders change on old days.
        resources = build_resources()
        with resources["commercetools"].open_client() as client:
            for n in PAID_LATER_DAYS:
                for order_id in pending[n]:
                    doc = client.get(f"orders/{order_id}")
                    client.update(
                        "orders",
                        order_id,
                        doc["version"],
                        [{"action": "changePaymentState", "paymentState": "Paid"}],
                    )

        # At once: the sensor switched on and a backfill of 14 shop days submitted.
        sensor = _dagster(env, "sensor", "start", "new_commercetools_orders")
        backfill = _dagster(
            env,
            "job",
            "backfill",
            "-j",
            "order_export_job",
            "--from",
            days[0].isoformat(),
            "--to",
            days[-1].isoformat(),
            "--noprompt",
        )
        _finish(sensor, "dagster sensor start")
        _finish(backfill, "dagster job backfill")

        def export_runs(**tags: str) -> list[Any]:
            return list(
                instance.get_runs(RunsFilter(job_name="order_export_job", tags=tags or None))
            )

        _wait_for(
            "the order sensor's runs",
            lambda: export_runs(**{"ct_pipelines/trigger": "new_commercetools_orders"}),
            600,
            5,
        )
        # Its first tick asked for every day it saw; later ticks must not add work.
        _finish(_dagster(env, "sensor", "stop", "new_commercetools_orders"), "dagster sensor stop")

        def drained() -> list[Any] | None:
            runs = list(instance.get_runs())
            return runs if runs and all(r.status in TERMINAL for r in runs) else None

        # Generous: 16 minutes at load average 6-12 on 2 cores, most of it process start-up of
        # run workers and steps; a machine busier still needs longer, but no run is ever lost.
        runs = _wait_for("every run to finish", drained, 3600, 5)
        drain_seconds = time.monotonic() - started
    finally:
        os.killpg(profile.pid, signal.SIGTERM)
        try:
            profile.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(profile.pid, signal.SIGKILL)
            profile.wait()
        http.stop()

    assert instance is not None
    log = (tmp_path / "prod_local.log").read_text(errors="replace")
    failed = {
        r.run_id: (r.job_name, r.status.value) for r in runs if r.status != DagsterRunStatus.SUCCESS
    }
    assert not failed, f"runs not successful: {failed}\n{log[-4000:]}"

    exports = [r for r in runs if r.job_name == "order_export_job"]
    backfill_runs = [r for r in exports if "dagster/backfill" in r.tags]
    sensor_runs = [
        r for r in exports if r.tags.get("ct_pipelines/trigger") == "new_commercetools_orders"
    ]
    assert len(backfill_runs) == BACKFILL_DAYS
    assert {r.tags["dagster/partition"] for r in backfill_runs} == {d.isoformat() for d in days}
    sensor_days = {r.tags["dagster/partition"] for r in sensor_runs}
    assert {(today - timedelta(days=n)).isoformat() for n in PAID_LATER_DAYS} <= sensor_days
    assert today.isoformat() in sensor_days

    # The pool, seen from the ERP and from the runs' own records.
    metrics = erp.metrics()
    assert 1 <= metrics["peak_in_flight_writes"] <= write_limit, metrics
    assert metrics["writes_rejected_locked"] == 0, metrics
    steps = _intervals(instance, [r.run_id for r in exports], "erp_sales_orders")
    assert pool_limit == 1 and not _overlaps(steps), _overlaps(steps)
    assert instance.event_log_storage.get_concurrency_info("erp_writes").slot_count == pool_limit

    # One export run per shop day at a time (whole runs, from their start and end records).
    by_day: dict[str, list[tuple[float, float, str]]] = {}
    for run in exports:
        record = instance.get_run_record_by_id(run.run_id)
        assert record is not None and record.start_time and record.end_time
        by_day.setdefault(run.tags["dagster/partition"], []).append(
            (record.start_time, record.end_time, run.run_id)
        )
    assert per_day_limit == 1
    shared = {day: _overlaps(sorted(spans)) for day, spans in by_day.items() if len(spans) > 1}
    assert not any(shared.values()), shared
    assert shared, "no shop day had both a backfill run and a sensor run: the test lost its point"

    # Every eligible order in the ERP exactly once; nothing else there twice.
    with resources["commercetools"].open_client() as client:
        orders = list(client.iter_orders())
    eligible = {o.order_number or o.id for o in orders if eligibility(o).eligible}
    documents = erp_documents(world)
    creates = sales_order_creates(world)
    assert {doc: n for doc, n in documents.items() if n != 1} == {}
    assert {doc: n for doc, n in creates.items() if n != 1} == {}
    assert sorted(eligible - set(documents)) == [], "eligible orders missing from the ERP"
    assert set(documents) <= {o.order_number or o.id for o in orders}

    print(
        f"\nprod profile drain: {len(runs)} runs {dict(Counter(r.job_name for r in runs))} "
        f"({len(backfill_runs)} backfill, "
        f"{len(sensor_runs)} sensor over {len(sensor_days)} days) all SUCCESS; "
        f"peak in-flight ERP writes {metrics['peak_in_flight_writes']} (limit {write_limit} = "
        f"pool {pool_limit} x max_in_flight_writes {in_flight_per_step}); "
        f"{len(eligible)} eligible orders, {len(documents)} sales orders in the ERP, "
        f"{sum(creates.values())} created in this test, none twice; "
        f"{len(shared)} days with overlapping requests; {drain_seconds:.0f} s to drain "
        f"(load average {os.getloadavg()[0]:.1f}, {datetime.now().strftime('%H:%M')})"
    )
