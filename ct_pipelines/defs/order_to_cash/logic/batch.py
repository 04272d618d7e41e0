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

from pydantic import ValidationError

from ct_pipelines.commercetools.models import Order
from ct_pipelines.defs.order_to_cash.logic.orders import (
    EligibilityRule,
    OrderBatchRow,
    external_document_number,
    order_batch_row,
    tax_rounding_differences,
)
from ct_pipelines.defs.order_to_cash.logic.sales_orders import (
    MappingError,
    SalesOrderMapping,
    to_sales_order,
)

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
