"""One OrderExporter in a process of its own, for the test of four exporters on one store.

    python -m ct_pipelines_tests.defs.order_to_cash.concurrent_export_worker \
        <sandbox dir> <store url> <drafts.json> <start file> <results.json>

Reads the sales-order drafts, opens the store and the sandbox ERP (in-process, on the shared
world database), waits for ``start file`` so that all exporters start together, exports, and
writes each order's outcome to ``results.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ct_pipelines.defs.order_to_cash.logic.engine import ExportItem, ExportOptions, OrderExporter
from ct_pipelines.erp.port import SalesOrderDraft
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines.store import IntegrationStore
from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld


def main(sandbox: Path, url: str, drafts_file: Path, start: Path, out: Path) -> int:
    drafts = [SalesOrderDraft.model_validate(d) for d in json.loads(drafts_file.read_text())]
    items = [
        ExportItem(
            d.external_document_number,
            d.source_order_id,
            d.source_order_version,
            d.order_date.isoformat(),
            d,
        )
        for d in drafts
    ]
    world = SandboxWorld.open(sandbox)
    store = IntegrationStore(url)
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        exporter = OrderExporter(
            erp,
            store,
            ExportOptions(workers=4, max_in_flight_writes=4, rate_per_second=None, claim_batch=20),
        )
        Path(f"{out}.ready").touch()
        while not start.exists():
            time.sleep(0.005)
        report = exporter.export(items)
    out.write_text(json.dumps({r.key: [r.outcome, r.erp_document] for r in report.results}))
    store.close()
    world.close()
    return 0


if __name__ == "__main__":
    sandbox, url, drafts_file, start, out = sys.argv[1:6]
    sys.exit(main(Path(sandbox), url, Path(drafts_file), Path(start), Path(out)))
