"""Order export throughput against the sandbox ERP with write latency W and concurrency limit C.

The ceiling is C / W orders a second: C writes in flight, each taking W. The script prints the
exporter's orders/s (lookup, ledger, exception bookkeeping and the ERP write, as in production)
as a fraction of that ceiling, plus a baseline measured in the same run: C workers doing nothing
but the ERP writes, which shows what the HTTP stack itself leaves of the ceiling.

    .venv/bin/python bench/export_throughput.py --orders 1000 --latency-ms 50 --concurrency 4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    from ct_pipelines.defs.order_to_cash.logic.batch import build_batch
    from ct_pipelines.defs.order_to_cash.logic.engine import (
        ExportItem,
        ExportOptions,
        OrderExporter,
    )
    from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
    from ct_pipelines.erp.port import SalesOrderDraft
    from ct_pipelines.erp.rest import RestErpClient
    from ct_pipelines.kernel.eligibility import EligibilityRule
    from ct_pipelines.kernel.shop import SHOP
    from ct_pipelines.store import IntegrationStore
    from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld

    with tempfile.TemporaryDirectory() as tmp:
        world = SandboxWorld.open(Path(tmp) / "sandbox")
        ids = world.bulk_orders(2 * args.orders, payment_kind="paid")
        docs = [world.documents.get("orders", order_id) for order_id in ids]
        world.configure_erp(write_limit=args.concurrency, write_latency_ms=args.latency_ms)
        erp = RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport())
        mapping = SalesOrderMapping(item_numbers={i.sku: i.item_no for i in erp.iter_items()})
        batch = build_batch(
            docs, tz=SHOP.tz, rule=EligibilityRule(), mapping=mapping, channel_id=None
        )
        drafts = [
            SalesOrderDraft.model_validate_json(r["sales_order"])
            for r in batch.rows
            if r["sales_order"]
        ]
        baseline_drafts, export_drafts = (
            drafts[: args.orders],
            drafts[args.orders : 2 * args.orders],
        )
        ceiling = args.concurrency / (args.latency_ms / 1000)
        print(
            f"bench/export_throughput.py: {len(export_drafts)} orders, ERP write latency W={args.latency_ms} ms, "
            f"concurrency C={args.concurrency}: ceiling C/W = {ceiling:.1f} orders/s"
        )

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(
                pool.map(
                    lambda d: erp.upsert_sales_order(d, idempotency_key=d.external_document_number),
                    baseline_drafts,
                )
            )
        base_seconds = time.perf_counter() - started
        base_rate = len(baseline_drafts) / base_seconds

        store = IntegrationStore(f"sqlite:///{Path(tmp) / 'store.db'}")
        store.migrate()
        items = [
            ExportItem(
                d.external_document_number,
                d.source_order_id,
                d.source_order_version,
                datetime.now(UTC).isoformat(),
                d,
            )
            for d in export_drafts
        ]
        exporter = OrderExporter(
            erp,
            store,
            ExportOptions(
                workers=args.concurrency + 2,
                max_in_flight_writes=args.concurrency,
                rate_per_second=None,
            ),
        )
        world.erp_app().reset_metrics()
        started = time.perf_counter()
        report = exporter.export(items)
        seconds = time.perf_counter() - started
        rate = report.counts["exported"] / seconds
        metrics = world.erp_metrics()
        print(
            f"  baseline: bare ERP writes, C workers   {base_rate:8.1f} orders/s  {base_rate / ceiling:5.2f} of C/W"
        )
        print(
            f"  exporter (lookup + ledger + write)     {rate:8.1f} orders/s  {rate / ceiling:5.2f} of C/W  ({rate / base_rate:.2f} x baseline)"
        )
        print(
            f"  exported {report.counts['exported']}, peak in-flight writes {metrics['peak_in_flight_writes']} (limit {args.concurrency}), rejected {metrics['writes_rejected_locked']}"
        )
        erp.close()
        world.close()


if __name__ == "__main__":
    main()
