"""Finding new and changed commercetools orders, once each, for the order sensor.

The sensor asks for orders with ``lastModifiedAt >= high_water - overlap``. The overlap covers
clock skew and commercetools' eventual consistency (a change may become visible a little after
its timestamp), so consecutive polls see some orders twice; the cursor remembers the
(id, version) pairs it has already launched within the overlap window and drops repeats. A
change with a higher version is new work (for example a payment that was authorised later).

There is no upper bound on the window: the source's clock, not ours, decides what is new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ct_pipelines.defs.order_to_cash.logic.orders import as_utc_literal


@dataclass(frozen=True)
class OrderChange:
    order_id: str
    version: int
    last_modified_at: datetime
    created_at: datetime


@dataclass
class PollCursor:
    high_water: datetime | None = None
    # order id -> (version, lastModifiedAt ISO) of changes already launched inside the overlap
    seen: dict[str, tuple[int, str]] = field(default_factory=dict)
    # (lastModifiedAt literal, id) where a tick capped at its limit stopped; the next tick goes on
    # from exactly there instead of re-reading the overlap, so a huge burst always progresses.
    resume: tuple[str, str] | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "high_water": self.high_water.isoformat() if self.high_water else None,
                "seen": {k: list(v) for k, v in sorted(self.seen.items())},
                "resume": list(self.resume) if self.resume else None,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> PollCursor:
        if not text:
            return cls()
        data = json.loads(text)
        high = data.get("high_water")
        return cls(
            high_water=datetime.fromisoformat(high) if high else None,
            seen={k: (int(v[0]), str(v[1])) for k, v in data.get("seen", {}).items()},
            resume=tuple(data["resume"]) if data.get("resume") else None,
        )


def poll_from(
    cursor: PollCursor, now: datetime, overlap: timedelta, initial_lookback: timedelta
) -> str:
    """The lower bound of the next poll, as a commercetools datetime literal."""
    start = cursor.high_water - overlap if cursor.high_water else now - initial_lookback
    return as_utc_literal(start)


def fresh_changes(
    changes: Iterable[OrderChange], cursor: PollCursor, overlap: timedelta
) -> tuple[list[OrderChange], PollCursor]:
    """Changes not launched before, and the cursor to store once their runs are requested."""
    fresh: list[OrderChange] = []
    seen = dict(cursor.seen)
    high = cursor.high_water
    for change in changes:
        previous = seen.get(change.order_id)
        if previous is not None and previous[0] >= change.version:
            continue
        fresh.append(change)
        seen[change.order_id] = (change.version, change.last_modified_at.isoformat())
        if high is None or change.last_modified_at > high:
            high = change.last_modified_at
    if high is not None:
        # Only what can still reappear inside the overlap needs remembering.
        horizon = high - overlap - timedelta(seconds=1)
        seen = {k: v for k, v in seen.items() if datetime.fromisoformat(v[1]) >= horizon}
    return fresh, PollCursor(high_water=high, seen=seen)


def run_key(day: str, changes: Iterable[OrderChange]) -> str:
    """Derived from exactly what was found, so a lost cursor update cannot launch twice."""
    digest = hashlib.sha256(
        "\n".join(sorted(f"{c.order_id}@{c.version}" for c in changes)).encode()
    ).hexdigest()[:20]
    return f"new-orders:{day}:{digest}"


OVERLAP = timedelta(minutes=5)


INITIAL_LOOKBACK = timedelta(days=1)


# A tick reads at most this many changes (50 pages of 500, some 15 s on the sandbox: see
# bench/order_sensor_tick.py); a bigger burst spreads over ticks. A flash sale's 20,000 orders
# are found by one tick, so none waits a tick longer than it must.
MAX_CHANGES_PER_TICK = 25_000


PAGE_SIZE = 500


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _already_exported(doc: dict, export_channel_id: str | None) -> bool:
    """Carries our export marker: a later change (often the marker itself) needs no export."""
    return export_channel_id is not None and any(
        (info.get("channel") or {}).get("id") == export_channel_id
        for info in doc.get("syncInfo") or []
    )


def poll_order_changes(
    client: Any,
    cursor: PollCursor,
    now: datetime,
    limit: int = MAX_CHANGES_PER_TICK,
    export_channel_id: str | None = None,
) -> tuple[list[OrderChange], PollCursor, bool]:
    """(fresh changes, next cursor, more waiting) for one tick.

    Pages by ``lastModifiedAt`` then id so a capped tick resumes where it stopped: the cursor's
    high water mark is the last change taken, and the overlap plus (id, version) de-duplication
    make the boundary safe.
    """
    since = poll_from(cursor, now, OVERLAP, INITIAL_LOOKBACK)
    after: tuple[str, str] | None = cursor.resume
    if after is not None:
        since = after[0]
    found: list[OrderChange] = []
    skipped: list[OrderChange] = []
    more = False
    # Keyset paging on (lastModifiedAt, id): no offset (so no 10,000 cap), and orders sharing a
    # timestamp are neither skipped nor repeated.
    while True:
        where = ["lastModifiedAt >= :since"]
        variables: dict[str, str] = {"since": since}
        if after is not None:
            where.append(
                "(lastModifiedAt > :afterAt or (lastModifiedAt = :afterAt and id > :afterId))"
            )
            variables.update(afterAt=after[0], afterId=after[1])
        page = client.query(
            "orders",
            where=where,
            variables=variables,
            sort=["lastModifiedAt asc", "id asc"],
            limit=PAGE_SIZE,
            with_total=False,
        )["results"]
        for doc in page:
            change = OrderChange(
                order_id=doc["id"],
                version=int(doc["version"]),
                last_modified_at=_instant(doc["lastModifiedAt"]),
                created_at=_instant(doc["createdAt"]),
            )
            (skipped if _already_exported(doc, export_channel_id) else found).append(change)
        if len(page) < PAGE_SIZE:
            break
        after = (page[-1]["lastModifiedAt"], page[-1]["id"])
        if len(found) + len(skipped) >= limit:
            more = True
            break
    fresh, next_cursor = fresh_changes(found, cursor, OVERLAP)
    if skipped:
        # Exported orders still move the high water mark, or the poll would never advance.
        latest = max(change.last_modified_at for change in skipped)
        if next_cursor.high_water is None or latest > next_cursor.high_water:
            next_cursor.high_water = latest
    next_cursor.resume = after if more else None
    return fresh, next_cursor, more
