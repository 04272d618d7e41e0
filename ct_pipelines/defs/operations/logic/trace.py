"""Where is my order? One order's journey across commercetools, the integration and the ERP/WMS.

The trace reads each system of record as it stands now (commercetools: the order, its payments
and deliveries; the ERP: the sales order), what the integration recorded (the export and
dispatch ledgers, the shipments it received) and the exception queue with its history, then
lays it all out in time order. Where two systems disagree (the ERP shipped, commercetools shows
no delivery) the trace says so and why, so customer service can answer and operations can see
where the transaction stalled. It shows ids and states only, never the customer's details.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, Literal
from urllib.parse import quote

import pandas as pd

from ct_pipelines.defs.dispatch.logic.audit import failed_status_updates
from ct_pipelines.defs.dispatch.logic.lookup import find_order
from ct_pipelines.defs.dispatch.logic.plan import all_deliveries
from ct_pipelines.defs.dispatch.logic.shipments import SHIPMENT_COLUMNS, SNAPSHOT, received_day
from ct_pipelines.kernel.documents import external_document_number
from ct_pipelines.kernel.money import CURRENCY_FRACTION_DIGITS, display_money, to_decimal
from ct_pipelines.kernel.scrub import scrub_text
from ct_pipelines.store import ExceptionRecord, IntegrationStore, SnapshotNotFound

ORDER_FLOW = "order_to_cash"
DISPATCH_FLOW = "dispatch"
# Dispatch retries shipments received up to this many days before it applies them.
SHIPMENT_SEARCH_DAYS = 8

Status = Literal["ok", "waiting", "failed", "info"]
_TRANSACTION_STATUS: dict[str, Status] = {
    "Success": "ok",
    "Pending": "waiting",
    "Initial": "waiting",
    "Failure": "failed",
}


@dataclass(frozen=True)
class TraceStep:
    at: datetime | None
    system: str
    step: str
    status: Status
    detail: str = ""


@dataclass
class OrderTrace:
    reference: str
    document_number: str
    order_id: str | None = None
    order_state: str | None = None
    payment_state: str | None = None
    shipment_state: str | None = None
    where_now: str = ""
    steps: list[TraceStep] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def sorted_steps(self) -> list[TraceStep]:
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(self.steps, key=lambda s: s.at or far)

    def text(self) -> str:
        lines = [
            f"Order {self.reference}"
            + (f" (commercetools id {self.order_id})" if self.order_id else ""),
            f"Where it is now: {self.where_now}",
            f"commercetools states: order {self.order_state or '-'}, "
            f"payment {self.payment_state or '-'}, shipment {self.shipment_state or '-'}",
        ]
        if self.problems:
            lines.append("Problems:")
            lines += [f"  ! {problem}" for problem in self.problems]
        lines.append("Journey:")
        marks = {"ok": "✓", "waiting": "…", "failed": "✗", "info": "·"}
        for step in self.sorted_steps():
            when = step.at.isoformat(timespec="seconds") if step.at else "(no time)"
            detail = f" — {step.detail}" if step.detail else ""
            lines.append(f"  {marks[step.status]} {when}  [{step.system}] {step.step}{detail}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [
            {**asdict(s), "at": s.at.isoformat() if s.at else None} for s in self.sorted_steps()
        ]
        return data


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _money(amount: dict[str, Any] | None) -> str:
    """A commercetools money as people read it (GBP 12.50), exactly: no float on the way."""
    if not amount:
        return ""
    currency = str(amount.get("currencyCode", ""))
    minor = int(amount.get("centAmount", 0))
    if currency in CURRENCY_FRACTION_DIGITS:
        return display_money(minor, currency)
    digits = int(amount.get("fractionDigits", 2))
    return f"{currency} {to_decimal(minor, digits):,.{digits}f}".strip()


def _commercetools_steps(trace: OrderTrace, order: dict[str, Any], client: Any) -> None:
    trace.steps.append(
        TraceStep(
            _instant(order.get("createdAt")),
            "commercetools",
            "order placed",
            "ok",
            f"total {_money(order.get('totalPrice'))}"
            + (f", store {order['store'].get('key')}" if order.get("store") else ""),
        )
    )
    for reference in (order.get("paymentInfo") or {}).get("payments") or []:
        payment = reference.get("obj") or client.get_or_none(
            f"payments/{quote(str(reference['id']), safe='')}"
        )
        if payment is None:
            continue
        method = (payment.get("paymentMethodInfo") or {}).get("method") or "payment"
        for transaction in payment.get("transactions") or []:
            state = str(transaction.get("state"))
            trace.steps.append(
                TraceStep(
                    _instant(transaction.get("timestamp")),
                    "commercetools",
                    f"payment {transaction.get('type')} {state.lower()}",
                    _TRANSACTION_STATUS.get(state, "info"),
                    f"{method}, {_money(transaction.get('amount'))}",
                )
            )
    for info in order.get("syncInfo") or []:
        trace.steps.append(
            TraceStep(
                _instant(info.get("syncedAt")),
                "commercetools",
                "marked as exported to the ERP",
                "ok",
                f"ERP document {info.get('externalId')}",
            )
        )
    for delivery in all_deliveries(order):
        parcels = [
            f"{(p.get('trackingData') or {}).get('carrier') or 'carrier?'} "
            f"{(p.get('trackingData') or {}).get('trackingId') or 'no tracking id'}"
            for p in delivery.get("parcels") or []
        ]
        trace.steps.append(
            TraceStep(
                _instant(delivery.get("createdAt")),
                "commercetools",
                f"delivery {delivery.get('key') or delivery.get('id')} recorded",
                "ok",
                ", ".join(parcels) or "no parcels",
            )
        )
    if order.get("orderState") == "Cancelled":
        trace.steps.append(
            TraceStep(
                _instant(order.get("lastModifiedAt")), "commercetools", "order cancelled", "info"
            )
        )


def _export_steps(trace: OrderTrace, store: IntegrationStore, port: Any) -> Any:
    entry = store.ledger.get(ORDER_FLOW, trace.document_number)
    if entry is not None:
        trace.steps.append(
            TraceStep(entry.first_seen_at, "integration", "picked up for export to the ERP", "ok")
        )
        if entry.status == "exported":
            trace.steps.append(
                TraceStep(
                    entry.exported_at,
                    "integration",
                    "exported to the ERP",
                    "ok",
                    f"ERP sales order {entry.external_ref} after {entry.attempts} attempt(s)",
                )
            )
        elif entry.status == "failed":
            trace.steps.append(
                TraceStep(
                    entry.last_attempt_at,
                    "integration",
                    "export to the ERP failed",
                    "failed",
                    scrub_text(entry.last_error, limit=300),
                )
            )
    sales_order = port.find_sales_order(trace.document_number)
    if sales_order is not None:
        trace.steps.append(
            TraceStep(
                sales_order.created_at,
                "ERP/WMS",
                f"sales order {sales_order.sales_order_no} created",
                "ok",
                f"status now {sales_order.status}, gross "
                f"{display_money(sales_order.totals.gross_minor, sales_order.currency)} "
                f"({sales_order.totals.gross_minor} minor units)",
            )
        )
    elif entry is not None and entry.status == "exported":
        trace.problems.append(
            f"the integration recorded the export as {entry.external_ref}, but the ERP has no "
            f"sales order for {trace.document_number}"
        )
    return entry, sales_order


def _received_shipments(
    store: IntegrationStore, numbers: set[str], claimed: Iterable[datetime]
) -> pd.DataFrame:
    """The shipments as the integration received them (carrier, tracking, shipped_at)."""
    days: set[str] = set()
    for moment in claimed:
        days.update(
            received_day(moment - timedelta(days=back)) for back in range(SHIPMENT_SEARCH_DAYS)
        )
    frames = []
    for day in sorted(days, reverse=True):
        try:
            frame = store.read_snapshot(SNAPSHOT, partition_key=day)
        except SnapshotNotFound:
            continue
        found = frame[frame["shipment_number"].isin(numbers)]
        if len(found):
            frames.append(found)
    if not frames:
        return pd.DataFrame(columns=list(SHIPMENT_COLUMNS))
    return pd.concat(frames, ignore_index=True).drop_duplicates("shipment_number")


def _dispatch_steps(
    trace: OrderTrace, store: IntegrationStore, order: dict[str, Any] | None, now: datetime
) -> set[str]:
    entries = [e for e in store.ledger.list(DISPATCH_FLOW) if e.entity_id == trace.document_number]
    queued = [
        r
        for r in store.list_exceptions(flow=DISPATCH_FLOW)
        if (r.details or {}).get("order") == trace.document_number
    ]
    numbers = {e.entity_key for e in entries} | {r.entity_key for r in queued}
    shipments = _received_shipments(store, numbers, [e.first_seen_at for e in entries] or [now])
    for row in shipments.itertuples(index=False):
        tracking = ", ".join(json.loads(row.tracking_numbers)) or "no tracking number"
        trace.steps.append(
            TraceStep(
                _instant(row.shipped_at),
                "ERP/WMS",
                f"shipped as {row.shipment_number}",
                "ok",
                f"{row.carrier or 'carrier unknown'}, tracking {tracking}, {row.units} units",
            )
        )
        trace.steps.append(
            TraceStep(
                _instant(row.received_at),
                "integration",
                f"shipment {row.shipment_number} received from the ERP/WMS",
                "ok",
            )
        )
    for entry in entries:
        if entry.status == "exported":
            trace.steps.append(
                TraceStep(
                    entry.exported_at,
                    "integration",
                    f"shipment {entry.entity_key} sent to commercetools",
                    "ok",
                    f"delivery {entry.external_ref.split('/', 1)[-1] if entry.external_ref else ''}",
                )
            )
        elif entry.status == "failed":
            trace.steps.append(
                TraceStep(
                    entry.last_attempt_at,
                    "integration",
                    f"shipment {entry.entity_key} could not be sent to commercetools",
                    "failed",
                    scrub_text(entry.last_error, limit=300),
                )
            )
    if order is not None and len(shipments):
        # The same test as the failed_dispatch_updates check, for this order alone.
        missing = failed_status_updates(
            shipments, {trace.document_number: order}, now, timedelta(0)
        )
        for row in missing.itertuples(index=False):
            reason = (
                f"the ERP/WMS shipped {row.shipment_number} at {row.shipped_at}, but "
                f"commercetools does not show it: {row.problem} "
                f"(shipment state {row.shipment_state or 'not set'})"
            )
            trace.problems.append(f"failed dispatch update: {reason}")
            trace.steps.append(
                TraceStep(now, "commercetools", "dispatch update missing", "failed", reason)
            )
    return numbers


def _exception_steps(trace: OrderTrace, records: Iterable[ExceptionRecord], store: Any) -> None:
    for record in records:
        label = f"exception #{record.id} ({record.flow}, {record.category})"
        for event in store.exception_events(record.id):
            detail = event.detail or {}
            text = detail.get("note") or detail.get("reason") or ""
            status: Status = "failed" if event.action in ("recorded", "recurred") else "info"
            if event.action in ("resolved", "auto_resolved"):
                status = "ok"
            trace.steps.append(
                TraceStep(
                    event.at,
                    "exception queue",
                    f"{label} {event.action.replace('_', ' ')} by {event.actor}",
                    status,
                    scrub_text(str(text), limit=300),
                )
            )
        if record.status != "resolved":
            trace.problems.append(
                f"{record.status} {label}, {record.attempts} attempt(s): "
                f"{scrub_text(record.reason, limit=300)}"
            )


def _where_now(
    trace: OrderTrace, order: dict[str, Any] | None, entry: Any, sales_order: Any
) -> str:
    if order is None:
        return "not found in commercetools (check the order number)"
    if order.get("orderState") == "Cancelled":
        return "cancelled in commercetools"
    if trace.problems:
        return "stalled: " + trace.problems[0]
    deliveries = all_deliveries(order)
    if order.get("shipmentState") in ("Shipped", "Delivered", "Partial") and deliveries:
        last = deliveries[-1]
        tracking = [
            (p.get("trackingData") or {}).get("trackingId") for p in last.get("parcels") or []
        ]
        return (
            f"{order['shipmentState'].lower()} (last delivery {last.get('createdAt')}, tracking "
            f"{', '.join(t for t in tracking if t) or 'none'})"
        )
    if sales_order is not None:
        return f"in the ERP as {sales_order.sales_order_no} ({sales_order.status}), not shipped yet"
    if entry is not None:
        return "picked up by the integration, not in the ERP yet"
    return (
        f"placed, not sent to the ERP yet (payment state {order.get('paymentState') or 'none'}: "
        "only paid or authorised orders are exported)"
    )


def trace_order(
    reference: str, *, client: Any, port: Any, store: IntegrationStore, now: datetime
) -> OrderTrace:
    """The journey of the order with this order number (or commercetools order id)."""
    order = find_order(client, reference)
    if order is not None:
        document = external_document_number(
            SimpleNamespace(order_number=order.get("orderNumber"), id=order["id"])
        )
    else:
        document = reference
    trace = OrderTrace(reference=reference, document_number=document)
    if order is not None:
        trace.order_id = order["id"]
        trace.order_state = order.get("orderState")
        trace.payment_state = order.get("paymentState")
        trace.shipment_state = order.get("shipmentState")
        _commercetools_steps(trace, order, client)
    entry, sales_order = _export_steps(trace, store, port)
    shipment_numbers = _dispatch_steps(trace, store, order, now)
    records = store.list_exceptions(entity_key=document)
    records += [
        r
        for r in store.list_exceptions(flow=DISPATCH_FLOW)
        if r.entity_key in shipment_numbers and r.entity_key != document
    ]
    _exception_steps(trace, sorted(records, key=lambda r: r.id), store)
    if sales_order is not None and sales_order.status == "shipped" and not shipment_numbers:
        trace.problems.append(
            f"the ERP/WMS marks {sales_order.sales_order_no} shipped, but the integration has not "
            "received the shipment yet (dispatch not run, or its sensor is off)"
        )
    trace.where_now = _where_now(trace, order, entry, sales_order)
    return trace
