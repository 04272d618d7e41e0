"""A run's event log as the UI shows it, for tests that look for a line in it."""

from __future__ import annotations

import dagster as dg


def event_log_lines(
    instance: dg.DagsterInstance, run_id: str, containing: str, *, step: str | None = None
) -> list[str]:
    """The run's user log lines (what the UI's event log shows) containing ``containing``,
    of one step (its key) when ``step`` is given."""
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if containing in entry.user_message and (step is None or entry.step_key == step)
    ]
