"""Telling a dead export run from a slow one, so a killed run never holds the ERP.

An export step records who runs it (host, process id and the process's start time, which guards
against a recycled pid) as a run tag. A run that still says STARTED while that process is gone
cannot finish: its ``erp_writes`` slot would block every later export. The watchdog suspects such
a run on one tick and acts only when a later tick, at least ``grace`` later, still sees it dead,
so a step that just ended and whose run is about to record it is never failed by mistake.

A worker on another host cannot be probed from here; those runs are bounded by the export job's
``dagster/max_runtime`` instead (run monitoring fails them when it passes).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

WORKER_TAG = "ct_pipelines/export_worker"


@dataclass(frozen=True)
class WorkerIdentity:
    host: str
    pid: int
    started: str  # the kernel's start time of the process ("" where it cannot be read)

    def to_tag(self) -> str:
        return f"{self.host}:{self.pid}:{self.started}"

    @classmethod
    def from_tag(cls, value: str | None) -> WorkerIdentity | None:
        if not value:
            return None
        host, _, rest = value.rpartition(":")
        host, _, pid = host.rpartition(":")
        if not host or not pid.isdigit():
            return None
        return cls(host=host, pid=int(pid), started=rest)


def _process_start(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks); "" off Linux or if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses; fields follow the last ")".
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def current_worker() -> WorkerIdentity:
    pid = os.getpid()
    return WorkerIdentity(host=socket.gethostname(), pid=pid, started=_process_start(pid))


def worker_alive(worker: WorkerIdentity, this_host: str | None = None) -> bool | None:
    """True or False for a worker on this host; None (cannot tell) for one elsewhere."""
    if worker.host != (this_host or socket.gethostname()):
        return None
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    # A different start time means the pid now belongs to another process.
    return not (worker.started and _process_start(worker.pid) not in ("", worker.started))


@dataclass(frozen=True)
class RunSeen:
    """What the watchdog knows of one STARTED run holding, or having held, an export slot."""

    run_id: str
    worker: WorkerIdentity | None
    alive: bool | None


@dataclass(frozen=True)
class Verdict:
    dead: list[str]  # confirmed dead: fail, free the slots, export again
    suspects: dict[str, str]  # run id -> when first seen dead (ISO), kept in the cursor


def judge(
    runs: Iterable[RunSeen], suspects: Mapping[str, str], now: datetime, grace: timedelta
) -> Verdict:
    dead: list[str] = []
    still: dict[str, str] = {}
    for run in runs:
        if run.alive is not False:
            continue  # alive, or not ours to judge (another host, or no worker recorded yet)
        first = suspects.get(run.run_id)
        if first is not None and now - datetime.fromisoformat(first) >= grace:
            dead.append(run.run_id)
        else:
            still[run.run_id] = first or now.isoformat()
    return Verdict(dead=sorted(dead), suspects=still)


def read_suspects(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        loaded = json.loads(cursor)
    except ValueError:
        return {}
    suspects = loaded.get("suspects", {}) if isinstance(loaded, dict) else {}
    return {str(k): str(v) for k, v in suspects.items()}


def write_suspects(suspects: Mapping[str, str]) -> str:
    return json.dumps({"suspects": dict(sorted(suspects.items()))})
