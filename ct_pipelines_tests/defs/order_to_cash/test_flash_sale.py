"""A flash sale: 5,000 orders at an ERP that takes 4 writes at once and fails 5 % of requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    erp_documents,
    export_day,
    materialization,
    past_day,
    sales_order_creates,
    world_for,
)
from ct_sandbox.faults import FaultConfig

BURST = 5_000


def _give_permanent_faults(
    world, order_ids: list[str], blocked_sku: str
) -> tuple[set[str], set[str]]:
    """Some orders get a SKU the ERP does not know, some an item the ERP has blocked."""
    unknown, blocked = set(), set()
    for index, order_id in enumerate(order_ids):

        def change(doc, index=index):
            line = doc["lineItems"][0]
            line["variant"]["sku"] = "GHOST-SKU-1" if index % 2 == 0 else blocked_sku
            return doc

        doc = world.documents.update_with("orders", order_id, change)
        (unknown if index % 2 == 0 else blocked).add(doc.get("orderNumber") or doc["id"])
    return unknown, blocked


@pytest.mark.slow
@pytest.mark.parametrize("workers", [4, 8])
def test_flash_sale_reaches_the_erp_exactly_once_within_its_write_limit(
    sandbox_dir: Path, workers: int
) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 2)
    ids = world.bulk_orders(BURST, day=day, payment_kind=None, with_payments=True)
    unknown, blocked = _give_permanent_faults(
        world, ids[:40], world.edge_cases()["blocked_skus"][0]
    )
    world.configure_erp(write_limit=4)
    world.set_faults("erp", FaultConfig(rate_503=0.05, retry_after_seconds=0, seed=11))
    world.erp_app().reset_metrics()
    # A rejected write is retried at once here; production waits for the ERP's Retry-After.
    world.erp_app().lock_retry_after_seconds = 0

    # With 8 the exporter is misconfigured to write more at once than the ERP takes: the ERP's
    # record locks must still hold the line, and the rejected writes be retried, not lost.
    result = export_day(day, workers=workers, extra_config={"max_in_flight_writes": workers})
    assert result.success
    batch = materialization(result, "order_batches")
    export = materialization(result, "erp_sales_orders")

    from ct_pipelines.defs.resources import build_resources

    store = build_resources()["store"].get_store()
    frame = store.read_snapshot("order_batches", partition_key=day.isoformat())
    bulk = frame[frame["order_id"].isin(ids)]
    eligible = set(bulk.loc[bulk["eligible"].astype(bool), "external_document_number"])
    ineligible = set(bulk["external_document_number"]) - eligible
    assert len(bulk) == BURST and eligible and ineligible  # the seeded payment mix
    permanent = (unknown | blocked) & eligible
    assert permanent

    # Every eligible order without a permanent fault is in the ERP exactly once ...
    documents = erp_documents(world)
    creates = sales_order_creates(world)
    for key in eligible - permanent:
        assert documents.get(key) == 1, key
        assert creates.get(key) == 1, key
    # ... nothing ineligible or permanently faulty reached it ...
    assert not (ineligible | permanent) & set(documents)
    # ... the ERP never had more than 4 writes in flight ...
    metrics = world.erp_metrics()
    assert metrics["peak_in_flight_writes"] <= 4
    if workers > 4:
        assert metrics["writes_rejected_locked"] > 0  # the burst queued behind the record locks
    assert metrics["faults_injected"] > 0
    # ... and exceptions exist only for the permanent faults, each with its reason.
    all_open = store.list_exceptions(flow=FLOW, status="open")
    bulk_keys = set(bulk["external_document_number"])
    open_exceptions = [e for e in all_open if e.entity_key in bulk_keys]
    assert {e.entity_key for e in open_exceptions} == permanent
    # Anything else on the queue is one of the seed's deliberate edge cases of that day.
    seeded = set(frame["external_document_number"]) - bulk_keys
    assert {e.entity_key for e in all_open} - bulk_keys <= seeded
    for exception in open_exceptions:
        if exception.entity_key in unknown:
            assert exception.category == "unknown_sku"
            assert "GHOST-SKU-1" in exception.reason
        else:
            assert exception.category == "validation"
            assert "blocked" in exception.reason.lower()
        assert exception.payload_ref.startswith("order:")
    assert export["orders_exported"] + export["orders_recovered"] >= len(eligible - permanent)
    assert export["orders_failed_transient"] == 0
    assert batch["eligible_orders"] >= len(eligible)
    # The ledger agrees with the ERP.
    assert store.exported_keys(FLOW, list(eligible)) == eligible - permanent
