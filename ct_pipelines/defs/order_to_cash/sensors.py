"""The sensor that notices new and changed commercetools orders and launches their export."""

import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from ct_pipelines.defs.order_to_cash import assets as o2c
from ct_pipelines.defs.order_to_cash.logic.polling import (
    OrderChange,
    PollCursor,
    fresh_changes,
    poll_from,
    run_key,
)
from ct_pipelines.defs.resources import CommercetoolsResource
from ct_pipelines.kernel.shop import SHOP

OVERLAP = timedelta(minutes=5)
INITIAL_LOOKBACK = timedelta(days=1)
# A tick reads at most this many changes (10 pages of 500); a bigger burst spreads over ticks.
MAX_CHANGES_PER_TICK = 5_000
PAGE_SIZE = 500
EXPORT_CHANNEL_KEY = "erp-order-export"
EXPORT_MAX_RUNTIME_SECONDS = int(os.environ.get("CT_PIPELINES_EXPORT_MAX_RUNTIME_SECONDS", "10800"))


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


order_export_job = dg.define_asset_job(
    "order_export_job",
    selection=dg.AssetSelection.assets(o2c.order_batches, o2c.erp_sales_orders),
    description="Maps a day's orders and exports the eligible ones to the ERP.",
    # A bound on every export run, so run monitoring fails one whose worker died where the
    # stuck_export_runs watchdog cannot see it (another host).
    tags={"dagster/max_runtime": str(EXPORT_MAX_RUNTIME_SECONDS)},
)


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


@dg.sensor(
    name="new_commercetools_orders",
    job=order_export_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls commercetools for orders created or modified since its cursor and exports their days.",
)
def new_commercetools_orders(
    context: dg.SensorEvaluationContext, commercetools: CommercetoolsResource
) -> dg.SensorResult | dg.SkipReason:
    cursor = PollCursor.from_json(context.cursor)
    with commercetools.open_client() as client:
        channel_id = o2c.export_channel_id(client, EXPORT_CHANNEL_KEY)
        fresh, next_cursor, more = poll_order_changes(
            client, cursor, datetime.now(UTC), export_channel_id=channel_id
        )
    if not fresh:
        return dg.SensorResult(
            skip_reason=dg.SkipReason("no new or changed orders since the last tick"),
            cursor=next_cursor.to_json(),
        )
    by_day: dict[str, list[OrderChange]] = defaultdict(list)
    for change in fresh:
        by_day[change.created_at.astimezone(SHOP.tz).date().isoformat()].append(change)
    valid_days = set(o2c.order_days.get_partition_keys())
    requests = []
    for day, changes in sorted(by_day.items()):
        if day not in valid_days:
            context.log.warning(
                "orders dated %s fall outside the order_days partitions; skipped", day
            )
            continue
        requests.append(
            dg.RunRequest(
                run_key=run_key(day, changes),
                partition_key=day,
                tags={
                    "ct_pipelines/trigger": "new_commercetools_orders",
                    "ct_pipelines/orders": str(len(changes)),
                },
            )
        )
    context.log.info(
        "%d new or changed orders over %d days%s",
        len(fresh),
        len(requests),
        "; more waiting" if more else "",
    )
    return dg.SensorResult(run_requests=requests, cursor=next_cursor.to_json())
