"""Partitions shared by the flows: the shop day, in the shop's time zone."""

import dagster as dg

from ct_pipelines.kernel.shop import SHOP

# One partition per shop day, today's included (end_offset=1) so the day's orders flow as
# they come.
order_days = dg.DailyPartitionsDefinition(
    start_date=SHOP.orders_start_date, timezone=SHOP.timezone, end_offset=1
)
