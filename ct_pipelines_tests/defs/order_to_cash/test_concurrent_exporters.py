"""Four exporter processes on one store and one ERP: every order written once, by one of them.

Runs on SQLite (a file shared by the processes) and on PostgreSQL (CT_PIPELINES_TEST_PG_URL;
under CI=true it must not skip). Each process walks the same orders from another starting point,
so every claim batch is contended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ct_pipelines.defs.order_to_cash.logic.batch import build_batch
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
from ct_pipelines.erp.port import SalesOrderDraft
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines.kernel.eligibility import EligibilityRule
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines.store import IntegrationStore
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    PROJECT_ROOT,
    erp_documents,
    world_for,
)
from ct_sandbox import SANDBOX_ERP_URL
from ct_sandbox.faults import request_log

PROCESSES = 4


@pytest.mark.slow
def test_four_exporter_processes_write_every_order_exactly_once(
    sandbox_dir: Path, store: IntegrationStore, store_url: str, tmp_path: Path
) -> None:
    world = world_for(sandbox_dir)
    ids = world.bulk_orders(160, payment_kind="paid")
    docs = [world.documents.get("orders", order_id) for order_id in ids]
    # Roomy enough that the processes' writes are never refused for the ERP's write limit.
    world.configure_erp(write_limit=64, write_latency_ms=5)
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        mapping = SalesOrderMapping(item_numbers={i.sku: i.item_no for i in erp.iter_items()})
    batch = build_batch(docs, tz=SHOP.tz, rule=EligibilityRule(), mapping=mapping, channel_id=None)
    drafts = [
        SalesOrderDraft.model_validate_json(r["sales_order"])
        for r in batch.rows
        if r["sales_order"]
    ]
    assert len(drafts) == 160
    keys = {d.external_document_number for d in drafts}
    before = set(erp_documents(world))
    assert not keys & before
    world.close()

    start = tmp_path / "start"
    outs = [tmp_path / f"results-{i}.json" for i in range(PROCESSES)]
    workers = []
    for i, out in enumerate(outs):
        # The same orders, each process from another starting point.
        rotated = drafts[i * 40 :] + drafts[: i * 40]
        drafts_file = tmp_path / f"drafts-{i}.json"
        drafts_file.write_text(json.dumps([d.model_dump(mode="json") for d in rotated]))
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ct_pipelines_tests.defs.order_to_cash.concurrent_export_worker",
                    str(sandbox_dir),
                    store_url,
                    str(drafts_file),
                    str(start),
                    str(out),
                ],
                cwd=PROJECT_ROOT,
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
            )
        )
    while not all(Path(f"{out}.ready").exists() for out in outs):
        assert all(w.poll() is None for w in workers), "an exporter died before the start"
        time.sleep(0.01)
    start.touch()
    for worker in workers:
        assert worker.wait(timeout=600) == 0

    results = [json.loads(out.read_text()) for out in outs]
    # Every process accounts for every order; exactly one of them wrote it.
    for result in results:
        assert set(result) == keys
    exported = Counter(k for r in results for k, (outcome, _) in r.items() if outcome == "exported")
    assert exported == Counter({k: 1 for k in keys})
    others = Counter(outcome for r in results for outcome, _ in r.values() if outcome != "exported")
    assert set(others) <= {"already_exported"}, others
    # The ERP saw one write per order and holds one document each.
    puts = Counter(
        record.path.rsplit("/", 1)[-1]
        for record in request_log(world.db_path, "erp")
        if record.method == "PUT" and "/sales-orders/" in record.path
    )
    assert {k: puts[k] for k in keys} == {k: 1 for k in keys}
    documents = erp_documents(world)
    assert {k: documents.get(k) for k in keys} == {k: 1 for k in keys}
    # The ledger agrees, and no claim is left behind.
    assert store.exported_keys(FLOW, keys) == keys
    assert store.claims.holders(FLOW, keys) == {}
