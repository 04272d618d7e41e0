"""Dispatch: shipments from the ERP/WMS become deliveries, tracking and Shipped in commercetools."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from ct_pipelines.defs import systems
from ct_pipelines.defs.dispatch.logic.engine import FLOW, Dispatcher
from ct_pipelines.defs.dispatch.logic.shipments import (
    SHIPMENT_COLUMNS,
    SNAPSHOT,
    empty_shipments,
    merge_shipments,
    read_day,
    received_day,
    recent_shipments,
    shipments_frame,
    shipments_from_frame,
)
from ct_pipelines.defs.metadata import frame_metadata, markdown_table
from ct_pipelines.defs.resources import CommercetoolsResource, ErpResource, IntegrationStoreResource
from ct_pipelines.defs.step_log import event_log_for_step

# The ERP shipments cursor: moved only after the shipments it covers are stored.
SHIPMENTS_CURSOR = "dispatch.erp_shipments"

DISPATCH_COLUMNS = {
    "shipment_number": "ERP/WMS shipment number",
    "order": "commercetools orderNumber (or order id) the ERP shipped",
    "order_id": "commercetools order id, when the order was found",
    "outcome": "applied, state_corrected, unchanged (already in commercetools), already_recorded "
    "(skipped: the ledger has it) or failed (queued)",
    "shipment_state": "the order's shipmentState after the update",
    "delivery_key": "key of the delivery holding the shipment",
    "category": "why it failed (unknown_order, order_cancelled, version_conflict, ...)",
    "reason": "readable failure reason, as on the exception queue",
}


class ErpShipmentsConfig(dg.Config):
    page_size: int = 500
    # A backlog (first run, an outage) spreads over runs instead of one long step.
    max_shipments_per_run: int = 10_000


@dg.asset(
    group_name=FLOW,
    kinds={"python"},
    description="Shipments the ERP/WMS reported since the last run (order, lines, carrier, "
    "tracking), stored per day received; the ERP cursor moves only once they are stored.",
    deps=[systems.ERP_SHIPMENTS],
    owners=[systems.WAREHOUSE],
)
def erp_shipments(
    context: dg.AssetExecutionContext,
    config: ErpShipmentsConfig,
    erp: ErpResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    cursor = integration_store.get_cursor(SHIPMENTS_CURSOR)
    received_at = datetime.now(UTC)
    day = received_day(received_at)
    received: list[pd.DataFrame] = []
    count = 0
    stored = read_day(integration_store, day)
    with event_log_for_step(context), erp.open_port() as port:
        while count < config.max_shipments_per_run:
            page = port.shipments_since(cursor, limit=config.page_size)
            if page.shipments:
                new = shipments_frame(page.shipments, received_at)
                stored = merge_shipments(stored, new)
                integration_store.write_snapshot(
                    SNAPSHOT, stored, partition_key=day, taken_at=received_at
                )
                received.append(new)
                count += len(page.shipments)
            if page.next_cursor is not None and page.next_cursor != cursor:
                # After the write: a crash before this line re-reads the page, which merges away.
                integration_store.set_cursor(SHIPMENTS_CURSOR, page.next_cursor)
                cursor = page.next_cursor
            if not page.has_more or not page.shipments:
                break
    frame = pd.concat(received, ignore_index=True) if received else empty_shipments()
    context.log.info("erp_shipments: %d new shipments, cursor %s", len(frame), cursor)
    metadata = frame_metadata(frame, descriptions=SHIPMENT_COLUMNS)
    metadata.update(
        {
            "source": erp.describe(),
            "erp_cursor": cursor or "",
            "units_shipped": int(frame["units"].sum()) if len(frame) else 0,
            "orders": int(frame["external_document_number"].nunique()) if len(frame) else 0,
            "without_tracking": int((frame["tracking_numbers"] == "[]").sum()) if len(frame) else 0,
            "more_waiting": count >= config.max_shipments_per_run,
        }
    )
    return dg.MaterializeResult(metadata=metadata)


class DispatchConfig(dg.Config):
    """How shipments reach commercetools; the defaults suit the sandbox and a UK shop."""

    # Unapplied shipments received within this many days are (re)tried by every run.
    retry_days: int = 7
    # TrackingData.provider on every parcel; empty leaves it out.
    tracking_provider: str = "ERP/WMS"
    max_shipments_per_run: int = 5_000


@dg.asset(
    group_name=FLOW,
    kinds={"commercetools", "python"},
    deps=[erp_shipments],
    pool="commercetools_writes",
    description="Each ERP shipment recorded once on its commercetools order: a delivery with "
    "tracked parcels and shipmentState Shipped or Partial. Failures go to the exception queue "
    "and are retried by later runs.",
    owners=[systems.WAREHOUSE],
)
def commercetools_deliveries(
    context: dg.AssetExecutionContext,
    config: DispatchConfig,
    commercetools: CommercetoolsResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    window = recent_shipments(integration_store, config.retry_days, datetime.now(UTC))
    recorded = integration_store.exported_keys(FLOW, window["shipment_number"])
    todo = window[~window["shipment_number"].isin(recorded)].sort_values(
        ["shipped_at", "shipment_number"]
    )
    todo = todo.head(config.max_shipments_per_run)
    with event_log_for_step(context), commercetools.open_client() as client:
        dispatcher = Dispatcher(
            client, integration_store, provider=config.tracking_provider or None
        )
        report = dispatcher.run(shipments_from_frame(todo))
    frame = pd.DataFrame([r.as_row() for r in report.results], columns=list(DISPATCH_COLUMNS))
    counts = report.counts
    context.log.info("commercetools_deliveries: %s", counts)
    for failure in report.failures[:20]:
        context.log.warning(
            "shipment %s for order %s queued: %s",
            failure.shipment_number,
            failure.order_reference,
            failure.category,
        )
    metadata = frame_metadata(frame.drop(columns=["reason"]), descriptions=DISPATCH_COLUMNS)
    metadata["dagster/column_schema"] = frame_metadata(frame, descriptions=DISPATCH_COLUMNS)[
        "dagster/column_schema"
    ]
    metadata.update(
        {
            "target": commercetools.describe(),
            **{f"shipments_{name}": value for name, value in counts.items()},
            "already_recorded_in_window": len(recorded),
            "shipments_waiting": max(len(window) - len(recorded) - len(todo), 0),
            "failures": markdown_table(
                frame[frame["outcome"] == "failed"],
                50,
                columns=["shipment_number", "order", "category", "reason"],
            ),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


dispatch_job = dg.define_asset_job(
    "dispatch_job",
    selection=dg.AssetSelection.assets(erp_shipments, commercetools_deliveries),
    description="Reads new ERP shipments and records them on the commercetools orders.",
)
