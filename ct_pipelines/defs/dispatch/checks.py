"""Dispatch checks against commercetools itself, not against what the pipeline believes it did."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from ct_pipelines.defs.dispatch import assets as dispatch_assets
from ct_pipelines.defs.dispatch.logic.audit import (
    deliveries_without_tracking,
    failed_status_updates,
)
from ct_pipelines.defs.dispatch.logic.engine import FLOW
from ct_pipelines.defs.dispatch.logic.lookup import find_orders
from ct_pipelines.defs.dispatch.logic.plan import all_deliveries
from ct_pipelines.defs.dispatch.logic.shipments import recent_shipments
from ct_pipelines.defs.metadata import check_text, markdown_table
from ct_pipelines.defs.resources import CommercetoolsResource, IntegrationStoreResource


class DispatchCheckConfig(dg.Config):
    # Shipments received this many days back are compared with commercetools.
    lookback_days: int = 2
    # Shipped longer ago than this and still not visible in commercetools: a failed update.
    failed_after_minutes: int = 30


def _orders_for(
    commercetools: CommercetoolsResource, shipments: pd.DataFrame
) -> dict[str, dict[str, Any] | None]:
    if shipments.empty:
        return {}
    with commercetools.open_client() as client:
        return find_orders(client, shipments["external_document_number"])


@dg.asset_check(
    asset=dispatch_assets.commercetools_deliveries,
    description="Shipped in the ERP more than `failed_after_minutes` (default 30) ago but the "
    "commercetools order does not "
    "show it: no delivery for the shipment, or shipmentState not Shipped, Partial or Delivered.",
)
def failed_dispatch_updates(
    config: DispatchCheckConfig,
    commercetools: CommercetoolsResource,
    store: IntegrationStoreResource,
) -> dg.AssetCheckResult:
    integration_store = store.get_store()
    now = datetime.now(UTC)
    shipments = recent_shipments(integration_store, config.lookback_days, now)
    orders = _orders_for(commercetools, shipments)
    failed = failed_status_updates(
        shipments, orders, now, timedelta(minutes=config.failed_after_minutes)
    )
    queued = integration_store.list_exceptions(flow=FLOW, status=["open", "retrying"])
    return dg.AssetCheckResult(
        passed=failed.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text(
            "failed_dispatch_updates",
            failed.empty,
            "every shipment is visible in commercetools",
            f"{len(failed)} shipments shipped more than {config.failed_after_minutes} "
            "minutes ago are not visible in commercetools, orders "
            + ", ".join(failed["order"].head(10)),
            "trace one of the orders (`ct-pipelines trace <order>`); if its shipment is on the "
            "exception queue, fix the reason and retry, else run dispatch_job and tell IT if "
            "it stays",
        ),
        metadata={
            "failed_status_updates": len(failed),
            "orders_affected": int(failed["order"].nunique()),
            "oldest_age_minutes": int(failed["age_minutes"].max()) if len(failed) else 0,
            "shipments_checked": len(shipments),
            "queued_dispatch_failures": len(queued),
            "order_numbers": dg.MetadataValue.json(sorted(set(failed["order"]))[:100]),
            "orders": markdown_table(failed, 25),
        },
    )


@dg.asset_check(
    asset=dispatch_assets.commercetools_deliveries,
    description="Deliveries on recently shipped orders with no parcel carrying a tracking id, "
    "so the shipping confirmation has nothing to follow.",
)
def deliveries_without_tracking_ids(
    config: DispatchCheckConfig,
    commercetools: CommercetoolsResource,
    store: IntegrationStoreResource,
) -> dg.AssetCheckResult:
    shipments = recent_shipments(store.get_store(), config.lookback_days, datetime.now(UTC))
    orders = _orders_for(commercetools, shipments)
    untracked = deliveries_without_tracking(orders)
    deliveries = sum(len(all_deliveries(o)) for o in orders.values() if o is not None)
    return dg.AssetCheckResult(
        passed=untracked.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=check_text(
            "deliveries_without_tracking_ids",
            untracked.empty,
            f"every one of {deliveries} recent deliveries has a tracking id",
            f"{len(untracked)} of {deliveries} recent deliveries have no tracking id, orders "
            + ", ".join(str(o) for o in untracked["order"].head(10)),
            "ask the warehouse why the carrier's tracking number was not captured in the WMS "
            "and correct it there",
        ),
        metadata={
            "deliveries_without_tracking": len(untracked),
            "orders_affected": int(untracked["order"].nunique()),
            "deliveries_checked": deliveries,
            "share_without_tracking": round(len(untracked) / deliveries, 4) if deliveries else 0.0,
            "orders": markdown_table(untracked, 25),
        },
    )
