"""Finding commercetools orders by the ERP's external document number.

The ERP knows an order by its orderNumber, or by the order id when the order has none (made
35 characters long by dropping the hyphens; see ``mapping.orders.external_document_number``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from ct_pipelines.kernel.documents import order_id_from_document_number

# Values per `in (...)` predicate: keeps the query string well inside URL limits.
BATCH_SIZE = 100


class OrderGetter(Protocol):
    def get_or_none(self, path: str) -> dict[str, Any] | None: ...


class OrderReader(OrderGetter, Protocol):
    def query(
        self,
        resource: str,
        *,
        where: str | None = None,
        variables: Mapping[str, str] | None = None,
        limit: int | None = None,
        with_total: bool | None = None,
    ) -> dict[str, Any]: ...


def find_order(client: OrderGetter, reference: str) -> dict[str, Any] | None:
    """GET /orders/order-number={reference}, falling back to GET /orders/{id}."""
    order = client.get_or_none(f"orders/order-number={quote(reference, safe='')}")
    if order is not None:
        return order
    order_id = order_id_from_document_number(reference) or reference
    return client.get_or_none(f"orders/{quote(order_id, safe='')}")


def _in_predicate(field: str, values: list[str]) -> tuple[str, dict[str, str]]:
    names = [f"v{i}" for i in range(len(values))]
    predicate = f"{field} in ({', '.join(':' + n for n in names)})"
    return predicate, dict(zip(names, values, strict=True))


def _query_by(client: OrderReader, field: str, values: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(values), BATCH_SIZE):
        chunk = values[start : start + BATCH_SIZE]
        predicate, variables = _in_predicate(field, chunk)
        found.extend(
            client.query(
                "orders", where=predicate, variables=variables, limit=len(chunk), with_total=False
            )["results"]
        )
    return found


def find_orders(client: OrderReader, references: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Many orders at once: one query per 100 order numbers, then per 100 ids for the rest."""
    wanted = sorted(set(references))
    result: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
    for order in _query_by(client, "orderNumber", wanted):
        if order.get("orderNumber") in result:
            result[order["orderNumber"]] = order
    by_id = {
        order_id_from_document_number(ref) or ref: ref for ref in wanted if result[ref] is None
    }
    for order in _query_by(client, "id", sorted(by_id)):
        result[by_id[order["id"]]] = order
    return result
