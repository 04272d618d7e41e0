"""Order-to-cash: each shop day's orders as the ERP will receive them, then into the ERP once."""

import json
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from ct_pipelines.defs.metadata import frame_metadata, markdown_table
from ct_pipelines.defs.order_rules import OrderRulesConfig
from ct_pipelines.defs.order_to_cash.logic.batch import (
    batch_frame,
    build_batch,
    export_items,
    park_rejects,
    read_batch,
)
from ct_pipelines.defs.order_to_cash.logic.engine import (
    FLOW,
    ExportOptions,
    OrderExporter,
)
from ct_pipelines.defs.order_to_cash.logic.orders import as_utc_literal, created_window_predicate
from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
from ct_pipelines.defs.order_to_cash.logic.stuck_runs import WORKER_TAG, current_worker
from ct_pipelines.defs.order_to_cash.logic.write_back import (
    WriteBackMode,
    export_channel_id,
    write_back,
)
from ct_pipelines.defs.partitions import order_days
from ct_pipelines.defs.resources import CommercetoolsResource, ErpResource, IntegrationStoreResource
from ct_pipelines.kernel.scrub import scrub
from ct_pipelines.kernel.shop import SHOP

ORDER_BATCH_COLUMNS = {
    "order_id": "commercetools order id",
    "external_document_number": "orderNumber, or the order id when it has none",
    "order_date": f"creation date in the shop's time zone ({SHOP.timezone})",
    "net_minor": "order net total in minor units of `currency`",
    "tax_minor": "order tax total in minor units",
    "gross_minor": "order gross total in minor units",
    "eligible": "paid or authorised and not cancelled",
    "sales_order": "the sales order as the ERP will receive it (JSON), empty when it cannot be mapped",
    "mapping_error": "why the order cannot be mapped (unknown SKU, tax code, validation)",
    "exported_marker": "commercetools already carries the export marker (sync info)",
}


class OrderToCashConfig(OrderRulesConfig):
    """How orders become ERP sales orders; the defaults suit a UK shop on the sandbox ERP.

    Eligibility and the tax-code table are the shared order rules (``OrderRulesConfig``).
    """

    # Custom line items (no SKU) by slug or key -> ERP service item; others go to default_custom_item.
    custom_items: dict[str, str] = {"gift-wrap": "GIFT-WRAP", "engraving": "ENGRAVING"}
    default_custom_item: str = "CUSTOM"
    shipping_item: str = "SHIPPING"
    discount_item: str = "DISCOUNT"
    max_item_number_length: int = 20
    max_document_number_length: int = 35
    export_channel_key: str = "erp-order-export"

    def mapping(self, item_numbers: dict[str, str]) -> SalesOrderMapping:
        return SalesOrderMapping(
            item_numbers=item_numbers,
            tax_codes=self.tax_codes(),
            custom_items=dict(self.custom_items),
            default_custom_item=self.default_custom_item,
            shipping_item=self.shipping_item,
            discount_item=self.discount_item,
            max_item_number_length=self.max_item_number_length,
            max_document_number_length=self.max_document_number_length,
            shop_timezone=SHOP.timezone,
        )


