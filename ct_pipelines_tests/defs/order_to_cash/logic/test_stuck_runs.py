from datetime import UTC, datetime, timedelta

from ct_pipelines.defs.order_to_cash.logic.stuck_runs import (
    RunSeen,
    WorkerIdentity,
    current_worker,
    judge,
    read_suspects,
    worker_alive,
    write_suspects,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)


def _seen(run_id: str, alive: bool | None) -> RunSeen:
    return RunSeen(run_id, WorkerIdentity("host", 1, "7"), alive)


def test_a_worker_tag_round_trips_even_with_colons_in_the_host() -> None:
    worker = WorkerIdentity("fe80::1", 4242, "123456")
    assert WorkerIdentity.from_tag(worker.to_tag()) == worker
    assert WorkerIdentity.from_tag("") is None
    assert WorkerIdentity.from_tag("garbage") is None


def test_this_process_is_alive_and_a_recycled_pid_is_not() -> None:
    me = current_worker()
    assert worker_alive(me) is True
    recycled = WorkerIdentity(me.host, me.pid, "not-my-start-time")
    # Off Linux the start time cannot be read, and the pid alone decides.
    assert worker_alive(recycled) is (not me.started)
    assert worker_alive(WorkerIdentity("another-host", me.pid, me.started)) is None


def test_a_dead_run_is_suspected_first_and_failed_only_after_the_grace() -> None:
    first = judge([_seen("r1", False), _seen("r2", True), _seen("r3", None)], {}, NOW, GRACE)
    assert first.dead == []
    assert first.suspects == {"r1": NOW.isoformat()}
    too_soon = judge([_seen("r1", False)], first.suspects, NOW + timedelta(seconds=30), GRACE)
    assert too_soon.dead == [] and "r1" in too_soon.suspects
    later = judge([_seen("r1", False)], too_soon.suspects, NOW + GRACE, GRACE)
    assert later.dead == ["r1"] and later.suspects == {}


def test_a_suspect_that_comes_back_or_ends_is_forgotten() -> None:
    suspects = {"r1": NOW.isoformat(), "gone": NOW.isoformat()}
    verdict = judge([_seen("r1", True)], suspects, NOW + GRACE, GRACE)
    assert verdict.dead == [] and verdict.suspects == {}


def test_the_cursor_survives_garbage() -> None:
    assert read_suspects(None) == {}
    assert read_suspects("not json") == {}
    assert read_suspects(write_suspects({"r1": NOW.isoformat()})) == {"r1": NOW.isoformat()}
