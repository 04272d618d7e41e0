"""The shop day an exception is about, for retries that run per shop day."""

import re
from collections.abc import Callable
from datetime import datetime

from ct_pipelines.defs.dispatch.logic.lookup import OrderGetter, find_order
from ct_pipelines.defs.operations.logic.exceptions import order_id_of
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines.store import ExceptionRecord

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def order_day_finder(client: OrderGetter) -> Callable[[ExceptionRecord], str | None]:
    """Shop day (partition key) an exception is about: its order's day, or a day in its key."""

    def order_day(record: ExceptionRecord) -> str | None:
        named = _DAY.search(record.entity_key)
        if named and not order_id_of(record):
            return named.group(0)
        order = None
        order_id = order_id_of(record)
        if order_id:
            order = client.get_or_none(f"orders/{order_id}")
        if order is None:
            order = find_order(client, record.entity_key)
        if order is None:
            return None
        created = datetime.fromisoformat(order["createdAt"].replace("Z", "+00:00"))
        return created.astimezone(SHOP.tz).date().isoformat()

    return order_day