@dg.asset(
    group_name=FLOW,
    kinds={"commercetools", "python"},
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Each shop day's commercetools orders as the ERP will receive them.",
)
def order_batches(
    context: dg.AssetExecutionContext,
    config: OrderToCashConfig,
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    taken_at = datetime.now(UTC)
    with erp.open_port() as port:
        mapping = config.mapping({item.sku: item.item_no for item in port.iter_items()})
    frames: list[pd.DataFrame] = []
    unreadable = 0
    with commercetools.open_client() as client:
        channel_id = export_channel_id(client, config.export_channel_key)
        # A single run may cover a backfill range: each day is read and replaced on its own,
        # so re-running any day is safe.
        for key in context.partition_keys:
            window = order_days.time_window_for_partition_key(key)
            batch = build_batch(
                client.query_all(
                    "orders",
                    where=[created_window_predicate()],
                    variables={
                        "windowStart": as_utc_literal(window.start),
                        "windowEnd": as_utc_literal(window.end),
                    },
                    expand=["paymentInfo.payments[*]"],
                ),
                tz=SHOP.tz,
                rule=config.rule(),
                mapping=mapping,
                channel_id=channel_id,
            )
            # Bad input must not sink the day: it goes on the exception queue.
            unreadable += park_rejects(integration_store, FLOW, batch.rejects)
            rows = batch.rows
            frame = batch_frame(rows)
            integration_store.write_snapshot(
                "order_batches", frame, partition_key=key, taken_at=taken_at
            )
            context.log.info("order_batches %s: %d orders", key, len(frame))
            frames.append(frame)

    combined = pd.concat(frames, ignore_index=True) if frames else batch_frame([])
    eligible = int(combined["eligible"].sum()) if len(combined) else 0
    preview = combined.drop(columns=["sales_order"])
    metadata = frame_metadata(preview, descriptions=ORDER_BATCH_COLUMNS)
    metadata["dagster/column_schema"] = frame_metadata(combined, descriptions=ORDER_BATCH_COLUMNS)[
        "dagster/column_schema"
    ]
    metadata.update(
        {
            "source": commercetools.describe(),
            "partitions": len(context.partition_keys),
            "eligible_orders": eligible,
            "ineligible_orders": len(combined) - eligible,
            "unmappable_orders": int(combined["mapping_error"].notna().sum()),
            "unreadable_orders": unreadable,
            "gross_minor_by_currency": dg.MetadataValue.json(
                {
                    str(k): int(v)
                    for k, v in combined.groupby("currency")["gross_minor"].sum().items()
                }
            ),
            "orders_by_payment_state": dg.MetadataValue.json(
                {
                    str(k): int(v)
                    for k, v in combined["payment_state"].fillna("none").value_counts().items()
                }
            ),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


class ErpExportConfig(dg.Config):
    """Throttling for ERP writes: a flash sale queues here instead of overwhelming the ERP."""

    workers: int = 6
    max_in_flight_writes: int = 4
    rate_per_second: float = 50.0
    burst: int = 4
    max_attempts: int = 5
    write_back: str = "sync_info"  # sync_info | custom_field | none
    write_back_field: str = "erpSalesOrderNumber"
    export_channel_key: str = "erp-order-export"


@dg.asset(
    group_name=FLOW,
    kinds={"python"},
    deps=[order_batches],
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="erp_writes",
    description="Eligible orders created in the ERP exactly once, and marked in commercetools.",
)
def erp_sales_orders(
    context: dg.AssetExecutionContext,
    config: ErpExportConfig,
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    # Who holds the erp_writes slot: the stuck_export_runs watchdog frees it if this process dies.
    context.instance.add_run_tags(context.run_id, {WORKER_TAG: current_worker().to_tag()})
    integration_store = store.get_store()
    frames = [read_batch(integration_store, key) for key in context.partition_keys]
    batch = pd.concat(frames, ignore_index=True) if frames else batch_frame([])
    items = export_items(batch) if len(batch) else []
    settings = ExportOptions(
        workers=config.workers,
        max_in_flight_writes=config.max_in_flight_writes,
        rate_per_second=config.rate_per_second or None,
        burst=config.burst,
        max_attempts=config.max_attempts,
    )
    started = datetime.now(UTC)
    with erp.open_port() as port:
        report = OrderExporter(port, integration_store, settings).export(items)
    seconds = max((datetime.now(UTC) - started).total_seconds(), 1e-9)
    counts = report.counts

    marked, mark_failed = _write_back(
        context, config, commercetools, integration_store, batch, report
    )
    failures = [r for r in report.results if r.outcome.startswith("failed")]
    context.log.info("erp_sales_orders: %s", json.dumps(counts))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(report.results),
            **{f"orders_{name}": value for name, value in counts.items()},
            "ineligible_orders": int((~batch["eligible"].astype(bool)).sum()) if len(batch) else 0,
            "marked_in_commercetools": marked,
            "write_back_failures": mark_failed,
            "orders_per_second": round((counts["exported"] + counts["recovered"]) / seconds, 2),
            "workers": config.workers,
            "max_in_flight_writes": config.max_in_flight_writes,
            "rate_limit_per_second": config.rate_per_second,
            "failures": markdown_table(
                [
                    {
                        "order": scrub(r.key, limit=80),
                        "category": r.category,
                        "reason": scrub(r.reason, limit=300),
                    }
                    for r in failures
                ],
                50,
            ),
        }
    )


def _write_back(
    context: dg.AssetExecutionContext,
    config: ErpExportConfig,
    commercetools: CommercetoolsResource,
    integration_store: Any,
    batch: pd.DataFrame,
    report: Any,
) -> tuple[int, int]:
    """Mark exported orders in commercetools; a failure here is queued, the ERP order stands."""
    mode: WriteBackMode = config.write_back  # type: ignore[assignment]
    if mode == "none" or not len(batch):
        return 0, 0
    done = {
        r.key: r
        for r in report.results
        if r.outcome in ("exported", "recovered", "already_exported")
    }
    pending = batch[
        batch["external_document_number"].isin(done) & ~batch["exported_marker"].astype(bool)
    ]
    marked = failed = 0
    if pending.empty:
        return 0, 0
    parked = {
        e.entity_key
        for e in integration_store.list_exceptions(
            flow=FLOW, status=["open", "retrying"], category="write_back"
        )
    }
    with commercetools.open_client() as client:
        channel_id = export_channel_id(client, config.export_channel_key)
        for row in pending.itertuples(index=False):
            key = row.external_document_number
            document = (
                done[key].erp_document or integration_store.ledger.get(FLOW, key).external_ref
            )
            try:
                order = client.get(f"orders/{row.order_id}")
                if write_back(
                    client,
                    order,
                    mode=mode,
                    channel_key=config.export_channel_key,
                    channel_id=channel_id,
                    erp_document=str(document),
                    synced_at=datetime.now(UTC),
                    field_name=config.write_back_field,
                ):
                    marked += 1
                if key in parked:  # in the ERP and marked: the parked write-back failure is over
                    integration_store.close_on_success(FLOW, key, "order_to_cash")
            except Exception as exc:
                failed += 1
                integration_store.record_exception(
                    flow=FLOW,
                    entity_key=key,
                    category="write_back",
                    reason=f"order is in the ERP as {document} but could not be marked in commercetools: "
                    f"{type(exc).__name__}: {exc}",
                    payload_ref=f"order:{row.order_id}@v{row.order_version}",
                )
                context.log.warning(
                    "write-back failed for %s: %s", scrub(key, limit=80), type(exc).__name__
                )
    return marked, failed
