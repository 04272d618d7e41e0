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
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from ct_pipelines.defs.order_to_cash.logic.batch import build_batch
from ct_pipelines.defs.order_to_cash.logic.engine import (
    FLOW,
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
from ct_pipelines.store.claims import ClaimSession
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    PROJECT_ROOT,
    erp_documents,
    world_for,
)
from ct_sandbox import SANDBOX_ERP_URL
from ct_sandbox.faults import request_log

PROCESSES = 4


def _drafts(world: Any, count: int) -> list[SalesOrderDraft]:
    ids = world.bulk_orders(count, payment_kind="paid")
    docs = [world.documents.get("orders", order_id) for order_id in ids]
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        mapping = SalesOrderMapping(item_numbers={i.sku: i.item_no for i in erp.iter_items()})
    batch = build_batch(docs, tz=SHOP.tz, rule=EligibilityRule(), mapping=mapping, channel_id=None)
    return [
        SalesOrderDraft.model_validate_json(r["sales_order"])
        for r in batch.rows
        if r["sales_order"]
    ]


def _items(drafts: list[SalesOrderDraft]) -> list[ExportItem]:
    return [
        ExportItem(
            d.external_document_number,
            d.source_order_id,
            d.source_order_version,
            d.order_date.isoformat(),
            d,
        )
        for d in drafts
    ]


def _puts(world: Any) -> Counter[str]:
    return Counter(
        unquote(record.path.rsplit("/", 1)[-1])
        for record in request_log(world.db_path, "erp")
        if record.method == "PUT" and "/sales-orders/" in record.path
    )


def test_orders_another_live_export_holds_are_left_to_it_and_reported_once_it_sent_them(
    sandbox_dir: Path, store: IntegrationStore
) -> None:
    world = world_for(sandbox_dir)
    drafts = _drafts(world, 6)
    other = ClaimSession(store.claims, FLOW, lease=timedelta(hours=1))
    held = drafts[:2]
    assert other.claim([(d.external_document_number, None, None, None) for d in held]).claimed
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        exporter = OrderExporter(
            erp,
            store,
            ExportOptions(workers=2, rate_per_second=None, claim_wait_seconds=600),
        )
        box: list[Any] = []
        thread = threading.Thread(target=lambda: box.append(exporter.export(_items(drafts))))
        thread.start()
        rest = {d.external_document_number for d in drafts[2:]}
        deadline = time.monotonic() + 300
        while store.exported_keys(FLOW, rest) != rest:
            assert thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.02)
        # The other export sends and records its two orders meanwhile.
        for d in held:
            erp.upsert_sales_order(d, idempotency_key=d.external_document_number)
        store.ledger.mark_exported_many(
            FLOW, [(d.external_document_number, "by-the-other") for d in held], owner=other.owner
        )
        thread.join(timeout=300)
    report = box[0].by_key()
    assert {k: report[k].outcome for k in rest} == {k: "exported" for k in rest}
    assert {report[d.external_document_number].outcome for d in held} == {"already_exported"}
    puts = _puts(world)
    assert {d.external_document_number: puts[d.external_document_number] for d in drafts} == {
        d.external_document_number: 1 for d in drafts
    }
    other.close()


def test_an_order_held_for_the_whole_wait_is_reported_and_sent_later_not_twice(
    sandbox_dir: Path, store: IntegrationStore
) -> None:
    world = world_for(sandbox_dir)
    drafts = _drafts(world, 3)
    key = drafts[0].external_document_number
    other = ClaimSession(store.claims, FLOW, lease=timedelta(hours=1))
    assert other.claim([(key, None, None, None)]).claimed == [key]
    options = ExportOptions(workers=2, rate_per_second=None, claim_wait_seconds=0.2)
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        first = OrderExporter(erp, store, options).export(_items(drafts)).by_key()
        assert first[key].outcome == "failed_transient"
        assert first[key].category == "claimed_elsewhere" and other.owner in str(first[key].reason)
        assert _puts(world)[key] == 0
        # Not parked: the holder is responsible for it meanwhile.
        assert store.list_exceptions(flow=FLOW, entity_key=key) == []
        other.close()  # e.g. that export ended without sending it
        second = OrderExporter(erp, store, options).export(_items(drafts)).by_key()
    assert second[key].outcome == "exported"
    assert _puts(world)[key] == 1


@pytest.mark.slow
def test_four_exporter_processes_write_every_order_exactly_once(
    sandbox_dir: Path, store: IntegrationStore, store_url: str, tmp_path: Path
) -> None:
    world = world_for(sandbox_dir)
    # Roomy enough that the processes' writes are never refused for the ERP's write limit.
    world.configure_erp(write_limit=64, write_latency_ms=5)
    drafts = _drafts(world, 160)
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
    puts = _puts(world)
    assert {k: puts[k] for k in keys} == {k: 1 for k in keys}
    documents = erp_documents(world)
    assert {k: documents.get(k) for k in keys} == {k: 1 for k in keys}
    # The ledger agrees, and no claim is left behind.
    assert store.exported_keys(FLOW, keys) == keys
    assert store.claims.holders(FLOW, keys) == {}
