"""Dispatch end to end against the sandbox world: ERP shipments in, commercetools orders out.

Most tests start from a world whose seeded shipments were dispatched once (done once per module
and copied, as the first run over the seeded history is the slow part).
"""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.defs.dispatch.assets import (
    SHIPMENTS_CURSOR,
    commercetools_deliveries,
    erp_shipments,
)
from ct_pipelines.defs.dispatch.checks import (
    deliveries_without_tracking_ids,
    failed_dispatch_updates,
)
from ct_pipelines.defs.dispatch.logic.engine import FLOW
from ct_pipelines.defs.dispatch.logic.keys import delivery_key
from ct_pipelines.defs.dispatch.sensors import new_erp_shipments
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.event_log import event_log_lines
from ct_pipelines_tests.runbook import assert_says_what_to_do
from ct_sandbox import SandboxWorld
from ct_sandbox import db as world_db
from ct_sandbox.erp_app import record_shipment
from ct_sandbox.faults import FaultConfig

ASSETS = [erp_shipments, commercetools_deliveries]
CHECKS = [failed_dispatch_updates, deliveries_without_tracking_ids]


def _use(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    monkeypatch.setenv("CT_PIPELINES_SANDBOX_DIR", str(directory / "sandbox"))
    monkeypatch.setenv("CT_PIPELINES_DB_URL", f"sqlite:///{directory / 'store.db'}")


@pytest.fixture(scope="module")
def dispatched_template(
    seeded_world_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("dispatched")
    shutil.copytree(seeded_world_template, directory / "sandbox")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _use(monkeypatch, directory)
        resources = build_resources()
        assert dispatch(resources, checks=False).success
        resources["store"].get_store().close()
    SandboxWorld(directory / "sandbox").close()
    yield directory


@pytest.fixture
def dispatched_dir(
    dispatched_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A private copy of a world (and store) whose seeded shipments are already dispatched."""
    directory = tmp_path / "dispatched"
    shutil.copytree(dispatched_template, directory)
    _use(monkeypatch, directory)
    return directory


@pytest.fixture
def world(dispatched_dir: Path) -> SandboxWorld:
    return SandboxWorld.open(dispatched_dir / "sandbox")


@pytest.fixture
def resources(dispatched_dir: Path) -> dict[str, Any]:
    return build_resources()


def dispatch(resources: dict[str, Any], *, checks: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize([*ASSETS, *(CHECKS if checks else [])], resources=resources)


def run_checks(
    resources: dict[str, Any], failed_after_minutes: int = 30
) -> dict[str, dg.AssetCheckEvaluation]:
    config = {"config": {"failed_after_minutes": failed_after_minutes}}
    result = dg.materialize(
        [*ASSETS, *CHECKS],
        resources=resources,
        selection=dg.AssetSelection.checks(*CHECKS),
        run_config={"ops": {check.node_def.name: config for check in CHECKS}},
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def metadata(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> dict[str, Any]:
    [event] = result.asset_materializations_for_node(asset.op.name)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def order_doc(world: SandboxWorld, reference: str) -> dict[str, Any]:
    doc = world.documents.get_by("orders", "orderNumber", reference) or world.documents.get(
        "orders", reference
    )
    assert doc is not None
    return doc


def unshipped_order(world: SandboxWorld, min_units: int = 1) -> tuple[str, str, dict[str, Any]]:
    """An order exported to the ERP and not shipped yet: (sales order no, document, ct order)."""
    conn = world_db.connect(world.db_path)
    for number, document in conn.execute(
        "SELECT sales_order_no, external_document_number FROM erp_sales_orders "
        "WHERE status = 'open' ORDER BY sales_order_no"
    ):
        doc = world.documents.get_by("orders", "orderNumber", document)
        if doc is None or doc.get("orderState") == "Cancelled":
            continue
        lines = [li for li in doc["lineItems"] if li.get("variant", {}).get("sku")]
        if sum(li["quantity"] for li in lines) >= min_units and not doc["shippingInfo"].get(
            "deliveries"
        ):
            return number, document, doc
    raise AssertionError("the seeded world has no open exported order to ship")


def ship(
    world: SandboxWorld,
    sales_order_no: str,
    document: str,
    lines: list[dict[str, Any]],
    tracking: list[str] | None = None,
) -> str:
    conn = world_db.connect(world.db_path)
    with world_db.transaction(conn):
        return record_shipment(
            conn,
            sales_order_no,
            document,
            lines,
            "DPD",
            ["15509990001"] if tracking is None else tracking,
            world.now().isoformat().replace("+00:00", "Z"),
        )


@pytest.mark.slow
def test_first_run_applies_pending_shipments_and_a_repeat_changes_nothing(
    sandbox_dir: Path,
) -> None:
    world = SandboxWorld.open(sandbox_dir)
    resources = build_resources()
    shipped_before = {
        d["id"]: d["version"] for d in world.documents.iter_all("orders") if d.get("shipmentState")
    }

    first = dispatch(resources)

    assert first.success
    received = metadata(first, erp_shipments)
    applied = metadata(first, commercetools_deliveries)
    assert received["dagster/row_count"] > 0
    assert applied["shipments_failed"] == 0
    # The seed left the latest dispatches unsynced; those are applied, the rest recognised.
    assert applied["shipments_applied"] > 0
    assert applied["shipments_unchanged"] > 0
    assert (
        applied["shipments_applied"] + applied["shipments_unchanged"]
        == (received["dagster/row_count"])
    )
    for order_id, version in shipped_before.items():
        assert world.documents.get("orders", order_id)["version"] == version  # type: ignore[index]
    evaluations = {e.check_name: e for e in first.get_asset_check_evaluations()}
    assert evaluations["failed_dispatch_updates"].passed

    versions = {d["id"]: d["version"] for d in world.documents.iter_all("orders")}
    second = dispatch(resources)

    assert metadata(second, erp_shipments)["dagster/row_count"] == 0
    assert metadata(second, commercetools_deliveries)["dagster/row_count"] == 0
    assert {d["id"]: d["version"] for d in world.documents.iter_all("orders")} == versions


def test_partial_shipment_then_the_rest_with_tracking(
    world: SandboxWorld, resources: dict[str, Any]
) -> None:
    sales_order_no, document, doc = unshipped_order(world, min_units=2)
    lines = [
        {"sku": li["variant"]["sku"], "quantity": li["quantity"]}
        for li in doc["lineItems"]
        if li.get("variant", {}).get("sku")
    ]
    first_part = [{**lines[0], "quantity": 1}]
    rest = [{**lines[0], "quantity": lines[0]["quantity"] - 1}, *lines[1:]]
    rest = [line for line in rest if line["quantity"] > 0]

    partial = ship(world, sales_order_no, document, first_part, ["TRK-A1"])
    dispatch(resources, checks=False)

    after_partial = order_doc(world, document)
    assert after_partial["shipmentState"] == "Partial"
    [delivery] = after_partial["shippingInfo"]["deliveries"]
    assert delivery["key"] == delivery_key(partial)
    assert delivery["parcels"][0]["trackingData"] == {
        "isReturn": False,
        "trackingId": "TRK-A1",
        "carrier": "DPD",
        "provider": "ERP/WMS",
    }

    final = ship(world, sales_order_no, document, rest, ["TRK-B1", "TRK-B2"])
    result = dispatch(resources)

    shipped = order_doc(world, document)
    assert shipped["shipmentState"] == "Shipped"
    assert [d["key"] for d in shipped["shippingInfo"]["deliveries"]] == [
        delivery_key(partial),
        delivery_key(final),
    ]
    assert len(shipped["shippingInfo"]["deliveries"][1]["parcels"]) == 2
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["failed_dispatch_updates"].passed


def test_version_conflicts_beyond_retry_are_queued_and_succeed_on_a_later_run(
    world: SandboxWorld, resources: dict[str, Any]
) -> None:
    sales_order_no, document, doc = unshipped_order(world)
    lines = [
        {"sku": li["variant"]["sku"], "quantity": li["quantity"]}
        for li in doc["lineItems"]
        if li.get("variant", {}).get("sku")
    ]
    number = ship(world, sales_order_no, document, lines)
    world.set_faults("commercetools", FaultConfig(rate_409=1.0))

    failed = dispatch(resources, checks=False)

    assert metadata(failed, commercetools_deliveries)["shipments_failed"] == 1
    store = resources["store"].get_store()
    [queued] = store.list_exceptions(flow=FLOW, status="open")
    assert (queued.entity_key, queued.category) == (number, "version_conflict")
    assert document in queued.reason
    assert order_doc(world, document)["shippingInfo"]["deliveries"] == []

    world.set_faults("commercetools", None)
    retried = dispatch(resources, checks=False)

    assert metadata(retried, commercetools_deliveries)["shipments_applied"] == 1
    assert order_doc(world, document)["shipmentState"] == "Shipped"
    assert store.list_exceptions(flow=FLOW, status=["open", "retrying"]) == []
    assert store.get_exception(queued.id).status == "resolved"


def test_shipment_for_an_order_cancelled_in_commercetools_is_queued(
    world: SandboxWorld, resources: dict[str, Any]
) -> None:
    sales_order_no, document, doc = unshipped_order(world)
    world.documents.update_with("orders", doc["id"], lambda d: {**d, "orderState": "Cancelled"})
    number = ship(
        world,
        sales_order_no,
        document,
        [{"sku": doc["lineItems"][0]["variant"]["sku"], "quantity": 1}],
    )

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(ASSETS, resources=resources, instance=instance)

    [queued] = resources["store"].get_store().list_exceptions(flow=FLOW, entity_key=number)
    assert queued.category == "order_cancelled"
    # The operator reads it in the run's event log too, not only on the code server's stderr.
    assert event_log_lines(
        instance,
        result.run_id,
        f"dispatch of {number} to {document} failed: order_cancelled",
        step="commercetools_deliveries",
    )
    assert f"order {document} is cancelled" in queued.reason


def test_failed_dispatch_drift_is_caught_with_the_order_named(
    world: SandboxWorld, resources: dict[str, Any]
) -> None:
    drift = world.inject_drift("failed_dispatch_update")
    [broken] = drift["details"]

    # The seed ships at least 10 minutes before "now"; the victim is any order shipped in both.
    evaluations = run_checks(resources, failed_after_minutes=5)

    check = evaluations["failed_dispatch_updates"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    values = {k: getattr(v, "value", v) for k, v in check.metadata.items()}
    assert values["failed_status_updates"] == 1
    assert values["order_numbers"] == [broken["external_document_number"]]
    assert values["oldest_age_minutes"] >= 10
    assert broken["external_document_number"] in values["orders"]
    assert broken["external_document_number"] in (check.description or "")
    assert_says_what_to_do(check.description, "failed_dispatch_updates")


def test_sensor_requests_new_shipments_once_and_skips_when_nothing_is_new(
    world: SandboxWorld, resources: dict[str, Any]
) -> None:
    sales_order_no, document, doc = unshipped_order(world)
    number = ship(
        world,
        sales_order_no,
        document,
        [{"sku": doc["lineItems"][0]["variant"]["sku"], "quantity": 1}],
    )
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        first = new_erp_shipments(context)
        assert isinstance(first, dg.SensorResult)
        [request] = first.run_requests or []
        assert request.run_key == f"dispatch-{number}-{number}-1"

        again = new_erp_shipments(
            dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor)
        )
        assert not again.run_requests
        assert isinstance(again.skip_reason, dg.SkipReason)

        dispatch(resources, checks=False)
        assert resources["store"].get_store().get_cursor(SHIPMENTS_CURSOR)
        idle = new_erp_shipments(
            dg.build_sensor_context(instance=instance, resources=resources, cursor=again.cursor)
        )
        assert not idle.run_requests
        assert idle.skip_reason is not None
        assert "no new shipments" in (idle.skip_reason.skip_message or "")


def test_shipment_without_tracking_is_dispatched_and_flagged(
    world: SandboxWorld, resources: dict[str, Any]
) -> None:
    sales_order_no, document, doc = unshipped_order(world)
    lines = [
        {"sku": li["variant"]["sku"], "quantity": li["quantity"]}
        for li in doc["lineItems"]
        if li.get("variant", {}).get("sku")
    ]
    number = ship(world, sales_order_no, document, lines, tracking=[])

    result = dispatch(resources)

    [delivery] = order_doc(world, document)["shippingInfo"]["deliveries"]
    assert delivery["parcels"][0]["trackingData"] == {
        "isReturn": False,
        "carrier": "DPD",
        "provider": "ERP/WMS",
    }
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    untracked = evaluations["deliveries_without_tracking_ids"]
    assert not untracked.passed
    assert untracked.severity == dg.AssetCheckSeverity.WARN
    values = {k: getattr(v, "value", v) for k, v in untracked.metadata.items()}
    assert values["deliveries_without_tracking"] == 1
    assert document in values["orders"] and delivery_key(number) in values["orders"]
    assert_says_what_to_do(untracked.description, "deliveries_without_tracking_ids")
    assert evaluations["failed_dispatch_updates"].passed
