"""A day's raw commercetools orders as batch rows, with bad input set aside, never fatal.

Each order is parsed on its own: one malformed document (a float amount, a missing field) becomes
a reject with a readable reason, and the rest of the day goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import ValidationError

from ct_pipelines.commercetools.models import Order
from ct_pipelines.defs.order_to_cash.logic.engine import ExportItem
from ct_pipelines.defs.order_to_cash.logic.orders import (
    OrderBatchRow,
    order_batch_row,
    tax_rounding_differences,
)
from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping, to_sales_order
from ct_pipelines.erp.port import SalesOrderDraft
from ct_pipelines.kernel.documents import external_document_number
from ct_pipelines.kernel.eligibility import EligibilityRule
from ct_pipelines.kernel.tax import MappingError
from ct_pipelines.store import SnapshotNotFound

BATCH_COLUMNS = [
    *OrderBatchRow.__dataclass_fields__,
    "last_modified_at",
    "sales_order",
    "mapping_error_category",
    "mapping_error",
    "mapping_error_sku",
    "exported_marker",
    "tax_rounding_diff",
    "tax_rounding_abs_minor",
]


@dataclass(frozen=True)
class Reject:
    """An order that could not even be read: it goes on the exception queue with this reason."""

    entity_key: str
    order_id: str
    order_version: int | None
    reason: str


@dataclass
class Batch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def _validation_reason(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where}: {error['msg']}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "order does not match the commercetools Order schema: " + "; ".join(problems) + more


def batch_row(
    order: Order,
    tz: ZoneInfo,
    rule: EligibilityRule,
    mapping: SalesOrderMapping,
    channel_id: str | None,
) -> dict[str, Any]:
    """One order as a batch row: header, eligibility, and the ERP sales order or why there is none."""
    row = asdict(order_batch_row(order, tz, rule))
    row["problems"] = "; ".join(row["problems"]) or None
    row["last_modified_at"] = order.last_modified_at.isoformat()
    row["exported_marker"] = any(
        info.channel is not None and info.channel.id == channel_id for info in order.sync_info or []
    )
    differences = tax_rounding_differences(order)
    row["tax_rounding_diff"] = json.dumps(differences) if differences else None
    row["tax_rounding_abs_minor"] = sum(abs(v) for v in differences.values())
    row.update(
        sales_order=None, mapping_error_category=None, mapping_error=None, mapping_error_sku=None
    )
    try:
        draft = to_sales_order(order, mapping)
    except MappingError as exc:
        row.update(
            mapping_error_category=exc.category, mapping_error=exc.reason, mapping_error_sku=exc.sku
        )
    else:
        if draft.lines_add_up():
            row["sales_order"] = draft.model_dump_json()
        else:
            row.update(
                mapping_error_category="validation",
                mapping_error="sales order lines do not add up to the order totals "
                f"(lines {sum(line.gross_minor for line in draft.lines)}, order {draft.totals.gross_minor} "
                f"{draft.currency} minor units)",
            )
    return row


def build_batch(
    docs: Iterable[dict[str, Any]],
    *,
    tz: ZoneInfo,
    rule: EligibilityRule,
    mapping: SalesOrderMapping,
    channel_id: str | None,
) -> Batch:
    batch = Batch()
    for doc in docs:
        order_id = str(doc.get("id") or "<no id>")
        number = str(doc.get("orderNumber") or "")
        key = number if number.strip() else order_id
        version = doc.get("version") if isinstance(doc.get("version"), int) else None
        try:
            order = Order.model_validate(doc)
            key = external_document_number(order, mapping.max_document_number_length)
            batch.rows.append(batch_row(order, tz, rule, mapping, channel_id))
        except ValidationError as exc:
            batch.rejects.append(Reject(key, order_id, version, _validation_reason(exc)))
        except (
            MappingError,
            ValueError,
            ArithmeticError,
            TypeError,
            AttributeError,
            KeyError,
        ) as exc:
            batch.rejects.append(
                Reject(
                    key,
                    order_id,
                    version,
                    f"order could not be read into a batch row: {type(exc).__name__}: {exc}",
                )
            )
    return batch


def park_rejects(store: Any, flow: str, rejects: Iterable[Reject]) -> int:
    """Put unreadable orders on the exception queue; the rest of the batch goes on."""
    count = 0
    for reject in rejects:
        store.record_exception(
            flow=flow,
            entity_key=reject.entity_key,
            category="invalid_order",
            reason=reject.reason,
            payload_ref=f"order:{reject.order_id}@v{reject.order_version}",
        )
        count += 1
    return count


def batch_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=BATCH_COLUMNS)


def read_batch(integration_store: Any, partition_key: str) -> pd.DataFrame:
    """A day's order batch, or an empty one when that day was never materialised."""
    try:
        return integration_store.read_snapshot("order_batches", partition_key=partition_key)
    except SnapshotNotFound:
        return batch_frame([])


def read_batch_orders(
    integration_store: Any, partition_key: str, order_ids: list[str]
) -> pd.DataFrame:
    """Only these orders' rows of a day's batch (an incremental export), or an empty batch."""
    try:
        return integration_store.read_snapshot_rows(
            "order_batches", partition_key, key="order_id", values=order_ids
        )
    except SnapshotNotFound:
        return batch_frame([])


def export_items(frame: pd.DataFrame) -> list[ExportItem]:
    """Eligible orders of a batch in the order they were placed (FIFO), with draft or error."""
    eligible = frame[frame["eligible"].astype(bool)].sort_values(["created_at", "order_id"])
    items = []
    for row in eligible.itertuples(index=False):
        draft = (
            SalesOrderDraft.model_validate_json(row.sales_order)
            if isinstance(row.sales_order, str)
            else None
        )
        items.append(
            ExportItem(
                key=row.external_document_number,
                order_id=row.order_id,
                order_version=int(row.order_version),
                created_at=row.created_at,
                draft=draft,
                error_category=row.mapping_error_category if draft is None else None,
                error_reason=row.mapping_error if draft is None else None,
                sku=row.mapping_error_sku if draft is None else None,
            )
        )
    return items
