"""The shop day an exception is about, for retries that run per shop day."""

import re
from datetime import datetime

from ct_pipelines.defs.dispatch.logic.lookup import find_order
from ct_pipelines.defs.operations.logic.exceptions import order_id_of
from ct_pipelines.kernel.shop import SHOP

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def order_day_finder(client: object):
    """Shop day (partition key) an exception is about: its order's day, or a day in its key."""

    def order_day(record: object) -> str | None:
        named = _DAY.search(record.entity_key)  # type: ignore[attr-defined]
        if named and not order_id_of(record):  # type: ignore[arg-type]
            return named.group(0)
        order = None
        order_id = order_id_of(record)  # type: ignore[arg-type]
        if order_id:
            order = client.get_or_none(f"orders/{order_id}")  # type: ignore[attr-defined]
        if order is None:
            order = find_order(client, record.entity_key)  # type: ignore[arg-type, attr-defined]
        if order is None:
            return None
        created = datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00"))
        return created.astimezone(SHOP.tz).date().isoformat()

    return order_day
