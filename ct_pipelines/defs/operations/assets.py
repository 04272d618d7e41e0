"""Operations assets: failure patterns and the integration's health, for the people who run it."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd

from ct_pipelines.defs import systems
from ct_pipelines.defs.metadata import column_schema, frame_metadata, money_text
from ct_pipelines.defs.operations.instance_reads import (
    NOT_FLOWS,
    check_evaluations,
    failed_runs,
    flows_by_asset,
    last_success,
    latest_check_states,
    repository_of,
)
from ct_pipelines.defs.operations.logic import health as health_report
from ct_pipelines.defs.operations.logic import patterns as pattern_report
from ct_pipelines.defs.operations.logic.exceptions import QUEUE_COLUMNS, order_amounts, queue_rows
from ct_pipelines.defs.resources import IntegrationStoreResource
from ct_pipelines.kernel.money import display_money
from ct_pipelines.kernel.shop import SHOP

GROUP = "operations"
PATTERNS_SNAPSHOT = "failure_patterns"


class FailurePatternsConfig(dg.Config):
    window_days: int = 14
    # A value needs at least this many failures to count as a pattern.
    min_failures: int = 3


# What the overview and the patterns summarise: each flow's writes and the assets its checks judge.
SUMMARISED = [
    "order_batches",
    "erp_sales_orders",
    "inventory_sync",
    "inventory_snapshots",
    "commercetools_products",
    "commercetools_deliveries",
    "finance_journal_batches",
    "finance_reconciliation",
]


@dg.asset(
    group_name=GROUP,
    kinds={"python"},
    description="Exceptions and failed checks grouped by flow, category, SKU, channel, hour of "
    "the day and day, ranked by how far each stands out from an even spread, with 7-day trends.",
    deps=SUMMARISED,
    owners=[systems.ECOMMERCE_OPS],
)
def failure_patterns(
    context: dg.AssetExecutionContext,
    config: FailurePatternsConfig,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    now = datetime.now(UTC)
    since = now - timedelta(days=config.window_days)
    flows = flows_by_asset(repository_of(context).asset_graph)
    checks = []
    for evaluation in check_evaluations(context.instance, since=since, limit=10_000):
        if evaluation.passed:
            continue
        skus, channels = pattern_report.check_subjects(evaluation.metadata)
        checks.append(
            pattern_report.CheckFailure(
                at=evaluation.at,
                flow=flows.get(dg.AssetKey.from_user_string(evaluation.asset), "default"),
                asset=evaluation.asset,
                check=evaluation.check,
                severity=evaluation.severity,
                skus=skus,
                channels=channels,
            )
        )
    report = pattern_report.failure_patterns(
        integration_store.list_exceptions(),
        checks,
        now=now,
        tz=SHOP.tz,
        window_days=config.window_days,
        min_failures=config.min_failures,
    )
    integration_store.write_snapshot(PATTERNS_SNAPSHOT, report.patterns, taken_at=now)
    metadata = frame_metadata(report.patterns.drop(columns=["example"]))
    metadata.update(
        {
            "overview": dg.MetadataValue.md(
                f"Read when this asset ran ({now.isoformat(timespec='minutes')}), over the last "
                f"{config.window_days} days; materialise it again for newer failures.\n\n"
                + report.markdown()
            ),
            "read_at": dg.MetadataValue.timestamp(now),
            "failures_in_window": report.failures,
            "failed_check_evaluations": len(checks),
            "patterns_found": len(report.patterns),
            **{
                f"top_{dimension}": report.top(dimension) or "none"
                for dimension in ("sku", "channel", "hour_of_day", "category", "flow")
            },
            "failures_per_day": dg.MetadataValue.json(
                {
                    str(day): {str(flow): int(n) for flow, n in row.items()}
                    for day, row in report.daily.iterrows()
                }
            ),
        }
    )
    context.log.info("failure patterns: %s", report.headline[:3] or "none")
    return dg.MaterializeResult(metadata=metadata)


HEALTH_COLUMN_DESCRIPTIONS = {
    "flow": "asset group",
    "status": "ok, attention, action needed or never run (see docs/runbook.md)",
    "last_success": "the flow's latest successful materialisation, as read at run time",
    "hours_since_success": "how old that success was when this asset ran",
    "open_exceptions": "open and retrying exceptions of the flow",
    "oldest_open_hours": "age of the flow's oldest unresolved exception",
    "failing_checks": "checks whose latest evaluation failed",
}


class IntegrationHealthConfig(dg.Config):
    # Hours without a success before a flow counts as late (its cadence plus slack).
    expected_every_hours: dict[str, float] = {
        "order_to_cash": 26.0,
        "dispatch": 6.0,
        "inventory": 26.0,
        "product_master": 26.0,
    }
    default_expected_every_hours: float = 26.0
    # Order amounts (the money the open exceptions hold up) from this many recent shop days.
    amount_lookback_days: int = 14


@dg.asset(
    group_name=GROUP,
    kinds={"python"},
    description="One overview of every flow: last success, backlog, open exceptions by age, "
    "failing checks with their drift counts and failed runs, with a status per flow.",
    deps=SUMMARISED,
    owners=[systems.ECOMMERCE_OPS],
)
def integration_health(
    context: dg.AssetExecutionContext,
    config: IntegrationHealthConfig,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    now = datetime.now(UTC)
    repository = repository_of(context)
    assets_by_flow: dict[str, list[dg.AssetKey]] = {}
    for key, flow in flows_by_asset(repository.asset_graph).items():
        if flow not in NOT_FLOWS:
            assets_by_flow.setdefault(flow, []).append(key)
    facts = [
        health_report.FlowFacts(
            flow=flow,
            last_success=last_success(context.instance, keys),
            backlog_pending=len(integration_store.ledger.list(flow, "pending")),
            backlog_failed=len(integration_store.ledger.list(flow, "failed")),
            expected_every_hours=config.expected_every_hours.get(
                flow, config.default_expected_every_hours
            ),
        )
        for flow, keys in sorted(assets_by_flow.items())
    ]
    checks = [
        c
        for c in latest_check_states(context.instance, repository.asset_graph)
        if c.flow not in NOT_FLOWS
    ]
    unresolved = integration_store.list_exceptions(status=["open", "retrying"])
    report = health_report.integration_health(
        facts,
        checks,
        unresolved,
        failed_runs(context.instance, repository, now - timedelta(hours=24)),
        now=now,
    )
    # What the open exceptions hold up, in money: the gross of the orders among them.
    amounts = order_amounts(integration_store, now, config.amount_lookback_days)
    at_stake: dict[str, int] = {}
    for record in unresolved:
        money = amounts.get(record.entity_key)
        if money:
            at_stake[money[1]] = at_stake.get(money[1], 0) + money[0]
    statuses = report.flows.set_index("flow")["status"].to_dict()
    ages = [c.at for c in checks if c.at is not None]
    return dg.MaterializeResult(
        metadata={
            **frame_metadata(report.flows, descriptions=HEALTH_COLUMN_DESCRIPTIONS),
            "overview": dg.MetadataValue.md(report.markdown()),
            "read_at": dg.MetadataValue.timestamp(now),
            "oldest_check_result_hours": round((now - min(ages)).total_seconds() / 3600, 1)
            if ages
            else 0.0,
            "flows_never_run": sum(1 for s in statuses.values() if s == "never run"),
            "flows_needing_action": sum(1 for s in statuses.values() if s == "action needed"),
            "flows_needing_attention": sum(1 for s in statuses.values() if s == "attention"),
            "open_exceptions": int(report.flows["open_exceptions"].sum()),
            "amount_at_stake": money_text(at_stake),
            "amount_at_stake_minor": dg.MetadataValue.json(at_stake),
            "failing_checks": sum(1 for c in checks if c.passed is False),
            "failed_runs_24h": len({r.run_id for r in report.failed_runs}),
            "status_by_flow": dg.MetadataValue.json(statuses),
        }
    )


class ExceptionQueueViewConfig(dg.Config):
    # Resolved exceptions stay in the table this long, so a fix can be seen to have worked.
    resolved_within_days: int = 7
    # Order amounts are looked up in the order batches of this many recent shop days.
    amount_lookback_days: int = 14
    max_rows: int = 500


@dg.asset(
    group_name=GROUP,
    owners=[systems.ECOMMERCE_OPS],
    kinds={"python"},
    description="The exception queue as a table: open, retrying and recently resolved "
    "exceptions with reason, age, order or SKU, the amount at stake and how to retry or resolve "
    "each (retry_exceptions_job / resolve_exceptions_job, or the ct-pipelines command).",
)
def exception_queue(
    context: dg.AssetExecutionContext,
    config: ExceptionQueueViewConfig,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    now = datetime.now(UTC)
    since = now - timedelta(days=config.resolved_within_days)
    records = integration_store.list_exceptions(status=["open", "retrying"]) + [
        r
        for r in integration_store.list_exceptions(status="resolved")
        if r.resolved_at is not None and r.resolved_at >= since
    ]
    records.sort(key=lambda r: (r.status == "resolved", r.created_at))
    amounts = order_amounts(integration_store, now, config.amount_lookback_days)
    rows = queue_rows(records, now, amounts=amounts, display=display_money)
    frame = pd.DataFrame(rows, columns=list(QUEUE_COLUMNS))
    frame["amount_minor"] = frame["amount_minor"].astype("Int64")
    schema = column_schema(frame, QUEUE_COLUMNS)
    unresolved = frame[frame["status"] != "resolved"]
    at_stake: dict[str, int] = {}
    for row in rows:
        money = amounts.get(str(row["entity"]))
        if money and row["status"] != "resolved":
            at_stake[money[1]] = at_stake.get(money[1], 0) + money[0]
    metadata = frame_metadata(
        frame[["id", "flow", "status", "category", "entity", "amount", "age", "reason"]],
        descriptions=QUEUE_COLUMNS,
        preview_rows=20,
    )
    metadata.update(
        {
            "dagster/column_schema": schema,
            "queue": dg.MetadataValue.table(
                records=[dg.TableRecord(row) for row in rows[: config.max_rows]], schema=schema
            ),
            "open": int((frame["status"] == "open").sum()),
            "retrying": int((frame["status"] == "retrying").sum()),
            "resolved_recently": int((frame["status"] == "resolved").sum()),
            "open_by_category": dg.MetadataValue.json(
                {str(k): int(v) for k, v in unresolved["category"].value_counts().items()}
            ),
            "amount_at_stake_minor": dg.MetadataValue.json(at_stake),
            "amount_at_stake": money_text(at_stake),
            "how_to": dg.MetadataValue.md(
                "Retry every open exception of a category: launch **retry_exceptions_job** "
                "(config `category`, optionally `flow`). Close fixed ones: "
                "**resolve_exceptions_job** (`ids` or `category`, and a `note`). "
                "See docs/runbook.md, *The exception queue*."
            ),
        }
    )
    context.log.info(
        "exception queue: %d open, %d retrying, %d resolved in the last %d days",
        metadata["open"],
        metadata["retrying"],
        metadata["resolved_recently"],
        config.resolved_within_days,
    )
    return dg.MaterializeResult(metadata=metadata)
