from datetime import UTC, datetime, timedelta

from ct_pipelines.defs.operations.logic.health import (
    CheckState,
    FailedRun,
    FlowFacts,
    integration_health,
)
from ct_pipelines.store import IntegrationStore

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_each_flow_gets_a_status_backlog_ages_and_drift(store: IntegrationStore) -> None:
    for n in range(3):
        store.record_exception(
            flow="dispatch", entity_key=f"SH{n}", category="version_conflict", reason="409"
        )
    store.mark_retrying([1], "ops")
    created = store.get_exception(2).created_at
    now = created + timedelta(hours=30)
    facts = [
        FlowFacts("order_to_cash", now - timedelta(hours=1), backlog_pending=2),
        FlowFacts("dispatch", now - timedelta(hours=1)),
        FlowFacts("inventory", now - timedelta(hours=2)),
        FlowFacts("product_master", None),
        FlowFacts("finance", now - timedelta(hours=40)),
    ]
    checks = [
        CheckState(
            "order_to_cash",
            "erp_sales_orders",
            "orphaned_orders",
            False,
            "ERROR",
            now,
            {"eligible_orders_checked": 40, "orphaned_orders": 4},
        ),
        CheckState(
            "inventory",
            "inventory_snapshots",
            "inventory_drift",
            False,
            "WARN",
            now,
            {"compared_entries": 900, "drifted_entries": 7},
        ),
        CheckState("inventory", "inventory_snapshots", "inventory_unmapped", True, "ERROR", now),
        CheckState("product_master", "commercetools_products", "sku_parity", None, None, None),
    ]
    report = integration_health(
        facts,
        checks,
        store.list_exceptions(status=["open", "retrying"]),
        [FailedRun("order_to_cash", "order_export_job", "run-1", now)],
        now=now,
    )
    flows = report.flows.set_index("flow")
    assert report.status_of("order_to_cash") == "action needed"
    assert flows.loc["order_to_cash", "drift_count"] == 4
    assert flows.loc["order_to_cash", "backlog_pending"] == 2
    # Open for more than a day.
    assert report.status_of("dispatch") == "action needed"
    assert flows.loc["dispatch", "open_1d_to_7d"] == 2 and flows.loc["dispatch", "retrying"] == 1
    assert report.status_of("inventory") == "attention"
    assert flows.loc["inventory", "drift_count"] == 7
    assert report.status_of("product_master") == "never run"
    assert report.status_of("finance") == "attention"  # late
    markdown = report.markdown()
    assert "orphaned_orders" in markdown and "Never evaluated: `sku_parity`" in markdown
    assert "order_export_job" in markdown


def test_quiet_flows_are_ok() -> None:
    report = integration_health(
        [FlowFacts("dispatch", NOW - timedelta(minutes=5), expected_every_hours=6)],
        [
            CheckState(
                "dispatch",
                "commercetools_deliveries",
                "failed_dispatch_updates",
                True,
                "ERROR",
                NOW,
            )
        ],
        [],
        [],
        now=NOW,
    )
    assert report.status_of("dispatch") == "ok"
