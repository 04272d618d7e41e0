"""Order export throughput against the sandbox ERP with write latency W and concurrency limit C.

The ceiling is C / W orders a second: C writes in flight, each taking W. For every cell of the
matrix C x W the script prints the exporter's orders/s (claims, bulk lookup, ledger, exception
bookkeeping and the ERP writes, as in production) as a fraction of that ceiling, and a baseline
measured in the same run against the same ERP: C threads doing nothing but the ERP writes, which
shows what the HTTP stack and the ERP's own processing leave of the ceiling.

By default the sandbox ERP is called in-process (its WSGI app through the sandbox transport), so
its own work per write shares this process's interpreter lock with the exporter: a conservative
setting. ``--erp process`` serves it from a process of its own over HTTP instead (the sandbox's
threaded wsgiref server, HTTP/1.1 with persistent connections), as a real ERP is: its work then
competes for the cores but not for this process's interpreter lock. Either way the bare writes
and the exporter meet the same ERP in the same mode, and the first line says which. Its latency injection (``write_latency_ms``, with the write limit
``write_limit``) is the sandbox's own, see ``ct_sandbox/erp_app.py``.

    nice .venv/bin/python bench/export_throughput.py                       # C 4,16 x W 20,50,200
    nice .venv/bin/python bench/export_throughput.py --concurrency 16 --latency-ms 50 --seconds 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SERVER = """
import sys
from ct_sandbox import SandboxWorld
from ct_sandbox.transport import start_server
world = SandboxWorld.open(sys.argv[1])
server = start_server(world.commercetools_app(), world.erp_app())
print(server.url, flush=True)
sys.stdin.read()
"""


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


class _Erp:
    """The sandbox ERP for one (C, W) cell: its own process over HTTP, or in-process."""

    def __init__(self, world: Any, mode: str, limit: int, latency_ms: int) -> None:
        from ct_pipelines.erp.rest import RestErpClient
        from ct_sandbox import SANDBOX_ERP_URL

        world.configure_erp(write_limit=limit, write_latency_ms=latency_ms)
        self._process: subprocess.Popen[str] | None = None
        if mode == "process":
            root = Path(__file__).resolve().parents[1]
            self._process = subprocess.Popen(
                [sys.executable, "-c", _SERVER, str(world.directory)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=root,
                env={**os.environ, "PYTHONPATH": str(root)},
            )
            assert self._process.stdout is not None
            url = self._process.stdout.readline().strip()
            self.client = RestErpClient(f"{url}/erp", None)
        else:
            self.client = RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport())

    def reset_metrics(self) -> None:
        self.client._request("POST", "/_admin/metrics/reset")

    def close(self) -> None:
        self.client.close()
        if self._process is not None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            self._process.wait(timeout=30)


def _bare_write(client: Any) -> Any:
    def write(draft: Any) -> Any:
        return client.upsert_sales_order(draft, idempotency_key=draft.external_document_number)

    return write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=_ints, default=[4, 16], help="C values, e.g. 4,16")
    parser.add_argument("--latency-ms", type=_ints, default=[20, 50, 200], help="W values")
    parser.add_argument(
        "--seconds",
        type=float,
        default=3.0,
        help="orders per phase = this many seconds at the ceiling C/W (at least --min-orders)",
    )
    parser.add_argument("--min-orders", type=int, default=100)
    parser.add_argument("--erp", choices=["inline", "process"], default="inline")
    args = parser.parse_args()

    from ct_pipelines.defs.order_to_cash.logic.batch import build_batch
    from ct_pipelines.defs.order_to_cash.logic.engine import (
        ExportItem,
        ExportOptions,
        OrderExporter,
    )
    from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
    from ct_pipelines.erp.port import SalesOrderDraft
    from ct_pipelines.kernel.eligibility import EligibilityRule
    from ct_pipelines.kernel.shop import SHOP
    from ct_pipelines.store import IntegrationStore
    from ct_sandbox import SandboxWorld

    cells = [(c, w) for w in args.latency_ms for c in args.concurrency]
    sizes = {(c, w): max(args.min_orders, round(args.seconds * c / (w / 1000))) for c, w in cells}
    with tempfile.TemporaryDirectory() as tmp:
        world = SandboxWorld.open(Path(tmp) / "sandbox")
        total = 2 * sum(sizes.values())
        ids = world.bulk_orders(total, payment_kind="paid")
        docs = [world.documents.get("orders", order_id) for order_id in ids]
        setup = _Erp(world, "inline", 4, 0)
        mapping = SalesOrderMapping(
            item_numbers={i.sku: i.item_no for i in setup.client.iter_items()}
        )
        setup.close()
        batch = build_batch(
            docs, tz=SHOP.tz, rule=EligibilityRule(), mapping=mapping, channel_id=None
        )
        drafts = [
            SalesOrderDraft.model_validate_json(r["sales_order"])
            for r in batch.rows
            if r["sales_order"]
        ]
        world.close()
        print(
            f"bench/export_throughput.py: sandbox ERP {'in its own process over HTTP' if args.erp == 'process' else 'in-process'}, "
            f"{len(drafts)} orders; per cell a baseline of bare ERP writes and the exporter, "
            "each on orders of their own"
        )
        print(
            f"  {'C':>3} {'W ms':>5} {'C/W /s':>7} {'orders':>6} | {'bare /s':>8} {'of C/W':>6} | "
            f"{'export /s':>9} {'of C/W':>6} {'x bare':>6} | {'peak':>4} {'423s':>4} "
            f"{'cpu ms/order':>12} {'(bare)':>6}"
        )
        offset = 0
        for c, w in cells:
            n = sizes[(c, w)]
            base_drafts = drafts[offset : offset + n]
            export_drafts = drafts[offset + n : offset + 2 * n]
            offset += 2 * n
            ceiling = c / (w / 1000)
            erp = _Erp(world, args.erp, c, w)
            try:
                client = erp.client
                cpu = time.process_time()
                started = time.perf_counter()
                with ThreadPoolExecutor(c) as pool:
                    list(pool.map(_bare_write(client), base_drafts))
                base_rate = n / (time.perf_counter() - started)
                base_cpu_ms = (time.process_time() - cpu) * 1000 / n

                store = IntegrationStore(f"sqlite:///{Path(tmp) / f'store-{c}-{w}.db'}")
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
                    client,
                    store,
                    ExportOptions(workers=c + 2, max_in_flight_writes=c, rate_per_second=None),
                )
                erp.reset_metrics()
                cpu = time.process_time()
                started = time.perf_counter()
                report = exporter.export(items)
                seconds = time.perf_counter() - started
                cpu_ms = (time.process_time() - cpu) * 1000 / n
                metrics = client.metrics()
                store.close()
            finally:
                erp.close()
            rate = report.counts["exported"] / seconds
            assert report.counts["exported"] == n, report.counts
            print(
                f"  {c:>3} {w:>5} {ceiling:>7.0f} {n:>6} | {base_rate:>8.1f} {base_rate / ceiling:>6.2f} | "
                f"{rate:>9.1f} {rate / ceiling:>6.2f} {rate / base_rate:>6.2f} | "
                f"{metrics['peak_in_flight_writes']:>4} {metrics['writes_rejected_locked']:>4} "
                f"{cpu_ms:>12.2f} {base_cpu_ms:>6.2f}",
                flush=True,
            )
        print(
            "  peak: most ERP writes in flight at once during the export (never above C); 423s: "
            "writes the ERP refused for its limit; cpu: this process's CPU per exported order (per bare "
            "write)"
        )


if __name__ == "__main__":
    main()
