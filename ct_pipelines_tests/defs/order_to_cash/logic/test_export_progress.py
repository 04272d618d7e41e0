"""A 25,000-order export against a slow ERP tells the event log how it is going at least every
30 s: done, total, rate, ETA and parked so far.

The ERP here is slow on a simulated clock (each write costs 0.5 s with 4 in flight, so the
export takes 52 simulated minutes), so nothing waits for real and the machine's speed does not
matter. The exporter, the store and the progress counter are the product's, wired as the
``erp_sales_orders`` asset wires them, with the asset's default thresholds.
"""

from __future__ import annotations

import itertools
import re
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ct_pipelines.defs.order_to_cash.assets import ErpExportConfig
from ct_pipelines.defs.order_to_cash.logic.engine import ExportItem, ExportOptions, OrderExporter
from ct_pipelines.erp.port import ErpSalesOrder, SalesOrderDraft
from ct_pipelines.kernel.progress import Progress
from ct_pipelines.store import IntegrationStore

ORDERS = 25_000
WRITE_SECONDS = 0.5
IN_FLIGHT = 4


class SlowErp:
    """An ERP whose writes take WRITE_SECONDS each, IN_FLIGHT at a time, on a simulated clock."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.orders: dict[str, ErpSalesOrder] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self.seconds

    def find_sales_order(self, external_document_number: str) -> ErpSalesOrder | None:
        with self._lock:
            return self.orders.get(external_document_number)

    def upsert_sales_order(self, order: SalesOrderDraft, *, idempotency_key: str) -> ErpSalesOrder:
        with self._lock:
            self.seconds += WRITE_SECONDS / IN_FLIGHT
            stamp = datetime(2026, 11, 20, tzinfo=UTC)
            created = ErpSalesOrder(
                **order.model_dump(),
                sales_order_no=f"SO{len(self.orders):06d}",
                status="open",
                created_at=stamp,
                updated_at=stamp,
            )
            self.orders[order.external_document_number] = created
            return created


def _items() -> list[ExportItem]:
    template = SalesOrderDraft.model_validate(
        {
            "external_document_number": "UK-0",
            "order_date": date(2026, 11, 20),
            "currency": "GBP",
            "fraction_digits": 2,
            "customer": {"ref": "C-1", "country": "GB"},
            "lines": [
                {
                    "line_no": 1,
                    "item_no": "MUG-CREAM",
                    "quantity": 1,
                    "unit_price_minor": 1200,
                    "net_minor": 1000,
                    "tax_minor": 200,
                    "gross_minor": 1200,
                    "tax_code": "S",
                }
            ],
            "totals": {"net_minor": 1000, "tax_minor": 200, "gross_minor": 1200},
            "source_order_id": "order-0",
            "source_order_version": 1,
        }
    )
    drafts = (
        template.model_copy(
            update={"external_document_number": f"UK-{n}", "source_order_id": f"order-{n}"}
        )
        for n in range(ORDERS)
    )
    return [
        ExportItem(d.external_document_number, d.source_order_id, 1, "2026-11-20T10:00:00Z", d)
        for d in drafts
    ]


def _done(line: str) -> int:
    found = re.search(r": ([\d,]+)/", line)
    assert found, line
    return int(found.group(1).replace(",", ""))


@pytest.mark.slow
def test_a_25000_order_export_to_a_slow_erp_logs_progress_at_least_every_30_seconds(
    tmp_path: Path,
) -> None:
    erp = SlowErp()
    store = IntegrationStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    items = _items()
    config = ErpExportConfig()
    lines: list[tuple[float, str]] = []
    progress = Progress(
        "erp_sales_orders export",
        len(items),
        lambda line: lines.append((erp.now(), line)),
        unit="orders",
        every=config.progress_every_orders,
        every_seconds=config.progress_every_seconds,
        clock=erp.now,
    )
    report = OrderExporter(
        erp,  # type: ignore[arg-type]  # the two calls the exporter makes of an ErpPort
        store,
        ExportOptions(
            workers=config.workers,
            max_in_flight_writes=config.max_in_flight_writes,
            rate_per_second=None,
        ),
        progress=lambda result: progress.advance(parked=int(result.outcome.startswith("failed"))),
    ).export(items)

    assert report.counts["exported"] == ORDERS
    total_seconds = ORDERS * WRITE_SECONDS / IN_FLIGHT
    assert total_seconds > 50 * 60  # the case of the issue: a long export, not a quick one
    # At least one line per 30 s of the export: the first within 30 s of the start, then no
    # gap longer than 30 s (plus the writes in flight when the line fell due).
    slack = config.workers * WRITE_SECONDS / IN_FLIGHT
    # A line's time is the simulated clock when it fell due: the orders it reports done, each a
    # write of WRITE_SECONDS / IN_FLIGHT (the clock read when the line is handed over may be
    # later, if the thread reporting it loses the interpreter to the other writers meanwhile).
    times = [0.0, *(_done(line) * WRITE_SECONDS / IN_FLIGHT for _, line in lines)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= config.progress_every_seconds + slack, max(gaps)
    assert len(lines) >= total_seconds / config.progress_every_seconds
    # Each line says done, total, rate, ETA and parked so far.
    pattern = re.compile(
        r"^erp_sales_orders export: [\d,]+/25,000 orders \(\d+ %\), [\d.,]+/s, "
        r"ETA (\d+h\d\dm|\d+m\d\ds|\d+s|unknown), parked so far 0$"
    )
    assert all(pattern.match(line) for _, line in lines), lines[:3]
    assert lines[-1][1].startswith("erp_sales_orders export: 25,000/25,000 orders (100 %), 8.0/s")
    middle = lines[len(lines) // 2][1]
    assert "ETA 2" in middle  # about half of 52 minutes left: 25m or 26m
