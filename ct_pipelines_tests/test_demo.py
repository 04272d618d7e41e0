"""`make demo`: the summary names every planted finding and the checks that report it; with
--clean the same shop has none and every check passes."""

import io
import shutil
from pathlib import Path

import pytest

from ct_pipelines.demo import CheckRow, explain, run_demo

ROOT = Path(__file__).resolve().parent.parent


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name in ("CT_PIPELINES_SANDBOX_DIR", "CT_PIPELINES_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    # run_demo sets these in os.environ; set here, they are undone after the test, so later
    # tests do not run in sandbox mode (the partial-credentials tests would not raise).
    monkeypatch.setenv("CT_PIPELINES_MODE", "sandbox")
    monkeypatch.setenv("CT_PIPELINES_SANDBOX_CLEAN", "0")
    return home


def test_a_failing_check_is_explained_only_by_a_planted_subject_it_names() -> None:
    planted = [{"kind": "long_order_number", "subjects": ["MARKETPLACE-1"], "what": "long"}]
    rows = [
        CheckRow("erp_sales_orders", "orphaned_orders", False, "ERROR", "| MARKETPLACE-1 |"),
        CheckRow("inventory_snapshots", "inventory_drift", False, "ERROR", "| TSH-WHITE-S |"),
        CheckRow("order_batches", "tax_rounding", True, "ERROR", ""),
    ]
    explained, unexplained = explain(rows, planted)
    assert [(r.name, [c["kind"] for c in causes]) for r, causes in explained] == [
        ("orphaned_orders", ["long_order_number"])
    ]
    assert [r.name for r in unexplained] == ["inventory_drift"]


@pytest.mark.slow
def test_the_demo_names_every_planted_finding_and_the_checks_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _home(tmp_path, monkeypatch)
    out = io.StringIO()
    assert run_demo(out) == 0, out.getvalue()
    text = out.getvalue()
    assert "NOT PLANTED" not in text
    # The 41-character marketplace order number and the order without tax are the planted
    # findings behind both errors, whatever the hour the sandbox was seeded.
    assert "MARKETPLACE-AMAZON-UK-206-4837261-5519034" in text
    assert "41-character order number" in text
    for check in (
        "erp_sales_orders.orphaned_orders",
        "finance_reconciliation.finance_zero_variance",
    ):
        assert f"ERROR {check}: planted (long_order_number, order_without_taxed_price)" in text
    assert "finance_days_posted" not in text  # no false alarm for days before the demo
    for kind in ("without an order number", "no taxedPrice", "blocked in the ERP"):
        assert kind in text
    assert text.count("in production:") >= 4
    # The settlement file's two planted faults, and nothing else unmatched.
    assert (
        "ERROR finance_payment_settlement.finance_settlement_matched: planted "
        "(settlement_missing_charge, settlement_amount_mismatch)" in text
    )
    assert "1 missing from it, 0 not in commercetools, 1 with another amount; fees GBP " in text


@pytest.mark.slow
def test_a_clean_demo_passes_every_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _home(tmp_path, monkeypatch)
    out = io.StringIO()
    assert run_demo(out, clean=True) == 0, out.getvalue()
    text = out.getvalue()
    assert "(0 not passing)" in text and "every check passed" in text
    assert "planted findings                     : none (--clean)" in text
    assert "0 missing from it, 0 not in commercetools, 0 with another amount" in text
    # The same home cannot then show the planted findings: it asks for a fresh one.
    again = io.StringIO()
    assert run_demo(again) == 2
    assert "fresh DAGSTER_HOME" in again.getvalue()
