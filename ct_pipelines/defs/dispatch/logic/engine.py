"""Applying ERP shipments to commercetools orders, once each, with failures queued.

Once per shipment, across crashes and repeats:
1. The ledger (flow ``dispatch``, key = shipment number) records a shipment as applied only after
   commercetools accepted the update; applied shipments are skipped without a request.
2. A run that crashed between the commercetools update and the ledger write repeats the shipment:
   the order already holds the delivery key, so the plan is empty and only the ledger is written.
3. On 409 the order is read again and the plan rebuilt from the fresh order (a shipment applied
   meanwhile, a cancellation), never blindly resent.

Failures (unknown order, cancelled order, a line that does not fit, a payload commercetools
rejects, conflicts or outages beyond retry) go to the exception queue with a readable reason and
stay unapplied in the ledger, so the next run tries them again; success closes the exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, get_args

from ct_pipelines.commercetools.errors import (
    AuthError,
    BadRequestError,
    CommercetoolsError,
    ConcurrentModificationError,
    NotFoundError,
)
from ct_pipelines.defs.dispatch.logic.lookup import find_order
from ct_pipelines.defs.dispatch.logic.plan import DeliveryPlan, DispatchRejected, plan_delivery
from ct_pipelines.erp.port import Shipment
from ct_pipelines.kernel.reports import RunReport
from ct_pipelines.store.ledger import payload_hash

logger = logging.getLogger(__name__)

FLOW = "dispatch"
Outcome = Literal["applied", "state_corrected", "unchanged", "already_recorded", "failed"]


class OrderClient(Protocol):
    def get_or_none(self, path: str, params: Any = None) -> dict[str, Any] | None: ...

    def update(
        self, resource: str, id: str, version: int, actions: Any, *, reread: Any = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class DispatchResult:
    shipment_number: str
    order_reference: str
    outcome: Outcome
    order_id: str | None = None
    delivery_key: str | None = None
    shipment_state: str | None = None
    category: str | None = None
    reason: str | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "shipment_number": self.shipment_number,
            "order": self.order_reference,
            "order_id": self.order_id,
            "outcome": self.outcome,
            "shipment_state": self.shipment_state,
            "delivery_key": self.delivery_key,
            "category": self.category,
            "reason": self.reason,
        }


@dataclass
class DispatchReport(RunReport[DispatchResult]):
    OUTCOMES: ClassVar[tuple[str, ...]] = get_args(Outcome)

    @property
    def failures(self) -> list[DispatchResult]:
        return self.with_outcome("failed")


def shipment_payload_hash(shipment: Shipment) -> str:
    return payload_hash(shipment.model_dump(mode="json"))


class Dispatcher:
    """Applies shipments one by one; share nothing between runs but the store."""

    def __init__(self, client: OrderClient, store: Any, *, provider: str | None = None) -> None:
        self._client = client
        self._store = store
        self._provider = provider

    def run(self, shipments: Iterable[Shipment]) -> DispatchReport:
        batch = list({s.shipment_number: s for s in shipments}.values())
        recorded = self._store.exported_keys(FLOW, [s.shipment_number for s in batch])
        # Only shipments with a queued failure have anything to close (saves a write per shipment).
        queued = {
            record.entity_key
            for record in self._store.list_exceptions(flow=FLOW, status=["open", "retrying"])
        }
        results = []
        for shipment in batch:
            if shipment.shipment_number in recorded:
                results.append(
                    DispatchResult(
                        shipment.shipment_number,
                        shipment.external_document_number,
                        "already_recorded",
                    )
                )
                continue
            results.append(self.apply(shipment, queued=shipment.shipment_number in queued))
        return DispatchReport(results)

    def apply(self, shipment: Shipment, *, queued: bool = True) -> DispatchResult:
        """Apply one shipment; ``queued=False`` promises it has no open exception to close."""
        number, reference = shipment.shipment_number, shipment.external_document_number
        self._store.claim(
            FLOW, number, entity_id=reference, payload_hash=shipment_payload_hash(shipment)
        )
        order_id: str | None = None
        try:
            order = find_order(self._client, reference)
            if order is None:
                raise DispatchRejected(
                    "unknown_order",
                    f"no commercetools order has order number or id {reference!r} "
                    f"(ERP shipment {number})",
                )
            order_id = str(order["id"])
            result = self._update(shipment, order)
        except AuthError:
            # Credentials or scopes: every shipment would fail alike, so fail the run loudly.
            raise
        except DispatchRejected as exc:
            return self._failed(shipment, order_id, exc.category, exc.reason)
        except ConcurrentModificationError as exc:
            return self._failed(
                shipment,
                order_id,
                "version_conflict",
                f"order {reference} kept changing while shipment {number} was applied "
                f"(still conflicting after re-reads): {exc}",
            )
        except NotFoundError as exc:
            return self._failed(
                shipment, order_id, "unknown_order", f"order {reference} disappeared: {exc}"
            )
        except BadRequestError as exc:
            return self._failed(
                shipment,
                order_id,
                "rejected_payload",
                f"commercetools rejected the dispatch of shipment {number} to order "
                f"{reference}: {exc}",
            )
        except CommercetoolsError as exc:
            category = "transient_exhausted" if exc.transient else "commercetools_error"
            return self._failed(
                shipment,
                order_id,
                category,
                f"shipment {number} for order {reference} not applied: {exc}",
            )
        self._store.mark_exported(FLOW, number, f"{result.order_id}/{result.delivery_key}")
        if queued:
            self._store.close_on_success(FLOW, number)
        return result

    def _update(self, shipment: Shipment, order: dict[str, Any]) -> DispatchResult:
        plan = plan_delivery(order, shipment, provider=self._provider)
        final: list[DeliveryPlan] = [plan]

        def reread(fresh: dict[str, Any]) -> list[dict[str, Any]] | None:
            rebuilt = plan_delivery(fresh, shipment, provider=self._provider)
            final.append(rebuilt)
            return list(rebuilt.actions) or None

        state = plan.current_state
        if plan.actions:
            updated = self._client.update(
                "orders", plan.order_id, plan.order_version, plan.actions, reread=reread
            )
            state = updated.get("shipmentState")
        last = final[-1]
        if not last.actions:
            outcome: Outcome = "unchanged"
        elif last.already_applied:
            outcome = "state_corrected"
        else:
            outcome = "applied"
        return DispatchResult(
            shipment.shipment_number,
            shipment.external_document_number,
            outcome,
            order_id=last.order_id,
            delivery_key=last.delivery_key,
            shipment_state=state,
        )

    def _failed(
        self, shipment: Shipment, order_id: str | None, category: str, reason: str
    ) -> DispatchResult:
        number, reference = shipment.shipment_number, shipment.external_document_number
        logger.warning("dispatch of %s to %s failed: %s", number, reference, category)
        self._store.mark_failed(FLOW, number, reason)
        self._store.record_exception(
            flow=FLOW,
            entity_key=number,
            category=category,
            reason=reason,
            payload_ref=f"order:{order_id}" if order_id else f"erp-shipment:{number}",
            details={
                "order": reference,
                "order_id": order_id,
                "shipped_at": shipment.shipped_at,
                "lines": [line.model_dump() for line in shipment.lines],
                "carrier": shipment.carrier,
                "tracking_numbers": list(shipment.tracking_numbers),
            },
        )
        return DispatchResult(
            number, reference, "failed", order_id=order_id, category=category, reason=reason
        )
