"""`ct-pipelines preflight` and the preflight job against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ct_pipelines.cli import main
from ct_pipelines.defs.operations.preflight import preflight_job
from ct_pipelines.defs.resources import build_resources
from ct_sandbox import SandboxWorld


def _preflight(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    code = main(["preflight", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def _blockers(rows: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["area"], r["item"], r["status"]) for r in rows if r["blocker"]}


def test_preflight_passes_against_the_sandbox(
    sandbox_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = _preflight(capsys)
    assert code == 0, _blockers(rows)
    assert ("export channel", "erp-order-export", "OK") in {
        (r["area"], r["item"], r["status"]) for r in rows
    }
    assert main(["preflight"]) == 0
    assert "no blocker: ready to go live" in capsys.readouterr().out


def test_without_the_export_channel_or_with_unknown_tax_categories_it_exits_non_zero(
    sandbox_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = SandboxWorld.open(sandbox_dir)
    channel = world.documents.get_by("channels", "key", "erp-order-export")
    assert channel is not None
    world.documents.delete("channels", channel["id"])
    reduced = world.documents.get_by("tax-categories", "key", "reduced")
    assert reduced is not None
    world.documents.delete("tax-categories", reduced["id"])

    code, rows = _preflight(capsys)
    assert code == 1
    assert _blockers(rows) == {
        ("export channel", "erp-order-export", "MISSING"),
        ("tax categories", "reduced", "MISSING"),
    }
    assert world.documents.get_by("channels", "key", "erp-order-export") is None  # read-only

    code, rows = _preflight(capsys, "--create-missing")
    created = world.documents.get_by("channels", "key", "erp-order-export")
    assert created is not None and created["roles"] == ["OrderExport"]
    assert _blockers(rows) == {("tax categories", "reduced", "MISSING")}
    assert code == 1


def test_the_preflight_job_runs_the_same_checks(sandbox_dir: Path) -> None:
    resources = build_resources()
    ok = preflight_job.execute_in_process(resources=resources)
    assert ok.success

    world = SandboxWorld.open(sandbox_dir)
    channel = world.documents.get_by("channels", "key", "erp-order-export")
    assert channel is not None
    world.documents.delete("channels", channel["id"])
    failed = preflight_job.execute_in_process(resources=resources, raise_on_error=False)
    assert not failed.success
    error = failed.get_step_failure_events()[0].step_failure_data.error
    assert error is not None and "erp-order-export" in error.message
