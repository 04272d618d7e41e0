"""Order-to-cash through Dagster against the sandbox: backfills, the sensor, write-back, retries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders, order_batches
from ct_pipelines.defs.order_to_cash.logic.checks import days_needing_retry
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.defs.order_to_cash.logic.polling import PollCursor, poll_order_changes
from ct_pipelines.defs.order_to_cash.sensors import new_commercetools_orders
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    erp_documents,
    export_day,
    materialization,
    past_day,
    sales_order_creates,
    world_for,
)
from ct_sandbox.seed import EXPORT_CHANNEL_KEY


def _store():
    return build_resources()["store"].get_store()


def _eligible(day: str) -> set[str]:
    frame = _store().read_snapshot("order_batches", partition_key=day)
    ok = frame[frame["eligible"].astype(bool) & frame["sales_order"].notna()]
    return set(ok["external_document_number"])


def test_backfill_of_seven_days_in_one_run(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    last = past_day(world, 0)
    first = last - timedelta(days=6)
    result = dg.materialize(
        [order_batches, erp_sales_orders],
        resources=build_resources(),
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        run_config={"ops": {"erp_sales_orders": {"config": {"rate_per_second": 0.0}}}},
    )
    assert result.success
    partitions = {e.partition for e in result.asset_materializations_for_node("erp_sales_orders")}
    assert len(partitions) == 7
    days = [(first + timedelta(days=i)).isoformat() for i in range(7)]
    eligible = set().union(*(_eligible(day) for day in days))
    assert eligible
    documents = erp_documents(world)
    assert all(documents.get(key) == 1 for key in eligible)
    assert _store().exported_keys(FLOW, list(eligible)) == eligible
    totals = materialization(result, "erp_sales_orders")["run_totals"]
    # The seed already put some of these orders into the ERP: found by lookup, not created again.
    assert totals["orders_recovered"] > 0
    assert totals["orders_exported"] > 0


def test_single_run_backfill_reports_each_days_own_counts(sandbox_dir: Path) -> None:
    """Five days in one run: every day's materialisation carries that day's numbers only."""
    world = world_for(sandbox_dir)
    last = past_day(world, 8)
    days = [last - timedelta(days=i) for i in range(5)]
    for n, day in enumerate(days, start=1):
        world.bulk_orders(7 * n, day=day, payment_kind="paid")
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [order_batches, erp_sales_orders],
        resources=build_resources(),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": days[-1].isoformat(),
            "dagster/asset_partition_range_end": days[0].isoformat(),
        },
        run_config={"ops": {"erp_sales_orders": {"config": {"rate_per_second": 0.0}}}},
    )
    assert result.success
    store = _store()
    seen_counts = set()
    for day in days:
        key = day.isoformat()
        frame = store.read_snapshot("order_batches", partition_key=key)
        eligible = int(frame["eligible"].astype(bool).sum())
        for asset, expected in (("order_batches", len(frame)), ("erp_sales_orders", eligible)):
            event = instance.get_latest_materialization_event(dg.AssetKey(asset))
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]),
                limit=1,
            ).records
            assert event is not None and records, (asset, key)
            metadata = records[0].asset_materialization.metadata
            assert metadata["dagster/row_count"].value == expected, (asset, key)
            assert "dagster/column_schema" in metadata and "preview" in metadata
        exported = records[0].asset_materialization.metadata
        assert (
            exported["orders_exported"].value
            + exported["orders_recovered"].value
            + exported["orders_already_exported"].value
            + exported["orders_failed_permanent"].value
            + exported["orders_failed_transient"].value
        ) == eligible
        seen_counts.add(len(frame))
    # The days hold different numbers of orders, so one run-wide number could not pass above.
    assert len(seen_counts) == 5


def test_rerunning_a_day_exports_nothing_twice_and_marks_orders_in_commercetools(
    sandbox_dir: Path,
) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 1)
    world.bulk_orders(30, day=day, payment_kind="paid")
    first = export_day(day)
    assert first.success
    exported = materialization(first, "erp_sales_orders")
    assert exported["orders_exported"] >= 30
    assert exported["marked_in_commercetools"] >= 30

    second = export_day(day)
    assert "GBP " in exported["gross_into_erp"]
    again = materialization(second, "erp_sales_orders")
    assert again["orders_exported"] == 0 and again["orders_recovered"] == 0
    assert (
        again["orders_already_exported"]
        == exported["dagster/row_count"] - exported["orders_failed_permanent"]
    )
    assert again["marked_in_commercetools"] == 0
    assert all(n == 1 for n in sales_order_creates(world).values())

    # The write-back is commercetools' own export marker: sync info against the export channel.
    channel = next(
        c for c in world.documents.iter_all("channels") if c["key"] == EXPORT_CHANNEL_KEY
    )
    # Every exported order, looked up by its id: an order without an orderNumber travels as its
    # id without hyphens, so the document number alone does not find it in commercetools.
    frame = _store().read_snapshot("order_batches", partition_key=day.isoformat())
    ok = frame[frame["eligible"].astype(bool) & frame["sales_order"].notna()]
    assert len(ok) >= 30
    for order_id in ok["order_id"]:
        order = world.documents.get("orders", order_id)
        assert order is not None, order_id
        assert any(info["channel"]["id"] == channel["id"] for info in order["syncInfo"]), order_id


def test_parked_orders_go_through_once_the_cause_is_fixed(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 1)
    [order_id] = world.bulk_orders(1, day=day, payment_kind="paid")
    doc = world.documents.get("orders", order_id)
    taxed_rate = doc["lineItems"][0]["taxRate"]["amount"]
    # The ERP does not know this order's tax rate yet: the mapping table lacks it.
    rates = {
        rate: code
        for rate, code in {"0.2": "S", "0.05": "R", "0": "Z"}.items()
        if float(rate) != float(taxed_rate)
    }
    config = {"ops": {"order_batches": {"config": {"tax_codes_by_rate": rates}}}}
    blocked = dg.materialize(
        [order_batches, erp_sales_orders],
        partition_key=day.isoformat(),
        resources=build_resources(),
        run_config=config,
    )
    assert blocked.success
    key = doc["orderNumber"]
    [parked] = [
        e for e in _store().list_exceptions(flow=FLOW, status="open") if e.entity_key == key
    ]
    assert parked.category == "unknown_tax_code"
    assert key not in erp_documents(world)
    assert day.isoformat() in days_needing_retry(_store(), world.now())

    # The mapping is fixed; the next run exports it and closes the exception on its own.
    fixed = export_day(day)
    assert fixed.success
    assert erp_documents(world).get(key) == 1
    assert not [
        e for e in _store().list_exceptions(flow=FLOW, status="open") if e.entity_key == key
    ]


def test_sensor_launches_each_change_once_even_inside_its_overlap_window(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    resources = {"commercetools": build_resources()["commercetools"]}
    with dg.instance_for_test() as instance:
        first = new_commercetools_orders(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        assert isinstance(first, dg.SensorResult) and first.run_requests
        launched = {r.run_key for r in first.run_requests}

        # New orders arrive; the next poll re-reads the overlap and must launch only the new ones.
        arrived: list[str] = []
        for _ in range(12):  # trade is thin at night: advance until some orders come in
            arrived += world.advance(minutes=30)["order_ids"]
            if arrived:
                break
        assert arrived
        second = new_commercetools_orders(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
        )
        assert second.run_requests
        assert not launched & {r.run_key for r in second.run_requests}

        # Nothing new: a skip, and the cursor stays usable.
        third = new_commercetools_orders(
            dg.build_sensor_context(instance=instance, cursor=second.cursor, resources=resources)
        )
        assert not third.run_requests
        assert third.skip_reason is not None


def test_orders_modified_inside_the_overlap_are_exported_once(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    ids = world.bulk_orders(5, payment_kind="paid")
    resources = {"commercetools": build_resources()["commercetools"]}
    no_marker = {"write_back": "none", "rate_per_second": 0.0}
    with dg.instance_for_test() as instance:
        first = new_commercetools_orders(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        for request in first.run_requests:
            assert export_day(request.partition_key, extra_config=no_marker).success
        exported = set(sales_order_creates(world))
        # Without an export marker in commercetools, an exported order that changes again a
        # moment later (inside the 5-minute overlap) is new work for the sensor ...
        world.documents.update_with(
            "orders", ids[0], lambda d: {**d, "purchaseOrderNumber": "PO-77"}
        )
        [fresh] = world.bulk_orders(1, payment_kind="paid")
        # bulk_orders back-dates its orders at random inside the last 24 hours; an order placed
        # now is modified now, which the touch gives it whatever the time of day.
        world.documents.update_with("orders", fresh, lambda d: dict(d))
        second = new_commercetools_orders(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
        )
        changed = {
            c["id"] for c in world.documents.iter_all("orders") if c["id"] in (ids[0], fresh)
        }
        assert len(changed) == 2 and second.run_requests
        assert {r.partition_key for r in second.run_requests} <= {
            r.partition_key for r in first.run_requests
        } | {r.partition_key for r in second.run_requests}
        for request in second.run_requests:
            assert export_day(request.partition_key, extra_config=no_marker).success
        # ... yet the ERP received every order exactly once, the re-modified one included.
    creates = sales_order_creates(world)
    modified = world.documents.get("orders", ids[0])
    assert creates[modified["orderNumber"]] == 1
    assert creates[world.documents.get("orders", fresh)["orderNumber"]] == 1
    assert all(n == 1 for n in creates.values())
    assert exported < set(creates)


@pytest.mark.slow
def test_a_burst_larger_than_a_tick_spreads_over_ticks_without_loss_or_repeats(
    sandbox_dir: Path,
) -> None:
    world = world_for(sandbox_dir)
    # The burst spreads over the 24 hours before the moment it is inserted, and the first tick
    # looks back 24 hours from its "now": taking that now before the insert keeps the oldest
    # orders inside the window however slowly a loaded machine inserts and polls.
    now = world.now()
    burst = set(world.bulk_orders(6_000, payment_kind="paid"))
    taken: list[str] = []
    cursor = PollCursor()
    ticks = 0
    with build_resources()["commercetools"].open_client() as client:
        while ticks < 5:
            ticks += 1
            fresh, cursor, more = poll_order_changes(client, cursor, now, limit=5_000)
            taken += [change.order_id for change in fresh]
            if not more:
                break
    # More than one tick's worth (5,000 at most here): two ticks, the second going on from exactly
    # where the first stopped, so nothing is read twice and nothing is lost.
    assert ticks == 2
    assert len(taken) == len(set(taken))
    assert burst <= set(taken)


def test_a_slow_export_logs_progress_to_the_event_log(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a fake clock every order takes 31 s, so each one is worth a progress line (at least
    one per 30 s), well below the every-N-orders threshold; no real waiting."""
    from ct_pipelines.defs import step_log

    ticks = iter(range(0, 10**9, 31))
    monkeypatch.setattr(step_log, "monotonic", lambda: float(next(ticks)))
    world = world_for(sandbox_dir)
    day = past_day(world, 9)
    world.bulk_orders(12, day=day, payment_kind="paid")
    instance = dg.DagsterInstance.ephemeral()
    result = _export(
        day,
        instance,
        {"workers": 2, "progress_every_orders": 10_000, "progress_heartbeat_seconds": 0},
    )
    assert result.success
    lines = _event_log_messages(instance, result, "erp_sales_orders export:")
    eligible = len(_eligible(day.isoformat()))
    assert eligible >= 12
    assert len(lines) == eligible
    assert lines[-1].startswith(f"erp_sales_orders export: {eligible}/{eligible} orders (100 %)")
    assert "/s, ETA" in lines[-1] and lines[-1].endswith("parked so far 0")


