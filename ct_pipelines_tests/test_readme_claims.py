"""What the README says about automation defaults and metadata, checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from ct_pipelines.definitions import defs
from ct_pipelines_tests.runbook import assert_says_what_to_do

README = Path(__file__).resolve().parent.parent / "README.md"


def _definitions() -> dg.Definitions:
    loaded = defs()
    return loaded if isinstance(loaded, dg.Definitions) else loaded()


def _claimed_running() -> set[str]:
    text = README.read_text()
    match = re.search(r"<!-- running-by-default -->(.*?)<!-- /running-by-default -->", text, re.S)
    assert match, "README lost its list of what starts running"
    return set(re.findall(r"`([a-z_]+)`", match.group(1)))


def test_readme_names_exactly_the_sensors_and_schedules_that_start_running() -> None:
    repo = _definitions().get_repository_def()
    running = {
        s.name for s in repo.sensor_defs if s.default_status == dg.DefaultSensorStatus.RUNNING
    } | {s.name for s in repo.schedule_defs if s.default_status == dg.DefaultScheduleStatus.RUNNING}
    assert running == _claimed_running()
    assert "start stopped" in README.read_text()


@pytest.mark.slow
def test_every_materialisation_reports_row_count_schema_and_preview(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's metadata claim, over every asset the demo materialises."""
    from io import StringIO

    from ct_pipelines.demo import run_demo

    for name in ("CT_PIPELINES_MODE", "CT_PIPELINES_COMMERCETOOLS", "CT_PIPELINES_ERP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CT_PIPELINES_MODE", "sandbox")
    out = StringIO()
    assert run_demo(out) == 0, out.getvalue()
    instance = dg.DagsterInstance.get()
    graph = _definitions().resolve_asset_graph()
    lacking = {}
    for key in graph.get_all_asset_keys():
        if not graph.get(key).is_materializable:
            continue
        records = instance.fetch_materializations(key, limit=1).records
        assert records, f"{key.to_user_string()} was not materialised by the demo"
        metadata = records[0].asset_materialization.metadata
        missing = [
            name
            for name in ("dagster/row_count", "dagster/column_schema", "preview")
            if name not in metadata
        ]
        if missing:
            lacking[key.to_user_string()] = missing
    assert lacking == {}
    # Every asset check reports numeric metadata (the UI plots it) and a text; a failing one
    # says what to do and names its section of the runbook.
    evaluated = 0
    for check_key in graph.asset_check_keys:
        record = instance.get_latest_asset_check_evaluation_record(check_key)
        event = record.event.dagster_event if record and record.event else None
        evaluation = event.event_specific_data if event else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            continue
        evaluated += 1
        numbers = [
            value
            for value in evaluation.metadata.values()
            if isinstance(value, dg.IntMetadataValue | dg.FloatMetadataValue)
        ]
        assert numbers, f"{check_key.name} reports no numeric metadata"
        assert evaluation.description, f"{check_key.name} says nothing"
        if not evaluation.passed:
            assert_says_what_to_do(evaluation.description, check_key.name)
    assert evaluated >= len(graph.asset_check_keys) - 2  # the demo evaluates (nearly) all
    # The exception queue lists the planted findings the export parked, amounts formatted.
    from ct_sandbox import SandboxWorld

    planted = {
        str(subject)
        for finding in SandboxWorld.open(sandbox_dir).planted_findings()
        for subject in finding["subjects"]
    }
    [queue] = instance.fetch_materializations(dg.AssetKey("exception_queue"), limit=1).records
    rows = [r.data for r in queue.asset_materialization.metadata["queue"].value.records]
    listed = [row for row in rows if any(s in str(row["entity"]) for s in planted)]
    assert listed, (planted, [row["entity"] for row in rows])
    priced = [row for row in rows if row["amount"]]
    assert priced and all(
        re.fullmatch(r"[A-Z]{3} -?[\d,]+(\.\d+)?", row["amount"])
        and row["amount_minor"] is not None
        for row in priced
    )
    # The overview ran after the flows, so no flow it summarises reads "never run".
    health = instance.fetch_materializations(dg.AssetKey("integration_health"), limit=1).records
    assert health[0].asset_materialization.metadata["flows_never_run"].value == 0


_NUMBERS = {"no": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}


def _automation() -> tuple[dict[str, bool], set[str]]:
    """Every sensor and schedule with whether it starts running, and every job's name."""
    repo = _definitions().get_repository_def()
    running = {
        s.name: s.default_status == dg.DefaultSensorStatus.RUNNING for s in repo.sensor_defs
    } | {s.name: s.default_status == dg.DefaultScheduleStatus.RUNNING for s in repo.schedule_defs}
    jobs = {job.name for job in repo.get_all_jobs() if not job.name.startswith("__")}
    return running, jobs


def test_readme_says_how_many_start_running() -> None:
    running, _ = _automation()
    match = re.search(r"\b(\w+) start running\b", README.read_text())
    assert match, "README no longer says how many start running"
    assert _NUMBERS[match.group(1).lower()] == sum(running.values())


def _table(text: str, header: str) -> list[list[str]]:
    """The rows (cells) of the markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_readmes_flow_table_lists_every_asset_and_every_sensor_and_schedule() -> None:
    graph = _definitions().resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            groups.setdefault(str(node.group_name), set()).add(key.to_user_string())
    running, jobs = _automation()
    rows = _table(README.read_text(), "| Flow (asset group)")
    named_automation: set[str] = set()
    for flow, assets, automation in rows:
        group = flow.strip("*")
        listed = set(re.findall(r"`([a-z_]+)`", assets))
        assert listed == groups.pop(group), group
        # The names outside the parentheses (which explain, and may name a pool).
        names = set(re.findall(r"`([a-z_0-9]+)`", re.sub(r"\([^)]*\)", "", automation)))
        assert names <= set(running) | jobs, (group, names - set(running) - jobs)
        named_automation |= names
    assert groups == {}, f"groups the README's table leaves out: {sorted(groups)}"
    # Every sensor and schedule is named: in the table, or in the list of what starts running.
    assert set(running) - named_automation - _claimed_running() == set()


def test_the_runbooks_automation_table_gives_each_one_its_real_default() -> None:
    running, _ = _automation()
    runbook = README.parent / "docs" / "runbook.md"
    rows = _table(runbook.read_text(), "| Name | Kind | Default |")
    defaults = {}
    for name, kind, default, _what in rows:
        defaults[name.strip("`")] = default.strip("*") == "on"
        assert kind.split(",")[0] in ("sensor", "schedule"), name
    assert defaults == running
