"""Progress lines every N items and every T seconds, on an injected clock (no real time)."""

from __future__ import annotations

from ct_pipelines.kernel.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reports_every_n_items_with_rate_eta_and_parked() -> None:
    clock, lines = FakeClock(), []
    progress = Progress("export", 1000, lines.append, unit="orders", every=250, clock=clock)
    for i in range(500):
        clock.now += 0.01
        progress.advance(parked=int(i % 100 == 0))
    assert len(lines) == 2
    assert lines[-1] == ("export: 500/1,000 orders (50 %), 100.0/s, ETA 5s, parked so far 5")


def test_reports_at_least_every_30_seconds_when_slow() -> None:
    clock, lines = FakeClock(), []
    progress = Progress("export", 25_000, lines.append, unit="orders", every=10_000, clock=clock)
    for _ in range(10):
        clock.now += 31  # one order every 31 s: far below the count threshold
        progress.advance()
    assert len(lines) == 10
    assert "10/25,000 orders" in lines[-1] and "ETA" in lines[-1]
    assert lines[-1].endswith("parked so far 0")


def test_quiet_between_thresholds_and_reports_the_end() -> None:
    clock, lines = FakeClock(), []
    progress = Progress("sync", 7, lines.append, every=100, clock=clock)
    for _ in range(6):
        clock.now += 1
        progress.advance()
    assert lines == []
    clock.now += 1
    progress.advance()
    assert lines == ["sync: 7/7 items (100 %), 1.0/s, ETA 0s, parked so far 0"]
    progress.tick()
    assert len(lines) == 1
