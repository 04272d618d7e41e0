"""The sandbox payment provider's settlement file: Stripe's itemized balance report."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ct_sandbox import SandboxWorld, settlements
from ct_sandbox.world import SETTLEMENT_FAULTS_META


@pytest.fixture
def world(sandbox_dir: Path) -> Iterator[SandboxWorld]:
    world = SandboxWorld.open(sandbox_dir)
    yield world
    world.close()


def _rows(world: SandboxWorld) -> list[dict[str, str]]:
    path = world.settlement_dir() / settlements.REPORT_NAME
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _stripe(world: SandboxWorld) -> dict[str, tuple[dict, dict]]:
    """transaction id -> (payment, transaction) of every Stripe payment."""
    return {
        tx["id"]: (payment, tx)
        for payment in world.documents.iter_all("payments")
        if payment["paymentMethodInfo"]["paymentInterface"] == "stripe"
        for tx in payment["transactions"]
    }


def test_the_report_holds_every_settled_stripe_transaction_of_the_days_that_are_over(
    world: SandboxWorld,
) -> None:
    rows = _rows(world)
    assert list(rows[0]) == settlements.COLUMNS
    until = settlements.day_start(world.now(), world.tz)
    faults = json.loads(world._meta(SETTLEMENT_FAULTS_META) or "{}")
    expected = {
        tx_id
        for tx_id, (_, tx) in _stripe(world).items()
        if tx["type"] in settlements.CATEGORIES
        and tx["state"] == "Success"
        and datetime.fromisoformat(tx["timestamp"].replace("Z", "+00:00")) < until
        and tx_id != faults[settlements.MISSING_CHARGE]
    }
    sources = {row["source_id"] for row in rows}
    reported = {
        tx_id for tx_id, (_, tx) in _stripe(world).items() if tx["interactionId"] in sources
    }
    assert reported == expected and len(rows) == len(expected)
    categories = {row["reporting_category"] for row in rows}
    assert categories <= {"charge", "refund", "dispute"} and "charge" in categories
    for row in rows:
        gross, fee, net = (Decimal(row[name]) for name in ("gross", "fee", "net"))
        assert gross - fee == net
        assert row["currency"] in {"gbp", "eur"}
        assert (gross < 0) == (row["reporting_category"] != "charge")
        assert datetime.fromisoformat(row["created_utc"]).replace(tzinfo=UTC) < until
        assert row["payment_intent_id"].startswith("st_")
        assert row["automatic_payout_id"].startswith("po_")


def test_planted_faults_one_charge_missing_one_settled_short(world: SandboxWorld) -> None:
    faults = json.loads(world._meta(SETTLEMENT_FAULTS_META))
    stripe = _stripe(world)
    by_source = {row["source_id"]: row for row in _rows(world)}
    missing_payment, missing = stripe[faults[settlements.MISSING_CHARGE]]
    assert missing["interactionId"] not in by_source
    _, short = stripe[faults[settlements.AMOUNT_MISMATCH]]
    row = by_source[short["interactionId"]]
    assert Decimal(row["gross"]) * 100 == short["amount"]["centAmount"] - settlements.SHORT_BY_MINOR
    kinds = {f["kind"]: f["subjects"] for f in world.planted_findings()}
    assert kinds["settlement_missing_charge"][1] == missing["id"]
    assert kinds["settlement_amount_mismatch"][1] == short["id"]
    # Both on shop days that are over, so the settlement check reads them.
    until = settlements.day_start(world.now(), world.tz)
    for tx in (missing, short):
        assert datetime.fromisoformat(tx["timestamp"].replace("Z", "+00:00")) < until
    assert missing_payment["id"] != row["payment_metadata[commercetools_payment_id]"]


def test_advancing_trade_rewrites_the_report_and_a_clean_world_plants_nothing(
    tmp_path: Path,
) -> None:
    clean = SandboxWorld.open(tmp_path / "clean", orders=60, planted=False)
    try:
        assert json.loads(clean._meta(SETTLEMENT_FAULTS_META) or "{}") == {}
        assert not any(f["kind"].startswith("settlement_") for f in clean.planted_findings())
        before = _rows(clean)
        (clean.settlement_dir() / settlements.REPORT_NAME).unlink()
        clean.advance(30)
        assert len(_rows(clean)) >= len(before)
    finally:
        clean.close()


def test_fees_are_stripe_like() -> None:
    assert settlements.fee_minor("charge", 1000, 2) == 35  # 1.5 % + 20
    assert settlements.fee_minor("dispute", 1000, 2) == 1500
    assert settlements.fee_minor("dispute", 1000, 3) == 15000
    assert settlements.fee_minor("refund", 1000, 2) == 0
