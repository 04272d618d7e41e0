"""Dispatch: shipments from the ERP/WMS recorded on commercetools orders (no Dagster here)."""

from ct_pipelines.defs.dispatch.logic.engine import FLOW, Dispatcher, DispatchReport, DispatchResult
from ct_pipelines.defs.dispatch.logic.keys import delivery_key, parcel_key
from ct_pipelines.defs.dispatch.logic.plan import DeliveryPlan, DispatchRejected, plan_delivery

__all__ = [
    "FLOW",
    "DeliveryPlan",
    "DispatchRejected",
    "DispatchReport",
    "DispatchResult",
    "Dispatcher",
    "delivery_key",
    "parcel_key",
    "plan_delivery",
]