def test_parked_order_warnings_reach_the_event_log(sandbox_dir: Path) -> None:
    from ct_sandbox.faults import FaultConfig

    world = world_for(sandbox_dir)
    day = past_day(world, 9)
    world.bulk_orders(3, day=day, payment_kind="paid")
    instance = dg.DagsterInstance.ephemeral()
    resources = build_resources()
    assert dg.materialize([order_batches], partition_key=str(day), resources=resources).success
    world.set_faults("erp", FaultConfig(rate_503=1.0, retry_after_seconds=0, seed=3))
    try:
        result = dg.materialize(
            [erp_sales_orders],
            partition_key=str(day),
            resources=resources,
            instance=instance,
            run_config={
                "ops": {
                    "erp_sales_orders": {
                        "config": {"rate_per_second": 0.0, "max_attempts": 1, "write_back": "none"}
                    }
                }
            },
        )
    finally:
        world.set_faults("erp", None)
    assert result.success
    parked = _event_log_messages(instance, result, "ct_pipelines.defs.order_to_cash.logic.engine:")
    assert len(parked) >= 3
    assert all("parked (transient_exhausted)" in m for m in parked)
    progress = _event_log_messages(instance, result, "erp_sales_orders export:")
    assert progress and f"parked so far {len(parked)}" in progress[-1]


def _export(
    day: object, instance: dg.DagsterInstance, config: dict[str, object]
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [order_batches, erp_sales_orders],
        partition_key=str(day),
        resources=build_resources(),
        instance=instance,
        run_config={"ops": {"erp_sales_orders": {"config": {"rate_per_second": 0.0, **config}}}},
    )


def _event_log_messages(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, prefix: str
) -> list[str]:
    """The run's user log lines (what the UI's event log shows) that start with ``prefix``."""
    return [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.user_message.startswith(prefix)
    ]
