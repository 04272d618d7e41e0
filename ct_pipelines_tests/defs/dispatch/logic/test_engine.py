from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from ct_pipelines.commercetools.errors import (
    AuthError,
    BadRequestError,
    ConcurrentModificationError,
    ServiceUnavailableError,
)
from ct_pipelines.defs.dispatch.logic.engine import FLOW, Dispatcher
from ct_pipelines.defs.dispatch.logic.lookup import find_orders
from ct_pipelines.defs.dispatch.logic.plan import plan_delivery
from ct_pipelines.store import IntegrationStore
from ct_pipelines_tests.defs.dispatch.logic.orders import apply_actions, order, shipment


class FakeOrders:
    """Orders by id behind the calls the dispatcher makes; ``fail_next`` injects errors."""

    def __init__(self, *docs: dict[str, Any], conflicts_left: int = 5) -> None:
        self.orders = {d["id"]: copy.deepcopy(d) for d in docs}
        self.updates: list[list[dict[str, Any]]] = []
        self.fail_next: list[Exception] = []
        self.before_update: Callable[[dict[str, Any]], None] | None = None
        self.conflicts_left = conflicts_left

    def get_or_none(self, path: str, params: Any = None) -> dict[str, Any] | None:
        path = unquote(path)
        if path.startswith("orders/order-number="):
            number = path.removeprefix("orders/order-number=")
            found = [o for o in self.orders.values() if o.get("orderNumber") == number]
            return copy.deepcopy(found[0]) if found else None
        doc = self.orders.get(path.removeprefix("orders/"))
        return copy.deepcopy(doc) if doc else None

    def query(self, resource: str, *, where: str, variables: dict[str, str], **_: Any) -> dict:
        field = where.split(" ", 1)[0]
        values = set(variables.values())
        results = [o for o in self.orders.values() if o.get(field) in values]
        return {"results": copy.deepcopy(results)}

    def update(
        self,
        resource: str,
        id: str,
        version: int,
        actions: Any,
        *,
        reread: Callable[[dict[str, Any]], list[dict[str, Any]] | None] | None = None,
    ) -> dict[str, Any]:
        if self.fail_next:
            raise self.fail_next.pop(0)
        actions = list(actions)
        while True:
            if self.before_update is not None:
                self.before_update(self.orders[id])
                self.before_update = None
            doc = self.orders[id]
            if doc["version"] == version:
                break
            if self.conflicts_left == 0:
                raise ConcurrentModificationError(409, "version mismatch")
            self.conflicts_left -= 1
            assert reread is not None
            rebuilt = reread(copy.deepcopy(doc))
            if not rebuilt:
                return copy.deepcopy(doc)
            actions, version = rebuilt, doc["version"]
        self.updates.append(actions)
        self.orders[id] = apply_actions(doc, actions)
        return copy.deepcopy(self.orders[id])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IntegrationStore]:
    with IntegrationStore(f"sqlite:///{tmp_path / 'store.db'}") as s:
        s.migrate()
        yield s


def test_full_shipment_is_applied_recorded_and_not_sent_again(store: IntegrationStore) -> None:
    client = FakeOrders(order())
    dispatcher = Dispatcher(client, store, provider="ERP/WMS")

    first = dispatcher.run([shipment()])
    second = dispatcher.run([shipment()])

    assert [r.outcome for r in first.results] == ["applied"]
    assert first.results[0].shipment_state == "Shipped"
    assert [r.outcome for r in second.results] == ["already_recorded"]
    assert len(client.updates) == 1
    entry = store.ledger.get(FLOW, "SH0000042")
    assert entry is not None and entry.is_exported
    assert entry.external_ref == f"{order()['id']}/shipment-SH0000042"


def test_partial_shipment_then_the_rest(store: IntegrationStore) -> None:
    client = FakeOrders(order())
    dispatcher = Dispatcher(client, store)

    dispatcher.run([shipment("SH1", [("MUG-001", 1)])])
    assert client.orders[order()["id"]]["shipmentState"] == "Partial"

    report = dispatcher.run([shipment("SH2", [("MUG-001", 1), ("TEE-M", 1)])])
    assert report.counts["applied"] == 1
    doc = client.orders[order()["id"]]
    assert doc["shipmentState"] == "Shipped"
    assert [d["key"] for d in doc["shippingInfo"]["deliveries"]] == [
        "shipment-SH1",
        "shipment-SH2",
    ]


