"""What the README says about automation defaults and metadata, checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from ct_pipelines.definitions import defs

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
    # The overview ran after the flows, so no flow it summarises reads "never run".
    health = instance.fetch_materializations(dg.AssetKey("integration_health"), limit=1).records
    assert health[0].asset_materialization.metadata["flows_never_run"].value == 0
