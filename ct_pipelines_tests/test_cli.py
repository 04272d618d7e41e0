"""The `ct-pipelines` command line: the exception queue, and the sandbox commands still work."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ct_pipelines.cli import main
from ct_pipelines.store import IntegrationStore


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[IntegrationStore]:
    monkeypatch.setenv("CT_PIPELINES_DB_URL", f"sqlite:///{tmp_path / 'cli_store.db'}")
    monkeypatch.setenv("CT_PIPELINES_ACTOR", "ops.alice")
    integration_store = IntegrationStore.from_env()
    integration_store.migrate()
    for number, sku in (("UK-1", "MUG-BLUE"), ("UK-2", "MUG-BLUE"), ("UK-3", "LAMP")):
        integration_store.record_exception(
            flow="order_to_cash",
            entity_key=number,
            category="unknown_sku",
            reason=f"SKU {sku} is not an ERP item",
            sku=sku,
        )
    integration_store.record_exception(
        flow="dispatch", entity_key="SH1", category="version_conflict", reason="409 x5"
    )
    yield integration_store
    integration_store.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_filters_and_json(store: IntegrationStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "exceptions", "list", "--sku", "MUG-BLUE", "--json")
    assert code == 0
    assert [row["entity"] for row in json.loads(out)] == ["UK-1", "UK-2"]

    code, out, _ = run(capsys, "exceptions", "list", "--flow", "dispatch")
    assert code == 0 and "SH1" in out and "UK-1" not in out


def test_retry_by_id_and_by_filter_is_audited(
    store: IntegrationStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "exceptions", "retry", "4", "--actor", "ops.bob")
    assert code == 0
    assert "dispatch: 1 flagged for retry (#4)" in out and "dispatch_job" in out

    code, out, _ = run(capsys, "exceptions", "retry", "--sku", "MUG-BLUE")
    assert code == 0 and "order_to_cash: 2 flagged for retry (#1, #2)" in out
    assert "order_export_job" in out

    assert store.get_exception(3).status == "open"
    for exception_id, actor in ((4, "ops.bob"), (1, "ops.alice"), (2, "ops.alice")):
        [recorded, retrying] = store.exception_events(exception_id)
        assert (retrying.action, retrying.actor) == ("retrying", actor)
        assert retrying.at >= recorded.at
        assert store.get_exception(exception_id).status == "retrying"

    code, out, _ = run(capsys, "exceptions", "show", "1")
    assert code == 0 and "retrying" in out and "by ops.alice" in out


def test_resolve_needs_a_note_and_records_who_and_why(
    store: IntegrationStore, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["exceptions", "resolve", "3"])  # --note is required
    capsys.readouterr()

    code, out, _ = run(
        capsys, "exceptions", "resolve", "3", "--note", "order cancelled, refund issued"
    )
    assert code == 0 and "#3 resolved by ops.alice" in out
    record = store.get_exception(3)
    assert (record.status, record.resolved_by, record.resolution_note) == (
        "resolved",
        "ops.alice",
        "order cancelled, refund issued",
    )
    [_, resolved] = store.exception_events(3)
    assert (resolved.action, resolved.actor, resolved.detail) == (
        "resolved",
        "ops.alice",
        {"note": "order cancelled, refund issued"},
    )

    code, out, _ = run(capsys, "exceptions", "list", "--status", "resolved", "--json")
    assert [row["id"] for row in json.loads(out)] == [3]


def test_refuses_to_act_on_everything_by_accident(
    store: IntegrationStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "exceptions", "retry")
    assert code == 2 and "--all" in err
    assert all(r.status == "open" for r in store.list_exceptions())
    code, _, err = run(capsys, "exceptions", "show", "99")
    assert code == 2 and "no exception with id 99" in err

    code, _, _ = run(capsys, "exceptions", "retry", "--all")
    assert code == 0 and len(store.list_exceptions(status="retrying")) == 4


def test_patterns_summarise_the_queue(
    store: IntegrationStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.record_exception(
        flow="order_to_cash", entity_key="UK-9", category="unknown_sku", reason="-", sku="MUG-BLUE"
    )
    code, out, _ = run(capsys, "exceptions", "patterns")
    assert code == 0 and "SKU **MUG-BLUE**: 3 failures" in out


def test_sandbox_status_still_works(sandbox_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sandbox", "status")
    assert code == 0
    assert json.loads(out)["commercetools"]["orders"] > 0


def test_list_shows_full_reasons(
    store: IntegrationStore, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "ERP rejected the order: " + "line 3 item MUG-BLUE is blocked for sales; " * 5
    store.record_exception(
        flow="order_to_cash", entity_key="UK-LONG", category="validation", reason=reason
    )
    code, out, _ = run(capsys, "exceptions", "list", "--entity", "UK-LONG")
    assert code == 0 and reason in out and len(reason) > 80


def test_without_dagster_home_it_says_how_instead_of_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("CT_PIPELINES_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "exceptions", "list")
    assert code == 2
    assert "Traceback" not in err
    assert "export DAGSTER_HOME=" in err


def test_without_dagster_home_it_finds_the_projects_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("CT_PIPELINES_DB_URL", raising=False)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "docs")
    code, out, err = run(capsys, "exceptions", "list")
    assert code == 0, err
    assert f"using {home.resolve()}" in err and "no exceptions match" in out
    assert (home / "ct_pipelines.db").exists()


def test_list_shows_the_amount_at_stake_beside_its_minor_units(
    store: IntegrationStore, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    import pandas as pd

    from ct_pipelines.defs.order_to_cash.logic.batch import batch_frame
    from ct_pipelines.kernel.shop import SHOP

    today = datetime.now(UTC).astimezone(SHOP.tz).date().isoformat()
    frame = batch_frame([])
    frame = pd.concat(
        [
            frame,
            pd.DataFrame(
                [{"external_document_number": "UK-1", "gross_minor": 1270282, "currency": "GBP"}]
            ),
        ],
        ignore_index=True,
    )
    store.write_snapshot("order_batches", frame, partition_key=today, taken_at=datetime.now(UTC))

    code, out, _ = run(capsys, "exceptions", "list", "--entity", "UK-1")
    assert code == 0
    assert "GBP 12,702.82" in out and "1270282" in out
    code, out, _ = run(capsys, "exceptions", "list", "--json")
    rows = {row["entity"]: row for row in json.loads(out)}
    assert (rows["UK-1"]["amount"], rows["UK-1"]["amount_minor"]) == ("GBP 12,702.82", 1270282)
    assert (rows["SH1"]["amount"], rows["SH1"]["amount_minor"]) == ("", None)
