"""The heartbeat lets a step report progress while nothing finishes (a hung ERP)."""

from __future__ import annotations

import threading

from ct_pipelines.defs.step_log import heartbeat
from ct_pipelines.kernel.progress import Progress


def test_heartbeat_reports_a_stalled_step_once_its_interval_passed() -> None:
    now = [0.0]
    reported = threading.Event()
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        reported.set()

    progress = Progress("export", 100, report, unit="orders", clock=lambda: now[0])
    with heartbeat(progress, every_seconds=0.01):
        assert not reported.wait(0.05)  # beats, but the fake clock has not moved: quiet
        now[0] = 31.0  # nothing finished for 31 s
        assert reported.wait(30)  # generous: a busy machine only delays the next beat
    assert lines[0].startswith("export: 0/100 orders (0 %)") and "ETA unknown" in lines[0]


def test_heartbeat_off() -> None:
    progress = Progress("export", 1, lambda line: None)
    with heartbeat(progress, every_seconds=0):
        pass
