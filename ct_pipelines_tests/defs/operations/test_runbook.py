"""The runbook must tell the business what to do for every check the project has."""

import re
from pathlib import Path

import dagster as dg

from ct_pipelines.definitions import defs

DOCS = Path(__file__).resolve().parents[3] / "docs"


def loaded() -> dg.Definitions:
    definitions = defs()
    return definitions if isinstance(definitions, dg.Definitions) else definitions()


def runbook_sections() -> dict[str, str]:
    """`### `name`` headings of the runbook and the text under each."""
    text = (DOCS / "runbook.md").read_text()
    parts = re.split(r"^### `([^`]+)`.*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_asset_check_has_a_runbook_section_saying_what_to_do() -> None:
    checks = {key.name for key in loaded().resolve_asset_graph().asset_check_keys}
    sections = runbook_sections()
    assert checks, "no asset checks loaded"
    missing = sorted(checks - set(sections))
    assert not missing, f"docs/runbook.md has no `### `name`` section for: {missing}"
    for name in checks:
        assert "What to do" in sections[name], f"the runbook section for {name} says no action"


def test_the_runbook_covers_alerts_jobs_and_sensors_by_name() -> None:
    text = (DOCS / "runbook.md").read_text()
    definitions = loaded()
    names = {
        job.name for job in definitions.resolve_all_job_defs() if not job.name.startswith("__")
    }
    names |= {sensor.name for sensor in definitions.sensors or []}
    names |= {schedule.name for schedule in definitions.schedules or []}
    missing = sorted(name for name in names if f"`{name}`" not in text)
    assert not missing, f"docs/runbook.md does not mention: {missing}"


def test_architecture_names_the_systems_of_record_and_every_flow() -> None:
    text = (DOCS / "architecture.md").read_text()
    groups = {
        node.group_name
        for node in loaded().resolve_asset_graph().asset_nodes
        if node.group_name not in ("default",)
    }
    assert all(f"`{group}`" in text for group in groups), groups
    for owner in ("commercetools", "ERP", "WMS"):
        assert owner in text