def test_crash_after_the_update_repeats_as_a_no_op(store: IntegrationStore, tmp_path: Path) -> None:
    client = FakeOrders(order())
    Dispatcher(client, store).apply(shipment())
    # The run died before its ledger write: a store without the record sees the shipment again.
    with IntegrationStore(f"sqlite:///{tmp_path / 'lost.db'}") as lost:
        lost.migrate()

        result = Dispatcher(client, lost).apply(shipment())

        assert result.outcome == "unchanged"
        assert lost.ledger.get(FLOW, "SH0000042").is_exported  # type: ignore[union-attr]
    assert len(client.updates) == 1


def test_unknown_order_is_queued_and_succeeds_on_a_later_run(store: IntegrationStore) -> None:
    client = FakeOrders()
    dispatcher = Dispatcher(client, store)

    failed = dispatcher.run([shipment()])

    assert failed.results[0].outcome == "failed"
    [queued] = store.list_exceptions(flow=FLOW, status="open")
    assert queued.entity_key == "SH0000042"
    assert queued.category == "unknown_order"
    assert "UK-1001" in queued.reason
    assert queued.details is not None and queued.details["order"] == "UK-1001"

    client.orders[order()["id"]] = order()  # the order replicates late
    retried = dispatcher.run([shipment()])

    assert retried.results[0].outcome == "applied"
    assert store.list_exceptions(flow=FLOW, status=["open", "retrying"]) == []
    assert store.get_exception(queued.id).status == "resolved"


def test_order_found_by_id_when_it_has_no_order_number(store: IntegrationStore) -> None:
    doc = order(order_number=None)
    client = FakeOrders(doc)
    dehyphenated = doc["id"].replace("-", "")

    result = Dispatcher(client, store).apply(shipment(reference=dehyphenated))

    assert result.outcome == "applied" and result.order_id == doc["id"]
    assert find_orders(client, [dehyphenated, "UK-404"]) == {
        dehyphenated: client.orders[doc["id"]],
        "UK-404": None,
    }


def test_conflict_rebuilds_from_the_fresh_order(store: IntegrationStore) -> None:
    client = FakeOrders(order())

    def someone_ships_the_first_mug(doc: dict[str, Any]) -> None:
        client.orders[doc["id"]] = apply_actions(
            doc,
            [
                {
                    "action": "addDelivery",
                    "deliveryKey": "shipment-SH0",
                    "items": [{"id": "li-mug", "quantity": 1}],
                }
            ],
        )

    client.before_update = someone_ships_the_first_mug
    result = Dispatcher(client, store).apply(shipment("SH1", [("MUG-001", 1), ("TEE-M", 1)]))

    assert result.outcome == "applied"
    doc = client.orders[order()["id"]]
    assert doc["shipmentState"] == "Shipped"  # SH0 + SH1 together complete the order


def test_conflict_with_the_same_shipment_applied_meanwhile_is_unchanged(
    store: IntegrationStore,
) -> None:
    client = FakeOrders(order())

    def other_worker_applies(doc: dict[str, Any]) -> None:
        client.orders[doc["id"]] = apply_actions(doc, list(plan_delivery(doc, shipment()).actions))

    client.before_update = other_worker_applies
    result = Dispatcher(client, store).apply(shipment())

    assert result.outcome == "unchanged"
    assert client.updates == []
    assert len(client.orders[order()["id"]]["shippingInfo"]["deliveries"]) == 1


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (ConcurrentModificationError(409, "still changing"), "version_conflict"),
        (
            BadRequestError(400, "bad", [{"code": "InvalidOperation", "message": "bad"}]),
            "rejected_payload",
        ),
        (ServiceUnavailableError(503, "down"), "transient_exhausted"),
    ],
)
def test_update_failures_are_queued_with_a_readable_reason(
    store: IntegrationStore, error: Exception, category: str
) -> None:
    client = FakeOrders(order())
    client.fail_next.append(error)

    result = Dispatcher(client, store).apply(shipment())

    assert result.outcome == "failed" and result.category == category
    [queued] = store.list_exceptions(flow=FLOW)
    assert queued.category == category
    assert "SH0000042" in queued.reason and "UK-1001" in queued.reason
    assert queued.payload_ref == f"order:{order()['id']}"
    assert store.ledger.get(FLOW, "SH0000042").status == "failed"  # type: ignore[union-attr]


def test_cancelled_order_is_queued(store: IntegrationStore) -> None:
    client = FakeOrders(order(order_state="Cancelled"))

    result = Dispatcher(client, store).apply(shipment())

    assert result.category == "order_cancelled"
    assert client.updates == []


def test_auth_failure_fails_the_run_instead_of_queueing_every_shipment(
    store: IntegrationStore,
) -> None:
    client = FakeOrders(order())
    client.fail_next.append(AuthError(403, "insufficient_scope"))

    with pytest.raises(AuthError):
        Dispatcher(client, store).run([shipment()])
    assert store.list_exceptions(flow=FLOW) == []
