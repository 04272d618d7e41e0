from datetime import UTC, datetime, timedelta

from ct_pipelines.defs.order_to_cash.logic.polling import (
    OrderChange,
    PollCursor,
    fresh_changes,
    poll_from,
    run_key,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OVERLAP = timedelta(minutes=5)


def change(order_id: str, version: int, minutes: float) -> OrderChange:
    return OrderChange(order_id, version, T0 + timedelta(minutes=minutes), T0 - timedelta(hours=1))


def test_changes_seen_again_inside_the_overlap_are_dropped() -> None:
    first, cursor = fresh_changes([change("a", 1, 0), change("b", 1, 1)], PollCursor(), OVERLAP)
    assert [c.order_id for c in first] == ["a", "b"]
    assert cursor.high_water == T0 + timedelta(minutes=1)
    # The next poll starts 5 minutes before the high water mark and sees a and b again.
    assert poll_from(cursor, T0, OVERLAP, timedelta(days=1)) == "2026-11-26T11:56:00.000Z"
    second, cursor = fresh_changes(
        [change("a", 1, 0), change("b", 1, 1), change("c", 1, 2)],
        PollCursor.from_json(cursor.to_json()),
        OVERLAP,
    )
    assert [c.order_id for c in second] == ["c"]


def test_a_higher_version_is_new_work() -> None:
    _, cursor = fresh_changes([change("a", 1, 0)], PollCursor(), OVERLAP)
    fresh, cursor = fresh_changes([change("a", 1, 0), change("a", 2, 3)], cursor, OVERLAP)
    assert [(c.order_id, c.version) for c in fresh] == [("a", 2)]
    fresh, _ = fresh_changes([change("a", 2, 3)], cursor, OVERLAP)
    assert fresh == []


def test_cursor_forgets_what_can_no_longer_reappear() -> None:
    _, cursor = fresh_changes([change("old", 1, 0)], PollCursor(), OVERLAP)
    _, cursor = fresh_changes([change("new", 1, 30)], cursor, OVERLAP)
    assert set(cursor.seen) == {"new"}


def test_first_poll_looks_back_and_run_keys_follow_the_content() -> None:
    assert poll_from(PollCursor(), T0, OVERLAP, timedelta(days=1)) == "2026-11-25T12:00:00.000Z"
    a = [change("a", 1, 0), change("b", 2, 0)]
    assert run_key("2026-11-26", a) == run_key("2026-11-26", list(reversed(a)))
    assert run_key("2026-11-26", a) != run_key("2026-11-26", [change("a", 2, 0), change("b", 2, 0)])
    assert PollCursor.from_json(PollCursor(resume=("x", "y")).to_json()).resume == ("x", "y")
