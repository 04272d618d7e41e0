"""The exception queue from Dagster: a job with run config, and the sensor that relaunches flows."""

from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.definitions import defs as project_definitions
from ct_pipelines.defs.operations.jobs import exception_queue_job
from ct_pipelines.defs.operations.sensors import exception_retries
from ct_pipelines.defs.resources import build_resources, sandbox_world
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines.store import IntegrationStore


def run_job(resources: dict[str, Any], **config: Any) -> dg.ExecuteInProcessResult:
    return exception_queue_job.execute_in_process(
        run_config={"ops": {"work_exception_queue": {"config": config}}},
        resources={"store": resources["store"]},
        raise_on_error=False,
    )


def output(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return result.output_for_node("work_exception_queue")


def shop_day(order: dict[str, Any]) -> str:
    created = datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00"))
    return created.astimezone(SHOP.tz).date().isoformat()


def two_orders_on_different_days(world: Any) -> list[dict[str, Any]]:
    by_day: dict[str, dict[str, Any]] = {}
    for order in world.documents.iter_all("orders"):
        if order.get("orderNumber"):
            by_day.setdefault(shop_day(order), order)
        if len(by_day) == 2:
            break
    return list(by_day.values())


@pytest.fixture
def queued(sandbox_dir: Path) -> tuple[dict[str, Any], IntegrationStore, list[dict[str, Any]]]:
    resources = build_resources()
    store = resources["store"].get_store()
    orders = two_orders_on_different_days(sandbox_world(sandbox_dir))
    for order in orders:
        store.record_exception(
            flow="order_to_cash",
            entity_key=order["orderNumber"],
            category="unknown_sku",
            reason="SKU LMP-BRASS-E27 is not an ERP item",
            payload_ref=f"order:{order['id']}@v{order['version']}",
            sku="LMP-BRASS-E27",
        )
    store.record_exception(
        flow="dispatch", entity_key="SH0000042", category="version_conflict", reason="409 x5"
    )
    return resources, store, orders


def test_list_retry_and_resolve_through_the_job_are_audited(queued) -> None:
    resources, store, _ = queued

    listed = run_job(resources, action="list", sku="LMP-BRASS-E27")
    assert listed.success and output(listed) == {"action": "list", "matched": 2}

    refused = run_job(resources, action="retry", flow="dispatch")
    assert not refused.success  # no actor: nothing is done anonymously
    assert store.get_exception(3).status == "open"

    retried = run_job(resources, action="retry", actor="ops.carol", flow="order_to_cash")
    assert retried.success
    assert output(retried)["flagged"] == 2 and output(retried)["flows"] == ["order_to_cash"]
    for exception_id in (1, 2):
        [_, event] = store.exception_events(exception_id)
        assert (event.action, event.actor) == ("retrying", "ops.carol")

    resolved = run_job(
        resources, action="resolve", actor="ops.dan", ids=[3], note="re-sent by hand in MC"
    )
    assert resolved.success and output(resolved)["resolved"] == 1
    [_, event] = store.exception_events(3)
    assert (event.action, event.actor, event.detail) == (
        "resolved",
        "ops.dan",
        {"note": "re-sent by hand in MC"},
    )
    assert not run_job(resources, action="resolve", actor="ops.dan", ids=[1]).success  # no note


def test_the_retry_sensor_reruns_each_order_day_and_dispatch_once(queued) -> None:
    resources, _, orders = queued
    assert run_job(resources, action="retry", actor="ops.carol", all_matching=True).success

    definitions = project_definitions()
    context = dg.build_sensor_context(resources=resources, definitions=definitions)
    result = exception_retries.evaluate_tick(context)

    days = sorted(shop_day(order) for order in orders)
    requests = sorted(
        ((r.job_name, r.partition_key) for r in result.run_requests),
        key=lambda jp: (jp[0], jp[1] or ""),
    )
    assert requests == [
        ("dispatch_job", None),
        ("order_export_job", days[0]),
        ("order_export_job", days[1]),
    ]
    assert all(r.tags["ct_pipelines/trigger"] == "exception_retries" for r in result.run_requests)

    # Asked once, launched once.
    again = exception_retries.evaluate_tick(
        dg.build_sensor_context(cursor=result.cursor, resources=resources, definitions=definitions)
    )
    assert again.run_requests == [] and again.skip_message
