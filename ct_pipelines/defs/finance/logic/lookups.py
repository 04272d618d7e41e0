"""commercetools look-ups for finance: a shop day's query window, orders by payment or id."""

import json
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

from ct_pipelines.defs.finance.logic.days import day_window
from ct_pipelines.defs.order_to_cash.logic.orders import as_utc_literal
from ct_pipelines.kernel.documents import external_document_number
from ct_pipelines.kernel.shop import SHOP

LOOKUP_CHUNK = 50


def window_variables(day: date) -> dict[str, str]:
    start, end = day_window(day, SHOP.tz)
    return {"windowStart": as_utc_literal(start), "windowEnd": as_utc_literal(end)}


def quoted(values: list[str]) -> str:
    return ", ".join(json.dumps(value) for value in values)


def chunks(values: list[str], size: int = LOOKUP_CHUNK) -> list[list[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def orders_by_payment(client: Any, payment_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Payment id -> (order id, external document number) of the order holding it."""
    found: dict[str, tuple[str, str]] = {}
    for chunk in chunks(payment_ids):
        for raw in client.query_all(
            "orders", where=[f"paymentInfo(payments(id in ({quoted(chunk)})))"]
        ):
            ref = SimpleNamespace(id=raw["id"], order_number=raw.get("orderNumber"))
            for payment in (raw.get("paymentInfo") or {}).get("payments") or []:
                found[payment["id"]] = (raw["id"], external_document_number(ref))
    return found


def with_refund_taxes(client: Any, facts: list[Any]) -> list[Any]:
    """Refund facts with the output VAT they give back (``refund_tax_by_rate``), from their
    orders (looked up by id, 50 a request); other facts unchanged."""
    from dataclasses import replace

    from ct_pipelines.commercetools.models import Order
    from ct_pipelines.defs.finance.logic.facts import refund_tax_by_rate

    wanted = sorted({f.order_id for f in facts if f.type == "Refund" and f.order_id})
    orders: dict[str, Any] = {}
    for chunk in chunks(wanted):
        for raw in client.query_all("orders", where=[f"id in ({quoted(chunk)})"]):
            orders[raw["id"]] = Order.model_validate(raw)
    return [
        replace(f, tax_by_rate=refund_tax_by_rate(f.amount_minor, orders[f.order_id]))
        if f.type == "Refund" and f.order_id in orders
        else f
        for f in facts
    ]


def order_source_days(client: Any, order_ids: list[str]) -> dict[str, date | None]:
    """Shop day of each commercetools order id; None for ids commercetools does not know."""
    days: dict[str, date | None] = dict.fromkeys(order_ids)
    for chunk in chunks(order_ids):
        for raw in client.query_all("orders", where=[f"id in ({quoted(chunk)})"]):
            created = datetime.fromisoformat(raw["createdAt"].replace("Z", "+00:00"))
            days[raw["id"]] = created.astimezone(SHOP.tz).date()
    return days
