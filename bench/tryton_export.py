"""Order export throughput into a real Tryton server, against bare Tryton sales-order creates.

Both halves run in the same run, against the same trytond, with the same number of workers:

- baseline: N sales orders created as bare JSON-RPC calls, the least a client must do to have
  a confirmed Tryton sale: ``sale.sale.create`` (party, addresses, lines with product, unit
  price and tax, all resolved beforehand), ``quote``, ``confirm``;
- export: N other orders through the real export path (``OrderExporter`` over the Tryton
  adapter with the integration store's ledger): per order the lookup by reference, the claim,
  the party lookup (created on first use), the create, the amount check, quote, confirm, the
  read-back and the ledger write.

The halves alternate in the order A B B A (baseline, export, export, baseline; half the orders
each time), so a load that rises or falls during the run (these machines are shared) weighs on
both alike. It prints the load average before and after, orders/s for both and their ratio,
then checks in Tryton that every exported order is there once. The orders are the sandbox shop's, mapped by the pipelines' own mapping.

Tryton: ``--url/--database/--user`` (password in CT_PIPELINES_TRYTON_PASSWORD) of a running
server (``ct-pipelines tryton setup`` + ``serve``), or ``--postgres ADMIN_URL`` with
``--template DB`` (a shop database to clone, e.g. a kept test template), or neither: a fresh
shop on SQLite in a scratch directory (module activation takes minutes).

    nice .venv/bin/python bench/tryton_export.py --orders 200 --workers 4
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _server(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, str, str, str]]:
    """(url, database, user, password) of the Tryton to measure against."""
    from ct_pipelines.erp.tryton import setup

    if args.url:
        password = os.environ.get("CT_PIPELINES_TRYTON_PASSWORD", "")
        yield args.url, args.database, args.user, password
        return
    directory = workdir / "tryton"
    port = _free_port()
    database = f"ctp_bench_{uuid.uuid4().hex[:8]}"
    if args.postgres and args.template:
        password = os.environ.get("CT_PIPELINES_TRYTON_PASSWORD", "")
        setup.write_config(directory, args.postgres.rsplit("/", 1)[0] + "/", port)
        setup.clone_database(args.postgres, args.template, database)
    else:
        from ct_pipelines.cli import sandbox_shop

        password = secrets.token_urlsafe(16)
        items, stock = sandbox_shop()
        uri = args.postgres.rsplit("/", 1)[0] + "/" if args.postgres else "sqlite://"
        print(f"setting up a fresh Tryton shop {database} (minutes)", flush=True)
        setup.setup_shop(
            directory,
            database,
            password,
            database_uri=uri,
            port=port,
            items=items,
            stock=stock,
            postgres_admin_url=args.postgres,
        )
    try:
        with (directory / "trytond.log").open("wb") as log:
            process = setup.serve(directory / "trytond.conf", database, log)
            url = f"http://127.0.0.1:{port}"
            try:
                setup.wait_until_serving(url, database, process)
                yield url, database, setup.ADMIN_USER, password
            finally:
                process.terminate()
                process.wait(timeout=30)
    finally:
        if args.postgres:
            with contextlib.suppress(Exception):
                setup._psql(args.postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _drafts(port: Any, count: int, sandbox: Path) -> list[Any]:
    """``count`` sales-order drafts of sandbox orders, mapped as the export maps them."""
    from ct_pipelines.defs.order_to_cash.logic.batch import build_batch
    from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
    from ct_pipelines.defs.resources import sandbox_world
    from ct_pipelines.erp.port import SalesOrderDraft
    from ct_pipelines.kernel.eligibility import EligibilityRule
    from ct_pipelines.kernel.shop import SHOP

    world = sandbox_world(sandbox)
    items = list(port.iter_items())
    active = {item.sku for item in items if item.active}
    mapping = SalesOrderMapping(item_numbers={i.sku: i.item_no for i in items})
    drafts: list[Any] = []
    while len(drafts) < count:
        ids = world.bulk_orders(count, payment_kind="paid")
        docs = [world.documents.get("orders", order_id) for order_id in ids]
        batch = build_batch(
            docs, tz=SHOP.tz, rule=EligibilityRule(), mapping=mapping, channel_id=None
        )
        for row in batch.rows:
            if not row["sales_order"]:
                continue
            draft = SalesOrderDraft.model_validate_json(row["sales_order"])
            # Only orders Tryton accepts (a blocked item is refused, by both halves alike).
            if all(line.item_no in active or line.kind != "item" for line in draft.lines):
                drafts.append(draft)
    world.close()
    return drafts[:count]


def _bare_creates(port: Any, drafts: list[Any], workers: int) -> float:
    """Seconds for bare create + quote + confirm of each draft, ``workers`` at a time."""
    rpc = port.rpc
    codes = sorted({line.item_no for d in drafts for line in d.lines})
    products = {
        row["code"]: row
        for row in rpc.search_read(
            "product.product",
            [("code", "in", codes)],
            ["code", "default_uom"],
            context={"active_test": False},
        )
    }
    taxes = port._tax_ids()
    (currency,) = rpc.search_read("currency.currency", [("code", "=", "GBP")], ["id"])
    warehouse = port._warehouse_ids(["MAN"])["MAN"]
    party_id = rpc.model(
        "party.party", "create", [{"name": "bench", "addresses": [["create", [{}]]]}]
    )[0]
    (party,) = rpc.model("party.party", "read", [party_id], ["addresses"])
    address = party["addresses"][0]

    def create(draft: Any) -> None:
        lines = []
        for line in draft.lines:
            quantity = max(line.quantity, 1)
            product = products[line.item_no]
            lines.append(
                {
                    "type": "line",
                    "product": product["id"],
                    "unit": product["default_uom"],
                    "quantity": float(quantity),
                    "unit_price": (Decimal(line.net_minor) / 100 / quantity).quantize(
                        Decimal("0.0001"), rounding=ROUND_HALF_EVEN
                    ),
                    "description": line.item_no,
                    "taxes": [["add", [taxes[line.tax_code]]]],
                }
            )
        (sale_id,) = rpc.model(
            "sale.sale",
            "create",
            [
                {
                    "party": party_id,
                    "invoice_address": address,
                    "shipment_address": address,
                    "warehouse": warehouse,
                    "reference": draft.external_document_number,
                    "sale_date": draft.order_date,
                    "currency": currency["id"],
                    "lines": [["create", lines]],
                }
            ],
        )
        rpc.model("sale.sale", "quote", [sale_id])
        rpc.model("sale.sale", "confirm", [sale_id])

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(create, drafts))
    return time.perf_counter() - started


def _export(port: Any, drafts: list[Any], workers: int, store_url: str) -> tuple[float, Any]:
    from ct_pipelines.defs.order_to_cash.logic.engine import (
        ExportItem,
        ExportOptions,
        OrderExporter,
    )
    from ct_pipelines.store import IntegrationStore

    store = IntegrationStore(store_url)
    store.migrate()
    items = [
        ExportItem(
            d.external_document_number,
            d.source_order_id,
            d.source_order_version,
            datetime.now(UTC).isoformat(),
            d,
        )
        for d in drafts
    ]
    exporter = OrderExporter(
        port,
        store,
        ExportOptions(workers=workers, max_in_flight_writes=workers, rate_per_second=None),
    )
    started = time.perf_counter()
    report = exporter.export(items)
    return time.perf_counter() - started, report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--url")
    parser.add_argument("--database", default="ct_shop")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--postgres", help="PostgreSQL admin URL (.../postgres)")
    parser.add_argument("--template", help="with --postgres: a Tryton shop database to clone")
    args = parser.parse_args()

    from ct_pipelines.erp.tryton.adapter import TrytonErpClient, TrytonSettings

    with tempfile.TemporaryDirectory() as tmp, _server(args, Path(tmp)) as server:
        url, database, user, password = server
        port = TrytonErpClient(
            TrytonSettings(url=url, database=database, user=user, password=SecretStr(password))
        )
        with port:
            drafts = _drafts(port, 2 * args.orders, Path(tmp) / "sandbox")
            # Different orders for the two halves: each must be a new sale in Tryton.
            baseline_drafts, export_drafts = drafts[: args.orders], drafts[args.orders :]
            print(
                f"bench/tryton_export.py: {args.orders} orders each half, {args.workers} workers, "
                f"Tryton {database} at {url}",
                flush=True,
            )
            load_before = os.getloadavg()
            store_url = f"sqlite:///{Path(tmp) / 'store.db'}"
            half = args.orders // 2
            base_seconds = _bare_creates(port, baseline_drafts[:half], args.workers)
            seconds, first = _export(port, export_drafts[:half], args.workers, store_url)
            more, second = _export(port, export_drafts[half:], args.workers, store_url)
            seconds += more
            base_seconds += _bare_creates(port, baseline_drafts[half:], args.workers)
            load_after = os.getloadavg()
            counts = {k: first.counts[k] + second.counts[k] for k in first.counts}
            references = [d.external_document_number for d in export_drafts]
            rows = port.rpc.search_read(
                "sale.sale", [("reference", "in", references)], ["reference", "state"]
            )
        base_rate = len(baseline_drafts) / base_seconds
        rate = counts["exported"] / seconds
        print(
            f"  load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
            f"{os.cpu_count()} CPUs"
        )
        print(f"  baseline: bare create+quote+confirm   {base_rate:8.2f} orders/s")
        print(
            f"  export path (OrderExporter, adapter)   {rate:8.2f} orders/s"
            f"  ({rate / base_rate:.2f} x baseline)"
        )
        found = [row["reference"] for row in rows]
        print(
            f"  exported {counts['exported']}, failed "
            f"{counts['failed_permanent'] + counts['failed_transient']}; in Tryton "
            f"{len(set(found))} of {len(references)}, {len(found) - len(set(found))} twice, "
            f"{sum(1 for row in rows if row['state'] not in ('confirmed', 'processing'))} "
            "not confirmed"
        )
        ok = len(found) == len(set(found)) == len(references)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
