"""The nightly schedule, the days-posted check and the period close on the sandbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from ct_pipelines.defs.finance.schedules import finance_nightly, finance_nightly_job
from ct_pipelines_tests.defs.finance.helpers import check_result, metadata, run_finance
from ct_pipelines_tests.defs.order_to_cash.helpers import past_day, world_for
from ct_pipelines_tests.runbook import assert_says_what_to_do
from ct_sandbox import db

LONDON = ZoneInfo("Europe/London")


def test_nightly_schedule_runs_the_previous_shop_day_once_at_two_in_london() -> None:
    assert finance_nightly.cron_schedule == "0 2 * * *"
    assert finance_nightly.execution_timezone == "Europe/London"
    assert finance_nightly.job_name == finance_nightly_job.name
    for tick, day in (
        (datetime(2026, 11, 27, 2, 0, tzinfo=LONDON), "2026-11-26"),
        # Summer: 02:00 London is 01:00 UTC, still the day after the shop day.
        (datetime(2026, 7, 16, 2, 0, tzinfo=LONDON), "2026-07-15"),
    ):
        request = finance_nightly(dg.build_schedule_context(scheduled_execution_time=tick))
        assert isinstance(request, dg.RunRequest)
        assert request.partition_key == day
        assert request.run_key == f"finance-nightly:{day}"


def test_schedule_skips_before_the_first_shop_day() -> None:
    tick = datetime(2026, 1, 1, 2, 0, tzinfo=LONDON)
    assert isinstance(
        finance_nightly(dg.build_schedule_context(scheduled_execution_time=tick)), dg.SkipReason
    )


def test_days_posted_names_days_never_built_and_journals_gone_from_the_erp(
    sandbox_dir: Path,
) -> None:
    world = world_for(sandbox_dir)
    # Days 3 and 1 before today are built, day 2 is not; day 4 is before the first day built.
    built = [past_day(world, n) for n in (1, 3)]
    for day in built:
        world.bulk_orders(2, day=day, payment_kind="paid", with_payments=True)
        run_finance(day)
    posted = run_finance(
        built[0], with_checks=True, checks={"finance_days_posted": {"lookback_days": 1}}
    )
    assert check_result(posted, "finance_days_posted").passed

    conn = db.connect(world.db_path)
    with db.transaction(conn):
        conn.execute("DELETE FROM erp_journal_batches WHERE batch_id = ?", (f"fin-{built[1]}-GBP",))
    result = run_finance(
        built[0], with_checks=True, checks={"finance_days_posted": {"lookback_days": 4}}
    )
    check = check_result(result, "finance_days_posted")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["counted_from"].value == str(built[1])
    assert check.metadata["days_checked"].value == 3
    assert check.metadata["days_not_posted"].value == 2
    gaps = check.metadata["gaps"].value
    assert f"fin-{built[1]}-GBP" in gaps and "not in the ERP" in gaps
    assert str(past_day(world, 2)) in gaps and "never built" in gaps
    # Before the first day built is not a gap: nothing was meant to be built then.
    assert str(past_day(world, 4)) not in gaps
    assert str(built[1]) in str(check.description)
    assert_says_what_to_do(check.description, "finance_days_posted")


def test_days_posted_counts_from_the_configured_start_when_one_is_set(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_for(sandbox_dir)
    built = past_day(world, 1)
    world.bulk_orders(2, day=built, payment_kind="paid", with_payments=True)
    run_finance(built)
    monkeypatch.setenv("CT_PIPELINES_ORDERS_START_DATE", str(past_day(world, 3)))
    result = run_finance(
        built, with_checks=True, checks={"finance_days_posted": {"lookback_days": 5}}
    )
    check = check_result(result, "finance_days_posted")
    assert not check.passed
    assert check.metadata["counted_from"].value == str(past_day(world, 3))
    assert check.metadata["days_not_posted"].value == 2  # days 3 and 2 before today
    assert str(past_day(world, 4)) not in check.metadata["gaps"].value


def test_a_day_not_over_is_built_but_not_posted(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    today = past_day(world, 0)
    world.bulk_orders(2, payment_kind="paid", with_payments=True)  # the last 24 hours
    journals = metadata(run_finance(today), "finance_journal_batches")
    assert journals["batches_posted"] == 0
    assert journals["batches_waiting"] >= 1


def test_period_close_rolls_up_the_week_and_month_to_date(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    last = past_day(world, 1)
    first = max(last - timedelta(days=2), last.replace(day=1))
    result = run_finance(first, last)
    close = metadata(result, "finance_period_close")
    assert close["as_of"] == last.isoformat()
    assert close["month_first_day"] == last.replace(day=1).isoformat()
    assert close["month_days_reconciled"] == (last - first).days + 1
    assert close["month_days_missing"] == (first - last.replace(day=1)).days
    assert close["month_ready_to_close"] is False
    assert close["month_variance_abs_minor_GBP"] >= 0
