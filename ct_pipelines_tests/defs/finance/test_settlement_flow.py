"""The settlement asset and its check against the sandbox's payment provider file."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.defs.finance.assets import (
    finance_payment_settlement,
    finance_payment_transactions,
)
from ct_pipelines.defs.finance.checks import finance_settlement_matched
from ct_pipelines.defs.finance.resources import SettlementFilesResource
from ct_pipelines.defs.resources import build_resources
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines.store import IntegrationStore
from ct_pipelines_tests.defs.finance.helpers import check_result
from ct_pipelines_tests.defs.order_to_cash.helpers import past_day, world_for
from ct_sandbox import settlements
from ct_sandbox.world import SETTLEMENT_FAULTS_META

ASSETS = [finance_payment_transactions, finance_payment_settlement, finance_settlement_matched]


def _run(
    first: str,
    last: str,
    resources: dict[str, Any] | None = None,
    lookback: int = 7,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        resources={**build_resources(), **(resources or {})},
        run_config={
            "ops": {
                "finance_payment_settlement_finance_settlement_matched": {
                    "config": {"lookback_days": lookback}
                }
            }
        },
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        instance=instance,
    )


def _store() -> IntegrationStore:
    return IntegrationStore(os.environ["CT_PIPELINES_DB_URL"])


def _planted(world: Any) -> dict[str, tuple[str, str]]:
    """kind -> (shop day, order number) of each planted settlement fault."""
    faults = json.loads(world._meta(SETTLEMENT_FAULTS_META))
    found = {}
    for payment in world.documents.iter_all("payments"):
        for tx in payment["transactions"]:
            for kind, tx_id in faults.items():
                if tx["id"] == tx_id:
                    at = datetime.fromisoformat(tx["timestamp"].replace("Z", "+00:00"))
                    found[kind] = (at.astimezone(SHOP.tz).date().isoformat(), tx_id)
    return found


def test_the_planted_settlement_faults_fail_the_check_with_their_orders_and_amounts(
    sandbox_dir: Path,
) -> None:
    world = world_for(sandbox_dir)
    planted = _planted(world)
    assert set(planted) == {settlements.MISSING_CHARGE, settlements.AMOUNT_MISMATCH}
    first, last = past_day(world, 6).isoformat(), past_day(world, 1).isoformat()
    result = _run(first, last)
    assert result.success

    items = _store().read_snapshot(
        "finance_payment_settlement", partition_key=planted[settlements.MISSING_CHARGE][0]
    )
    assert "matched" in set(items["status"])
    evaluation = check_result(result, "finance_settlement_matched")
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert (meta["missing_in_settlement"], meta["amount_differs"]) == (1, 1)
    assert meta["not_in_commercetools"] == 0
    assert meta["matched"] > 50
    table = meta["not_matched"]
    for kind in (settlements.MISSING_CHARGE, settlements.AMOUNT_MISMATCH):
        subjects = next(
            f["subjects"] for f in world.planted_findings() if f["kind"] == f"settlement_{kind}"
        )
        assert all(str(s) in table for s in subjects), (kind, subjects, table)
    missing_tx = planted[settlements.MISSING_CHARGE][1]
    every = [
        _store().read_snapshot("finance_payment_settlement", partition_key=day)
        for day in sorted({d for d, _ in planted.values()})
    ]
    rows = {
        r["transaction_id"]: r
        for frame in every
        for r in frame.to_dict("records")
        if r["transaction_id"]
    }
    short = rows[planted[settlements.AMOUNT_MISMATCH][1]]
    assert short["status"] == "amount_differs"
    assert int(short["difference_minor"]) == -settlements.SHORT_BY_MINOR
    missing = rows[missing_tx]
    assert missing["status"] == "missing_in_settlement"
    assert int(missing["difference_minor"]) == -int(missing["commercetools_minor"])
    assert meta["not_matched_abs_minor_GBP"] == settlements.SHORT_BY_MINOR + int(
        missing["commercetools_minor"]
    )
    assert meta["fees_minor_GBP"] > 0 and meta["fees_GBP"].startswith("GBP ")
    assert "UK-" in evaluation.description or "missing from it" in evaluation.description

    # Each day's materialisation carries its own numbers, schema and preview.
    day_event = next(
        e
        for e in result.asset_materializations_for_node("finance_payment_settlement")
        if e.partition == planted[settlements.AMOUNT_MISMATCH][0]
    )
    assert {"dagster/row_count", "dagster/column_schema", "preview", "payouts"} <= set(
        day_event.metadata
    )
    assert day_event.metadata["amount_differs"].value >= 1


def test_a_clean_day_matches_and_a_bad_row_is_queued_while_the_rest_is_read(
    sandbox_dir: Path,
) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 10)
    world.bulk_orders(20, day=day, payment_kind="paid", with_payments=True, seed=11)
    path = world.write_settlement_report()
    broken = path.parent / "broken.csv"
    header = path.read_text().splitlines()[0]
    broken.write_text(
        header
        + "\ntxn_bad,2026-01-01 10:00:00,2026-01-03 00:00:00,gbp,1.005,0,1.005,charge,,,,,,\n"
    )
    result = _run(day.isoformat(), day.isoformat(), lookback=10)
    evaluation = check_result(result, "finance_settlement_matched")
    assert evaluation.passed, evaluation.metadata
    items = _store().read_snapshot("finance_payment_settlement", partition_key=day.isoformat())
    expected = {
        tx["id"]
        for p in world.documents.iter_all("payments")
        if p["paymentMethodInfo"]["paymentInterface"] == "stripe"
        for tx in p["transactions"]
        if tx["type"] in ("Charge", "Refund", "Chargeback")
        and tx["state"] == "Success"
        and datetime.fromisoformat(tx["timestamp"].replace("Z", "+00:00"))
        .astimezone(SHOP.tz)
        .date()
        == day
    }
    assert expected and set(items["transaction_id"]) == expected
    assert set(items["status"]) == {"matched"}
    [exception] = _store().list_exceptions(category="unreadable_settlement_row")
    assert "broken.csv line 2" in exception.reason and "3 fraction digits" in exception.reason
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("finance_payment_settlement")[
            -1
        ].metadata.items()
    }
    assert meta["bad_rows"] == 1 and meta["files_read"] == ["broken.csv", path.name]


def test_not_configured_skips_the_asset_and_its_check_with_the_reason(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 2).isoformat()
    instance = dg.DagsterInstance.ephemeral()
    result = _run(
        day, day, resources={"settlement_files": SettlementFilesResource()}, instance=instance
    )
    assert result.success
    assert result.asset_materializations_for_node("finance_payment_settlement") == []
    assert result.get_asset_check_evaluations() == []
    logs = " ".join(e.user_message for e in instance.all_logs(result.run_id))
    assert "no settlement file is configured: set CT_PIPELINES_SETTLEMENT_DIR" in logs

    # Run on its own, the check says it compared nothing: a warning, not a pass.
    alone = dg.materialize(
        [finance_payment_settlement, finance_settlement_matched],
        resources={**build_resources(), "settlement_files": SettlementFilesResource()},
        selection=dg.AssetSelection.checks(finance_settlement_matched),
    )
    [evaluation] = alone.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description.startswith("not checked: no settlement file is configured")


def test_a_relative_directory_is_read_under_dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    where = SettlementFilesResource(directory="psp").location()
    assert where.directory == tmp_path / "psp"
    assert SettlementFilesResource(directory=str(tmp_path / "abs")).location().directory == (
        tmp_path / "abs"
    )
    assert SettlementFilesResource().location().directory is None
