"""The run's event log as the one place to read what a step did: progress and warnings.

The logic modules log with Python ``logging`` (they know nothing of Dagster). While a step runs,
``event_log_for_step`` forwards those records (warnings and worse by default) from the
``ct_pipelines`` loggers to ``context.log``, so a parked order or an exhausted retry shows in the
run's event log in the UI and not only on the code server's stderr. The resources' ``open_*``
methods do the same for whatever step opens a client (``forwards_warnings``), so every asset,
op and asset check that talks to commercetools or the ERP forwards its warnings, and a step
that also forwards by itself writes each line once. ``step_progress`` builds a ``Progress``
whose lines go to the event log too.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import dagster as dg

from ct_pipelines.kernel.progress import Progress

LOGGER = "ct_pipelines"
P = ParamSpec("P")
T = TypeVar("T")
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


# The event logs being forwarded to now (by id), so nested forwarding writes each line once.
_forwarding: dict[int, int] = {}
_forwarding_lock = threading.Lock()


@contextmanager
def event_log_for_step(
    context: dg.AssetExecutionContext | dg.OpExecutionContext | dg.AssetCheckExecutionContext,
    *,
    level: int = logging.WARNING,
    logger_name: str = LOGGER,
) -> Iterator[None]:
    """Forward ``logger_name``'s records at ``level`` and above to the run's event log.

    Nested uses for one step (the asset's own block and a client the resources open inside
    it) forward once: only the outermost adds a handler."""
    log = context.log
    with _forwarding_lock:
        nested = _forwarding.get(id(log), 0) > 0
        _forwarding[id(log)] = _forwarding.get(id(log), 0) + 1
    target = logging.getLogger(logger_name)
    handler = None if nested else _EventLogHandler(log, level)
    old_level = target.level
    if handler is not None:
        target.addHandler(handler)
        if target.getEffectiveLevel() > level:
            target.setLevel(level)
    try:
        yield
    finally:
        if handler is not None:
            target.removeHandler(handler)
            target.setLevel(old_level)
        with _forwarding_lock:
            _forwarding[id(log)] -= 1
            if not _forwarding[id(log)]:
                del _forwarding[id(log)]


def _current_step() -> dg.OpExecutionContext | None:
    """The op, asset or asset check running in this thread, if any."""
    try:
        return dg.OpExecutionContext.get()
    except dg.DagsterInvariantViolationError:
        return None


@contextmanager
def event_log_for_current_step() -> Iterator[None]:
    """``event_log_for_step`` for whatever step runs now; nothing outside a step (a sensor, the
    CLI, a test calling the logic directly)."""
    context = _current_step()
    if context is None:
        yield
        return
    with event_log_for_step(context):
        yield


def forwards_warnings(open_: Callable[P, Iterator[T]]) -> Callable[P, Iterator[T]]:
    """For a resource's ``open_*`` generator: while what it opened is in use inside a step,
    the warnings logged under ``ct_pipelines`` (retries, parked items, refusals) go to that
    step's event log, whether the step is an asset, an op or an asset check."""

    @functools.wraps(open_)
    def forwarding(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        with event_log_for_current_step():
            yield from open_(*args, **kwargs)

    return forwarding


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
