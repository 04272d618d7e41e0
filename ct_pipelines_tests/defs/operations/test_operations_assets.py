"""failure_patterns and integration_health as Dagster assets, over the store and the instance."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.defs.operations.assets import failure_patterns, integration_health
from ct_pipelines.defs.resources import IntegrationStoreResource


@dg.asset(
    name="erp_sales_orders",
    group_name="order_to_cash",
    check_specs=[dg.AssetCheckSpec("totals_parity", asset="erp_sales_orders")],
)
def sales_orders_with_a_failing_check():
    yield dg.Output(None)
    yield dg.AssetCheckResult(
        check_name="totals_parity",
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"orders_blocked": 6, "skus": {"LMP-BRASS-E27": 6}},
    )


@dg.asset(group_name="dispatch")
def commercetools_deliveries() -> None:
    return None


@pytest.fixture
def store_resource(tmp_path: Path) -> Iterator[IntegrationStoreResource]:
    resource = IntegrationStoreResource(db_url=f"sqlite:///{tmp_path / 'ops.db'}")
    store = resource.get_store()
    for n in range(8):
        store.record_exception(
            flow="order_to_cash",
            entity_key=f"UK-{n}",
            category="unknown_sku",
            reason="SKU LMP-BRASS-E27 is not an ERP item",
            sku="LMP-BRASS-E27",
            channel="store-london",
        )
    for n in range(4):
        store.record_exception(
            flow="dispatch",
            entity_key=f"SH{n}",
            category="version_conflict",
            reason="409",
            sku=f"SKU-{n}",
            channel=f"web-{n}",
        )
    # UK-0 and UK-1 are orders of today's batch: the money the open exceptions hold up.
    from datetime import UTC, datetime

    import pandas as pd

    from ct_pipelines.defs.order_to_cash.logic.batch import batch_frame
    from ct_pipelines.kernel.shop import SHOP

    today = datetime.now(UTC).astimezone(SHOP.tz).date().isoformat()
    orders = pd.DataFrame(
        [
            {"external_document_number": "UK-0", "gross_minor": 1270282, "currency": "GBP"},
            {"external_document_number": "UK-1", "gross_minor": 1000, "currency": "GBP"},
        ]
    )
    store.write_snapshot(
        "order_batches",
        pd.concat([batch_frame([]), orders], ignore_index=True),
        partition_key=today,
        taken_at=datetime.now(UTC),
    )
    yield resource


def metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, Any]:
    [event] = result.asset_materializations_for_node(name)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_patterns_and_health_over_exceptions_and_failed_checks(
    store_resource: IntegrationStoreResource,
) -> None:
    everything = [sales_orders_with_a_failing_check, commercetools_deliveries]
    with dg.instance_for_test() as instance:
        dg.materialize(everything, instance=instance)
        result = dg.materialize(
            [*everything, failure_patterns, integration_health],
            selection=[failure_patterns, integration_health],
            instance=instance,
            resources={"store": store_resource},
        )

    patterns = metadata(result, "failure_patterns")
    assert patterns["top_sku"] == "LMP-BRASS-E27"
    assert patterns["top_channel"] == "store-london"
    assert patterns["failed_check_evaluations"] == 1
    assert patterns["failures_in_window"] == 13
    assert "LMP-BRASS-E27" in patterns["overview"]
    assert store_resource.get_store().read_snapshot("failure_patterns").iloc[0]["value"] == (
        "LMP-BRASS-E27"
    )

    # In-process runs see the project's own flows, assets and checks.
    health = metadata(result, "integration_health")
    statuses = health["status_by_flow"]
    assert {"order_to_cash", "dispatch", "inventory", "product_master"} <= set(statuses)
    assert statuses["order_to_cash"] == "action needed"  # a failing ERROR check
    assert statuses["dispatch"] == "attention"  # open exceptions, recent success
    assert statuses["product_master"] == "never run"
    assert health["open_exceptions"] == 12 and health["failing_checks"] == 1
    assert health["amount_at_stake"] == "GBP 12,712.82"
    assert health["amount_at_stake_minor"] == {"GBP": 1271282}
    overview = health["overview"]
    assert "| totals_parity" in overview and "FAILED (ERROR)" in overview
    assert "Never evaluated:" in overview and "`orphaned_orders`" in overview
