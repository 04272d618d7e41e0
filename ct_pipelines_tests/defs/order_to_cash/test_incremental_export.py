"""Incremental export: the sensor's runs carry the ids of what is new and export only those.

The runs here are launched from the real sensor's run requests on a Dagster instance, as the
daemon would (``launch_like_the_daemon``): bursts spread over ticks, ticks that overlap, runs
that fail and are asked for again, an export killed part-way and repeated.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id

from ct_pipelines.defs.order_to_cash import sensors, watchdog
from ct_pipelines.defs.order_to_cash.assets import order_batches
from ct_pipelines.defs.order_to_cash.logic import polling
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    erp_documents,
    kill_when,
    launch_like_the_daemon,
    materialization,
    past_day,
    sales_order_creates,
    start_export_worker,
    world_for,
)
from ct_sandbox.faults import FaultConfig


def _store():
    return build_resources()["store"].get_store()


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    result = sensors.new_commercetools_orders(
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"commercetools": build_resources()["commercetools"]},
        )
    )
    assert isinstance(result, dg.SensorResult)
    return result


def _ids(request: dg.RunRequest) -> list[str]:
    config = (request.run_config or {})["ops"]
    ids = config["erp_sales_orders"]["config"]["order_ids"]
    assert config["order_batches"]["config"]["order_ids"] == ids
    return ids


def _document_of(world, order_id: str) -> str:
    doc = world.documents.get("orders", order_id)
    return doc.get("orderNumber") or doc["id"]


@pytest.mark.slow
def test_a_burst_over_ticks_exports_each_order_once_through_incremental_runs(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_for(sandbox_dir)
    # Two ticks' worth at this cap: the second tick goes on from where the first stopped.
    monkeypatch.setattr(polling, "MAX_CHANGES_PER_TICK", 1_500)
    burst = world.bulk_orders(2_400, payment_kind="paid")
    with dg.instance_for_test() as instance:
        first = _tick(instance, None)
        second = _tick(instance, first.cursor)
        requests = [*first.run_requests, *second.run_requests]
        assert len(requests) >= 3
        asked: list[str] = []
        for request in requests:
            ids = _ids(request)
            assert 0 < len(ids) <= sensors.ORDERS_PER_RUN
            assert request.tags[sensors.SCOPE_TAG] == "orders"
            # Each run's orders are in order of placement.
            created = [world.documents.get("orders", i)["createdAt"] for i in ids]
            assert created == sorted(created)
            asked += ids
        assert len(asked) == len(set(asked))  # no order asked for twice over the two ticks
        assert set(burst) <= set(asked)

        # The ticks overlapped: the second ran before any run of the first. Launched now, one
        # run of the first tick twice (an operator re-launching it by hand).
        results = launch_like_the_daemon(instance, requests)
        assert all(r.success for r in results)
        again = launch_like_the_daemon(
            instance, [dg.RunRequest(run_key=None, **_retarget(first.run_requests[0]))]
        )
        assert again[0].success
        assert materialization(again[0], "erp_sales_orders")["orders_exported"] == 0

        # A third tick sees only the export markers the runs wrote back: nothing to launch.
        third = _tick(instance, second.cursor)
        assert not third.run_requests

    creates = sales_order_creates(world)
    documents = erp_documents(world)
    for order_id in burst:
        key = _document_of(world, order_id)
        assert creates.get(key) == 1 and documents.get(key) == 1, key
    assert set(creates.values()) == {1}
    # Each day's batch was updated in place with its orders, the seeded rows kept.
    days = {r.partition_key for r in requests}
    stored = set()
    for day in days:
        stored |= set(_store().read_snapshot("order_batches", partition_key=day)["order_id"])
    assert set(burst) <= stored


def _retarget(request: dg.RunRequest) -> dict:
    return {
        "partition_key": request.partition_key,
        "run_config": request.run_config,
        "tags": {**request.tags, "ct_pipelines/trigger": "manual"},
    }


@pytest.mark.slow
def test_a_failed_incremental_run_is_asked_for_again_and_nothing_is_missed(
    sandbox_dir: Path,
) -> None:
    world = world_for(sandbox_dir)
    burst = world.bulk_orders(300, payment_kind="paid")
    with dg.instance_for_test() as instance:
        first = _tick(instance, None)
        assert first.run_requests
        # commercetools fails every order read while the runs execute: they fail.
        world.set_faults(
            "commercetools",
            FaultConfig(rate_503=1.0, retry_after_seconds=0, path_pattern="orders"),
        )
        failed = launch_like_the_daemon(instance, list(first.run_requests))
        assert failed and not any(r.success for r in failed)
        world.set_faults("commercetools", None)
        assert not sales_order_creates(world).keys() & {_document_of(world, i) for i in burst}

        # The next tick finds nothing new, but asks again for every failed run's orders.
        second = _tick(instance, first.cursor)
        retried = {r.tags[sensors.RETRY_OF_TAG]: r for r in second.run_requests}
        assert set(retried) == {r.run_id for r in failed}
        for run in failed:
            request = retried[run.run_id]
            assert request.run_key == f"order-export-retry-of:{run.run_id}"
            assert request.tags[sensors.ATTEMPT_TAG] == "2"
            # The same run config: the same orders (and settings) again.
            assert request.run_config == run.dagster_run.run_config
        assert all(r.success for r in launch_like_the_daemon(instance, second.run_requests))

        # Followed by a successful run: not asked for a third time.
        third = _tick(instance, second.cursor)
        assert not [r for r in third.run_requests if sensors.RETRY_OF_TAG in r.tags]

    creates = sales_order_creates(world)
    for order_id in burst:
        assert creates.get(_document_of(world, order_id)) == 1
    assert set(creates.values()) == {1}


def test_retries_stop_after_the_last_attempt() -> None:
    with dg.instance_for_test() as instance:
        for attempt, expected in (("1", 1), (str(sensors.MAX_ATTEMPTS), 0)):
            run = instance.add_run(
                dg.DagsterRun(
                    job_name=sensors.order_export_job.name,
                    run_id=make_new_run_id(),
                    run_config=sensors.order_ids_config(["o-1"]),
                    status=dg.DagsterRunStatus.STARTED,
                    tags={
                        sensors.SCOPE_TAG: "orders",
                        sensors.ATTEMPT_TAG: attempt,
                        "dagster/partition": "2026-11-26",
                    },
                )
            )
            instance.report_run_failed(run)
            requests = sensors.failed_run_requests(instance, datetime.now(UTC))
            assert len([r for r in requests if r.tags[sensors.RETRY_OF_TAG] == run.run_id]) == (
                expected
            )


def test_the_watchdog_recovers_an_incremental_run_with_its_orders() -> None:
    run = dg.DagsterRun(
        job_name=sensors.order_export_job.name,
        run_id="dead-run",
        run_config=sensors.order_ids_config(["o-1", "o-2"]),
        tags={
            sensors.SCOPE_TAG: "orders",
            sensors.ATTEMPT_TAG: "1",
            "dagster/partition": "2026-11-26",
        },
    )
    request = watchdog._recovery_request(run)
    assert request is not None and request.partition_key == "2026-11-26"
    assert request.run_config == sensors.order_ids_config(["o-1", "o-2"])
    assert request.tags[sensors.RECOVERS_TAG] == "dead-run"
    assert request.tags[sensors.ATTEMPT_TAG] == "2"


@pytest.mark.slow
def test_a_killed_incremental_export_repeated_gives_no_duplicates_and_stays_in_scope(
    sandbox_dir: Path, tmp_path: Path
) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 3)
    resources = build_resources()
    store = resources["store"].get_store()
    # The day as a full run built it; then 300 more orders arrive, 250 of them asked for.
    assert dg.materialize(
        [order_batches], partition_key=day.isoformat(), resources=resources
    ).success
    before = len(store.read_snapshot("order_batches", partition_key=day.isoformat()))
    ids = world.bulk_orders(300, day=day, payment_kind="paid")
    asked, left = ids[:250], ids[250:]
    # The day's batch, updated in place with just the orders asked for.
    assert dg.materialize(
        [order_batches],
        partition_key=day.isoformat(),
        resources=resources,
        run_config={"ops": {"order_batches": {"config": {"order_ids": asked}}}},
    ).success
    batch = store.read_snapshot("order_batches", partition_key=day.isoformat())
    assert len(batch) == before + len(asked)
    assert not set(left) & set(batch["order_id"])
    to_create = set(batch.loc[batch["order_id"].isin(asked), "external_document_number"])

    world.configure_erp(write_latency_ms=150)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(asked))
    worker = start_export_worker(day, ids_file=ids_file)
    kill_when(worker, lambda: len(set(erp_documents(world)) & to_create) >= len(to_create) // 3)
    in_erp_at_kill = set(erp_documents(world)) & to_create
    assert 0 < len(in_erp_at_kill) < len(to_create)

    world.configure_erp(write_latency_ms=0)
    with dg.instance_for_test() as instance:
        (result,) = launch_like_the_daemon(
            instance,
            [
                dg.RunRequest(
                    run_key="repeat",
                    partition_key=day.isoformat(),
                    run_config=sensors.order_ids_config(asked),
                    tags={sensors.SCOPE_TAG: "orders"},
                )
            ],
        )
    assert result.success
    export = materialization(result, "erp_sales_orders")
    documents = erp_documents(world)
    creates = sales_order_creates(world)
    for key in to_create:
        assert documents.get(key) == 1, key
        assert creates.get(key, 0) <= 1, key
    assert store.exported_keys(FLOW, list(to_create)) == to_create
    assert export["orders_failed_transient"] == 0
    # The orders not asked for were neither read into the batch nor sent.
    left_keys = {_document_of(world, i) for i in left}
    assert not left_keys & set(documents)
    assert Counter(documents.values()) == Counter({1: len(documents)})
