"""`make demo-tryton`: the whole pipeline once against a fresh Tryton server, then what Tryton holds.

1. A new Tryton shop database (``ct-pipelines tryton setup``'s: company, chart, UK VAT, the
   warehouses, the sandbox shop's items and opening stock) on SQLite in a scratch directory,
   or on PostgreSQL under a fresh name with ``--postgres postgresql://.../postgres``.
2. trytond served on a free 127.0.0.1 port; the ERP side is Tryton (``CT_PIPELINES_ERP=tryton``),
   commercetools the local sandbox (a clean shop: no planted findings).
3. Every asset and check of the code location, as `make demo` runs them: order-to-cash and
   finance over the last ``--days`` shop days in one single-run backfill; then a warehouse
   ships a few sales in Tryton (carrier, package, tracking number): ones commercetools has not
   delivered yet and Manchester holds the stock for; then product master,
   inventory and dispatch; then the operations summaries.
4. The summary counts sales orders, stock, customer shipments and journals read back from
   Tryton itself, beside what the flows reported; the demo fails if they disagree (a sales
   order twice, one missing, an unbalanced journal, a shipment without its tracking number).

The scratch directory (sandbox, store, Dagster instance, trytond config and log) is removed at
the end unless ``--keep``; a PostgreSQL database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import dagster as dg
from pydantic import SecretStr

DEFAULT_DAYS = 3
SHIPPED_SALES = 5
REPO_INSTANCE_YAML = Path(__file__).resolve().parent.parent / "dagster_home" / "dagster.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _tryton(
    workdir: Path, password: str, postgres: str | None, keep: bool, out: TextIO
) -> Iterator[dict[str, str]]:
    """A fresh Tryton shop, served; its settings."""
    from ct_pipelines.cli import sandbox_shop
    from ct_pipelines.erp.tryton import setup

    directory = workdir / "tryton"
    port = _free_port()
    database = f"ctp_demo_{uuid.uuid4().hex[:8]}"
    if postgres:
        uri = postgres.rsplit("/", 1)[0] + "/"
        where = f"PostgreSQL database {database}"
    else:
        uri = "sqlite://"
        where = f"SQLite database {directory / 'files' / (database + '.sqlite')}"
    print(f"Tryton: setting up a fresh shop ({where}); module activation takes minutes", file=out)
    started = time.monotonic()
    items, stock = sandbox_shop()
    try:
        setup.setup_shop(
            directory,
            database,
            password,
            database_uri=uri,
            port=port,
            items=items,
            stock=stock,
            postgres_admin_url=postgres,
        )
        print(f"Tryton: shop ready in {time.monotonic() - started:.0f} s", file=out)
        with (directory / "trytond.log").open("wb") as log:
            process = setup.serve(directory / "trytond.conf", database, log)
            url = f"http://127.0.0.1:{port}"
            try:
                setup.wait_until_serving(url, database, process)
                print(f"Tryton: trytond on {url}/ database {database}", file=out)
                yield {"url": url, "database": database, "user": setup.ADMIN_USER}
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except Exception:
                    process.kill()
                    process.wait()
    finally:
        if postgres and not keep:
            with contextlib.suppress(Exception):
                setup._psql(postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _environment(workdir: Path, tryton: dict[str, str], password: str) -> None:
    home = workdir / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_INSTANCE_YAML, home / "dagster.yaml")
    for name in [n for n in os.environ if n.startswith("CTP_")]:
        os.environ.pop(name)
    os.environ.pop("CT_PIPELINES_MODE", None)
    os.environ.update(
        {
            "DAGSTER_HOME": str(home),
            "CT_PIPELINES_SANDBOX_DIR": str(workdir / "sandbox"),
            "CT_PIPELINES_DB_URL": f"sqlite:///{workdir / 'store.db'}",
            "CT_PIPELINES_COMMERCETOOLS": "sandbox",
            "CT_PIPELINES_ERP": "tryton",
            "CT_PIPELINES_TRYTON_URL": tryton["url"],
            "CT_PIPELINES_TRYTON_DATABASE": tryton["database"],
            "CT_PIPELINES_TRYTON_USER": tryton["user"],
            "CT_PIPELINES_TRYTON_PASSWORD": password,
        }
    )


def _execute(
    job: Any, instance: dg.DagsterInstance, assets: list[Any], tags: dict[str, str] | None = None
) -> dg.ExecuteInProcessResult:
    from ct_pipelines.demo import _quiet

    return job.execute_in_process(
        instance=instance,
        asset_selection=[key for a in assets for key in a.keys],
        run_config=_quiet(),
        tags=tags or {},
        raise_on_error=False,
    )


def _undelivered(source_order_id: str) -> bool:
    """The commercetools order is neither cancelled nor delivered in part or whole yet.

    The sandbox's history holds orders commercetools already shipped (an earlier warehouse
    feed); a Tryton shipment for one of those is an over-shipment the dispatch flow rightly
    refuses, so the warehouse here ships only what is still open."""
    from ct_pipelines.defs.dispatch.logic.plan import all_deliveries, is_cancelled
    from ct_pipelines.defs.resources import sandbox_dir, sandbox_world

    order = sandbox_world(sandbox_dir()).documents.get("orders", source_order_id)
    return (
        order is not None
        and not is_cancelled(order)
        and not all_deliveries(order)
        and order.get("shipmentState") not in ("Shipped", "Partial", "Delivered")
    )


def _ship_some(rpc: Any, count: int, ship: Callable[[str], bool]) -> list[tuple[str, str]]:
    """The warehouse ships ``count`` sales in Tryton whose commercetools order ``ship`` accepts
    (by its id); (reference, tracking number) of each."""
    from ct_pipelines.erp.tryton.adapter import _meta
    from ct_pipelines.erp.tryton.warehouse import NotInStock, ship_sale

    shipped: list[tuple[str, str]] = []
    sales = rpc.search_read(
        "sale.sale",
        [("state", "=", "processing"), ("reference", "!=", None)],
        ["reference", "comment"],
        order=[("id", "ASC")],
    )
    for sale in sales:
        if len(shipped) == count:
            break
        if not ship(str(_meta(sale["comment"]).get("source_order_id", ""))):
            continue
        tracking = f"RM{100000000 + len(shipped) * 7919:09d}GB"
        try:
            ship_sale(rpc, sale["reference"], tracking)
        except NotInStock:
            # Manchester does not hold it: the sale waits, as in a real warehouse (forcing it
            # out would leave negative stock for the inventory flow to report).
            continue
        shipped.append((sale["reference"], tracking))
    return shipped


def _metadata(results: list[dg.ExecuteInProcessResult], asset: str) -> dict[str, Any]:
    for result in results:
        events = result.asset_materializations_for_node(asset)
        if events:
            return {k: getattr(v, "value", v) for k, v in events[-1].metadata.items()}
    return {}


def run_demo_tryton(
    out: TextIO = sys.stdout,
    *,
    days: int = DEFAULT_DAYS,
    postgres: str | None = None,
    keep: bool = False,
) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ct-demo-tryton-"))
    password = secrets.token_urlsafe(16)
    # Read by the sandbox when it seeds (the Tryton shop is loaded from the same clean seed).
    os.environ["CT_PIPELINES_SANDBOX_CLEAN"] = "1"
    try:
        with _tryton(workdir, password, postgres, keep, out) as tryton:
            _environment(workdir, tryton, password)
            status = _pipeline(out, tryton, password, days)
    finally:
        if keep:
            print(f"kept {workdir}", file=out)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"demo-tryton took {time.monotonic() - started:.0f} s", file=out)
    return status


def _pipeline(out: TextIO, tryton: dict[str, str], password: str, days: int) -> int:
    from ct_pipelines.definitions import defs
    from ct_pipelines.defs.order_to_cash.logic.batch import read_batch
    from ct_pipelines.defs.resources import IntegrationStoreResource
    from ct_pipelines.demo import _check_rows, _group_of, _keys_between, _partition_range
    from ct_pipelines.erp.tryton.adapter import TrytonErpClient, TrytonSettings
    from ct_pipelines.erp.tryton.warehouse import shop_summary

    loaded = defs()
    definitions = loaded if isinstance(loaded, dg.Definitions) else loaded()
    assets = [
        a
        for a in definitions.assets or []
        if isinstance(a, dg.AssetsDefinition) and a.is_executable
    ]
    daily = [a for a in assets if a.partitions_def is not None]
    summaries = [a for a in assets if _group_of(a) == "operations"]
    plain = [a for a in assets if a.partitions_def is None and a not in summaries]
    instance = dg.DagsterInstance.get()
    job = definitions.resolve_implicit_global_asset_job_def()
    start, end = _partition_range(days)

    port = TrytonErpClient(
        TrytonSettings(
            url=tryton["url"],
            database=tryton["database"],
            user=tryton["user"],
            password=SecretStr(password),
        )
    )
    with port:
        results = [
            _execute(
                job,
                instance,
                daily,
                {
                    "dagster/asset_partition_range_start": start,
                    "dagster/asset_partition_range_end": end,
                },
            )
        ]
        shipped = _ship_some(port.rpc, SHIPPED_SALES, _undelivered)
        results.append(_execute(job, instance, plain))
        results.append(_execute(job, instance, summaries))
        summary = shop_summary(port.rpc)
        journals_by_day = {
            day: list(port.iter_journal_batches(date.fromisoformat(day)))
            for day in _keys_between(start, end)
        }

    failed_steps = [
        (event.step_key, event.step_failure_data.error)
        for result in results
        for event in result.all_events
        if event.is_step_failure
    ]
    store_resource = (definitions.resources or {}).get("store")
    if not isinstance(store_resource, IntegrationStoreResource):
        raise TypeError(f"the code location's store resource is {store_resource!r}")
    store = store_resource.get_store()
    orders = eligible = 0
    for key in _keys_between(start, end):
        batch = read_batch(store, key)
        orders += len(batch)
        eligible += int(batch["eligible"].astype(bool).sum()) if len(batch) else 0
    exported = len(store.ledger.list("order_to_cash", status="exported"))
    # The last materialization is one shop day's; the run's totals cover every day of it.
    export_event = _metadata(results, "erp_sales_orders")
    export = export_event.get("run_totals") or export_event
    dispatch = _metadata(results, "commercetools_deliveries")
    inventory = _metadata(results, "inventory_sync")
    products = _metadata(results, "commercetools_products")
    checks = _check_rows(results)
    posted_batches = [b for batches in journals_by_day.values() for b in batches]

    print("", file=out)
    print("Summary, read back from Tryton itself (beside what the flows reported)", file=out)
    print(
        f"  shop days {start}..{end}: {orders} commercetools orders, {eligible} eligible", file=out
    )
    states = ", ".join(f"{state} {n}" for state, n in summary.sales_by_state.items())
    print(
        f"  Tryton sales orders                  : {summary.sales_with_reference:>7}  ({states});"
        f" the ledger says {exported} exported",
        file=out,
    )
    print(
        f"  Tryton stock                         : {summary.stock_rows:>7} item-warehouse rows, "
        f"{summary.stock_units} units, {summary.done_moves} done moves",
        file=out,
    )
    print(
        f"  Tryton customer shipments done       : {summary.shipments_done:>7}  "
        f"({summary.packages_with_tracking} packages with a tracking number); "
        f"{dispatch.get('shipments_applied', 0)} applied to commercetools orders",
        file=out,
    )
    print(
        f"  Tryton journals posted (account.move): {summary.journals_posted:>7}  "
        f"debit {summary.journal_debit} = credit {summary.journal_credit}; "
        f"{len(posted_batches)} batches over the days",
        file=out,
    )
    print(
        f"  product master from Tryton           : {products.get('skus', 0):>7} SKUs, "
        f"{products.get('update_requests_sent', 0)} commercetools updates",
        file=out,
    )
    print(
        f"  inventory from Tryton                : {inventory.get('compared', 0):>7} entries "
        f"compared, {inventory.get('updated', 0)} updated",
        file=out,
    )

    problems: list[str] = [f"step {key} failed: {error}" for key, error in failed_steps]
    if summary.duplicate_references:
        problems.append(f"{summary.duplicate_references} sales orders twice in Tryton")
    if summary.sales_with_reference != exported:
        problems.append(
            f"Tryton holds {summary.sales_with_reference} sales orders, the ledger {exported}"
        )
    if export.get("orders_exported", 0) + export.get("orders_recovered", 0) != exported:
        problems.append(f"the export reported {export} but the ledger holds {exported}")
    if summary.journal_debit != summary.journal_credit or not summary.journals_posted:
        problems.append("no balanced posted journal in Tryton")
    if summary.shipments_done != len(shipped) or summary.packages_with_tracking != len(shipped):
        problems.append(f"{len(shipped)} sales shipped, Tryton holds {summary.shipments_done}")
    if dispatch.get("shipments_applied", 0) != len(shipped):
        problems.append(f"dispatch applied {dispatch.get('shipments_applied')} of {len(shipped)}")
    print(f"  asset checks run                     : {len(checks):>7}", file=out)
    # A clean shop plants nothing: every check must pass against Tryton.
    for row in checks:
        if not row.passed:
            problems.append(
                f"check {row.asset}.{row.name} failed: {' '.join(row.text.split())[:300]}"
            )
    for problem in problems:
        print(f"  PROBLEM: {problem}", file=out)
    print("demo-tryton " + ("FAILED" if problems else "passed"), file=out)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ct_pipelines.demo_tryton", description=__doc__)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="shop days to export")
    parser.add_argument(
        "--postgres",
        help="a PostgreSQL admin URL (postgresql://user@host:port/postgres): a fresh database "
        "there instead of SQLite",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory and the database"
    )
    args = parser.parse_args(argv)
    sys.exit(run_demo_tryton(days=args.days, postgres=args.postgres, keep=args.keep))


if __name__ == "__main__":
    main()
