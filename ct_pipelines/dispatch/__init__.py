"""Dispatch: shipments from the ERP/WMS recorded on commercetools orders (no Dagster here)."""

from ct_pipelines.dispatch.engine import FLOW, Dispatcher, DispatchReport, DispatchResult
from ct_pipelines.dispatch.keys import delivery_key, parcel_key
from ct_pipelines.dispatch.plan import DeliveryPlan, DispatchRejected, plan_delivery

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
