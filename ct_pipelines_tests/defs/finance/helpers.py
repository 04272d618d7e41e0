"""Shared set-up for the finance tests: materialise shop days, read what the ERP holds."""

from __future__ import annotations

from datetime import date
from typing import Any

import dagster as dg

from ct_pipelines.defs.finance.assets import (
    finance_journal_batches,
    finance_order_totals,
    finance_payment_transactions,
    finance_period_close,
    finance_reconciliation,
    finance_vat_summary,
)
from ct_pipelines.defs.finance.checks import (
    finance_days_posted,
    finance_tax_rounding_patterns,
    finance_zero_variance,
)
from ct_pipelines.defs.resources import build_resources
from ct_sandbox import db
from ct_sandbox.faults import request_log

FINANCE_ASSETS = [
    finance_order_totals,
    finance_payment_transactions,
    finance_journal_batches,
    finance_reconciliation,
    finance_period_close,
    finance_vat_summary,
]
FINANCE_CHECKS = [finance_zero_variance, finance_days_posted, finance_tax_rounding_patterns]
# A check's op is named after its asset and itself.
CHECK_OPS = {
    "finance_zero_variance": "finance_reconciliation_finance_zero_variance",
    "finance_days_posted": "finance_journal_batches_finance_days_posted",
    "finance_tax_rounding_patterns": "finance_reconciliation_finance_tax_rounding_patterns",
}


def _run_config(config: dict[str, Any] | None, checks: dict[str, Any] | None) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for asset in ("finance_order_totals", "finance_journal_batches", "finance_reconciliation"):
        ops[asset] = {"config": dict(config or {})}
    for name, values in (checks or {}).items():
        ops[CHECK_OPS[name]] = {"config": values}
    return {"ops": ops}


def run_finance(
    first: date | str,
    last: date | str | None = None,
    *,
    config: dict[str, Any] | None = None,
    checks: dict[str, Any] | None = None,
    with_checks: bool = False,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """One run over a shop day, or over a range of days as a single-run backfill does."""
    check_config = checks if with_checks else None
    if last is None:
        return dg.materialize(
            [*FINANCE_ASSETS, *(FINANCE_CHECKS if with_checks else [])],
            partition_key=str(first),
            resources=build_resources(),
            run_config=_run_config(config, check_config),
            instance=instance,
        )
    return dg.materialize(
        [*FINANCE_ASSETS, *(FINANCE_CHECKS if with_checks else [])],
        resources=build_resources(),
        run_config=_run_config(config, check_config),
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": str(first),
            "dagster/asset_partition_range_end": str(last),
        },
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = result.asset_materializations_for_node(asset)
    assert events, f"{asset} did not materialise"
    return {k: v.value for k, v in events[-1].metadata.items()}


def check_result(result: dg.ExecuteInProcessResult, name: str) -> Any:
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    assert evaluations, f"check {name} did not run"
    return evaluations[-1]


def journal_rows(world: Any) -> dict[str, int]:
    """batch id -> line count of every journal batch the ERP holds."""
    conn = db.connect(world.db_path)
    return {
        batch_id: lines
        for batch_id, lines in conn.execute(
            "SELECT batch_id, line_count FROM erp_journal_batches ORDER BY batch_id"
        )
    }


def journal_creates(world: Any) -> int:
    """How many times the ERP answered 201 Created to a journal POST."""
    return sum(
        1
        for record in request_log(world.db_path, "erp")
        if record.method == "POST"
        and record.path.endswith("/journal-batches")
        and record.status == 201
    )
