"""The run's event log as the one place to read what a step did: progress and warnings.

The logic modules log with Python ``logging`` (they know nothing of Dagster). While a step runs,
``event_log_for_step`` forwards those records (warnings and worse by default) from the
``ct_pipelines`` loggers to ``context.log``, so a parked order or an exhausted retry shows in the
run's event log in the UI and not only on the code server's stderr. ``step_progress`` builds a
``Progress`` whose lines go to the event log too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

from ct_pipelines.kernel.progress import Progress

LOGGER = "ct_pipelines"
# The progress clock; a module attribute so tests can swap in a fake one (no real waiting).
monotonic: Callable[[], float] = time.monotonic


class _EventLogHandler(logging.Handler):
    def __init__(self, log: logging.Logger | dg.DagsterLogManager, level: int) -> None:
        super().__init__(level)
        self._log = log
        self._lock_ = threading.Lock()
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        # The event log itself may log; a record raised while forwarding is not forwarded again.
        if getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            message = f"{record.name}: {record.getMessage()}"
            with self._lock_:
                self._log.log(record.levelno, message)
        except Exception:  # the step must not fail because a log line could not be written
            self.handleError(record)
        finally:
            self._local.busy = False


@contextmanager
def event_log_for_step(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    *,
    level: int = logging.WARNING,
    logger_name: str = LOGGER,
) -> Iterator[None]:
    """Forward ``logger_name``'s records at ``level`` and above to the run's event log."""
    target = logging.getLogger(logger_name)
    handler = _EventLogHandler(context.log, level)
    target.addHandler(handler)
    old_level = target.level
    if target.getEffectiveLevel() > level:
        target.setLevel(level)
    try:
        yield
    finally:
        target.removeHandler(handler)
        target.setLevel(old_level)


@contextmanager
def heartbeat(progress: Progress, every_seconds: float = 5.0) -> Iterator[None]:
    """While the block runs, let ``progress`` report even when nothing finishes (a hung ERP):
    it is ticked every ``every_seconds`` and reports once its own interval has passed.
    ``every_seconds`` 0 turns the heartbeat off."""
    if every_seconds <= 0:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_seconds):
            progress.tick()

    thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def step_progress(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    label: str,
    total: int,
    *,
    unit: str = "items",
    every: int = 500,
    every_seconds: float = 30.0,
    clock: Callable[[], float] | None = None,
) -> Progress:
    """A ``Progress`` whose lines go to the run's event log."""
    return Progress(
        label,
        total,
        context.log.info,
        unit=unit,
        every=every,
        every_seconds=every_seconds,
        clock=clock or monotonic,
    )
