"""A crash between the ERP write and the ledger write must not produce a duplicate."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from ct_pipelines.defs.order_to_cash.assets import order_batches
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.defs.resources import build_resources
from ct_pipelines.store.claims import owner_is_gone
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    erp_documents,
    export_day,
    kill_when,
    materialization,
    past_day,
    sales_order_creates,
    start_export_worker,
    world_for,
)


@pytest.mark.slow
def test_killed_export_repeated_gives_no_duplicates_and_misses_nothing(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 3)
    world.bulk_orders(300, day=day, payment_kind="paid")
    assert dg.materialize(
        [order_batches], partition_key=day.isoformat(), resources=build_resources()
    ).success
    store = build_resources()["store"].get_store()
    batch = store.read_snapshot("order_batches", partition_key=day.isoformat())
    eligible = set(
        batch.loc[
            batch["eligible"].astype(bool) & batch["sales_order"].notna(),
            "external_document_number",
        ]
    )
    before = set(erp_documents(world))
    to_create = eligible - before
    assert len(to_create) >= 250

    # Slow ERP writes (about 20 s for the batch), so even on a starved machine the process is
    # surely in the middle of the batch when it dies.
    world.configure_erp(write_latency_ms=150)
    worker = start_export_worker(day)
    kill_when(worker, lambda: len(set(erp_documents(world)) & to_create) >= len(to_create) // 3)
    in_erp_at_kill = set(erp_documents(world)) & to_create
    assert 0 < len(in_erp_at_kill) < len(to_create)
    # Some orders reached the ERP without the ledger knowing: the worst moment.
    ledger_at_kill = store.exported_keys(FLOW, list(to_create))
    assert ledger_at_kill <= in_erp_at_kill
    # What the killed worker still held is held by a process provably gone: the next run takes
    # it over at once instead of waiting for the lease to run out.
    held_at_kill = store.claims.holders(FLOW, list(to_create))
    assert all(owner_is_gone(owner) for owner, _ in held_at_kill.values())

    world.configure_erp(write_latency_ms=0)
    result = export_day(day)
    assert result.success
    export = materialization(result, "erp_sales_orders")
    documents = erp_documents(world)
    creates = sales_order_creates(world)
    for key in eligible:
        assert documents.get(key) == 1, key
    # The request log is written after the ERP's own transaction, so an order whose create was
    # cut off by the kill may hold no 201 entry; none may hold two.
    for key in to_create:
        assert creates.get(key, 0) <= 1, f"{key} created {creates.get(key)} times"
    assert store.exported_keys(FLOW, list(eligible)) == eligible
    assert store.claims.holders(FLOW, list(eligible)) == {}
    assert export["orders_failed_transient"] == 0
    assert export["orders_recovered"] >= len(in_erp_at_kill - ledger_at_kill)
