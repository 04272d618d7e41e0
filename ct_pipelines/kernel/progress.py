"""Progress of a long step, told to whoever listens: done, total, rate, ETA and parked so far.

Plain Python: the step passes a ``report`` callable (a Dagster asset passes ``context.log.info``)
and the logic calls ``advance`` as work completes. A line is reported every ``every`` items and
whenever ``every_seconds`` have passed since the last line, so a slow ERP still shows signs of
life. The clock is injectable, so tests need no real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """Thread-safe progress counter that reports a line every N items or T seconds."""

    def __init__(
        self,
        label: str,
        total: int,
        report: Callable[[str], None],
        *,
        unit: str = "items",
        every: int = 500,
        every_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.parked = 0
        self.lines = 0
        self._report = report
        self._every = max(1, every)
        self._every_seconds = every_seconds
        self._clock = clock
        self._started = clock()
        self._last_time = self._started
        self._last_done = 0
        self._lock = threading.Lock()

    def advance(self, n: int = 1, *, parked: int = 0) -> None:
        """``n`` more items finished, ``parked`` of them put on the exception queue."""
        with self._lock:
            self.done += n
            self.parked += parked
            now = self._clock()
            due = (
                self.done - self._last_done >= self._every
                or now - self._last_time >= self._every_seconds
                or (self.total and self.done >= self.total and self._last_done < self.total)
            )
            if not due:
                return
            self._last_done, self._last_time = self.done, now
            line = self.line(now)
            self.lines += 1
        self._report(line)

    def tick(self) -> None:
        """Report if ``every_seconds`` passed with nothing finished (call from a wait loop)."""
        self.advance(0)

    def line(self, now: float | None = None) -> str:
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        left = max(self.total - self.done, 0)
        eta = _duration(left / rate) if rate > 0 else "unknown"
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        return (
            f"{self.label}: {self.done:,}/{self.total:,} {self.unit}{share}, "
            f"{rate:,.1f}/s, ETA {eta}, parked so far {self.parked:,}"
        )
