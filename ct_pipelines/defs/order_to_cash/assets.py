"""Order-to-cash: each shop day's orders as the ERP will receive them, then into the ERP once."""

import json
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from ct_pipelines.defs import systems
from ct_pipelines.defs.metadata import (
    markdown_table,
    money_text,
    report_partitions,
    results_metadata,
)
from ct_pipelines.defs.order_rules import OrderRulesConfig
from ct_pipelines.defs.order_to_cash.logic.batch import (
    batch_frame,
    build_batch,
    export_items,
    park_rejects,
    read_batch,
    read_batch_orders,
)
from ct_pipelines.defs.order_to_cash.logic.engine import (
    FLOW,
    ExportOptions,
    ExportReport,
    ExportResult,
    OrderExporter,
)
from ct_pipelines.defs.order_to_cash.logic.orders import as_utc_literal, created_window_predicate
from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
from ct_pipelines.defs.order_to_cash.logic.stuck_runs import WORKER_TAG, current_worker
from ct_pipelines.defs.order_to_cash.logic.write_back import (
    WriteBackMode,
    WriteBackTarget,
    export_channel_id,
    write_back_all,
)
from ct_pipelines.defs.partitions import order_days
from ct_pipelines.defs.resources import CommercetoolsResource, ErpResource, IntegrationStoreResource
from ct_pipelines.defs.step_log import event_log_for_step, heartbeat, step_progress
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
    order_ids: list[str] = Field(
        default=[],
        description="Incremental run (set by the new_commercetools_orders sensor): read only "
        "these orders and update the day's batch in place for them. Empty: rebuild the whole day.",
    )

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
    deps=[systems.COMMERCETOOLS_ORDERS, systems.ERP_ITEMS],
    owners=[systems.ECOMMERCE_OPS],
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
    by_partition: dict[str, dict[str, Any]] = {}
    order_ids = list(dict.fromkeys(config.order_ids))
    if order_ids:
        key = _single_day(context, "order_batches")
        with event_log_for_step(context), commercetools.open_client() as client:
            channel_id = export_channel_id(client, config.export_channel_key)
            by_partition[key] = _update_batch(
                context, config, client, integration_store, key, order_ids, mapping, channel_id
            )
        metadata = report_partitions(context, by_partition)
        metadata["source"] = commercetools.describe()
        return dg.MaterializeResult(metadata=metadata)
    with event_log_for_step(context), commercetools.open_client() as client:
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
            unreadable = park_rejects(integration_store, FLOW, batch.rejects)
            frame = batch_frame(batch.rows)
            integration_store.write_snapshot(
                "order_batches", frame, partition_key=key, taken_at=taken_at
            )
            context.log.info("order_batches %s: %d orders", key, len(frame))
            by_partition[key] = _batch_metadata(frame, unreadable)
    metadata = report_partitions(context, by_partition)
    metadata["source"] = commercetools.describe()
    return dg.MaterializeResult(metadata=metadata)


# Orders asked for by id in one commercetools query (the ids travel in the URL).
IDS_PER_QUERY = 100


def _single_day(context: dg.AssetExecutionContext, asset: str) -> str:
    keys = list(context.partition_keys)
    if len(keys) != 1:
        raise dg.Failure(
            f"{asset}: order_ids select orders of one day, but this run covers {len(keys)} "
            "partitions; launch it for one day, or without order_ids to rebuild the days"
        )
    return keys[0]


def _update_batch(
    context: dg.AssetExecutionContext,
    config: OrderToCashConfig,
    client: Any,
    integration_store: Any,
    key: str,
    order_ids: list[str],
    mapping: SalesOrderMapping,
    channel_id: str | None,
) -> dict[str, Any]:
    """An incremental run: read just these orders of the day and update its batch in place."""
    window = order_days.time_window_for_partition_key(key)
    taken_at = datetime.now(UTC)
    docs: list[dict[str, Any]] = []
    for start in range(0, len(order_ids), IDS_PER_QUERY):
        chunk = order_ids[start : start + IDS_PER_QUERY]
        names = [f"id{i}" for i in range(len(chunk))]
        docs.extend(
            client.query(
                "orders",
                where=[f"id in ({', '.join(':' + n for n in names)})", created_window_predicate()],
                variables={
                    **dict(zip(names, chunk, strict=True)),
                    "windowStart": as_utc_literal(window.start),
                    "windowEnd": as_utc_literal(window.end),
                },
                expand=["paymentInfo.payments[*]"],
                limit=len(chunk),
                with_total=False,
            )["results"]
        )
    batch = build_batch(
        docs, tz=SHOP.tz, rule=config.rule(), mapping=mapping, channel_id=channel_id
    )
    unreadable = park_rejects(integration_store, FLOW, batch.rejects)
    frame = batch_frame(batch.rows)
    stored = None
    if len(frame):
        stored = integration_store.upsert_snapshot(
            "order_batches", frame, partition_key=key, key="order_id", taken_at=taken_at
        )
    found = {str(doc.get("id")) for doc in docs}
    missing = [order_id for order_id in order_ids if order_id not in found]
    if missing:
        context.log.warning(
            "order_batches %s: %d of %d orders asked for are not orders of this day in "
            "commercetools (deleted, or placed on another day); first: %s",
            key,
            len(missing),
            len(order_ids),
            ", ".join(scrub(m, limit=40) for m in missing[:5]),
        )
    context.log.info(
        "order_batches %s: %d orders updated in place (%d in the day)",
        key,
        len(frame),
        stored.row_count if stored else 0,
    )
    metadata = _batch_metadata(frame, unreadable)
    metadata.update(
        {
            # The counts above are this run's orders; the row count is the whole day's.
            "dagster/row_count": stored.row_count
            if stored
            else len(read_batch(integration_store, key)),
            "scope": "orders",
            "orders_updated": len(frame),
            "orders_requested": len(order_ids),
            "orders_not_found": len(missing),
        }
    )
    return metadata


def _batch_metadata(frame: pd.DataFrame, unreadable: int) -> dict[str, Any]:
    """One day's batch as the UI shows it: its own counts, schema, preview and money."""
    eligible = int(frame["eligible"].sum()) if len(frame) else 0
    gross = {str(k): int(v) for k, v in frame.groupby("currency")["gross_minor"].sum().items()}
    metadata = results_metadata(
        frame,
        descriptions=ORDER_BATCH_COLUMNS,
        preview_columns=[c for c in frame.columns if c != "sales_order"],
    )
    metadata.update(
        {
            "eligible_orders": eligible,
            "ineligible_orders": len(frame) - eligible,
            "unmappable_orders": int(frame["mapping_error"].notna().sum()),
            "unreadable_orders": unreadable,
            "gross_minor_by_currency": dg.MetadataValue.json(gross),
            "gross_by_currency": money_text(gross),
            "orders_by_payment_state": dg.MetadataValue.json(
                {
                    str(k): int(v)
                    for k, v in frame["payment_state"].fillna("none").value_counts().items()
                }
            ),
        }
    )
    return metadata


class ErpExportConfig(dg.Config):
    """Throttling for ERP writes: a flash sale queues here instead of overwhelming the ERP.

    ``claim_batch``, ``claim_lease_seconds`` and ``claim_wait_seconds`` tune how the export
    claims its orders in the integration store (``store/claims.py``) so that several exports at
    once never send an order twice; the defaults suit one or a few workers.
    """

    workers: int = 6
    max_in_flight_writes: int = 4
    rate_per_second: float = 50.0
    burst: int = 4
    max_attempts: int = 5
    write_back: str = "sync_info"  # sync_info | custom_field | none
    write_back_field: str = "erpSalesOrderNumber"
    export_channel_key: str = "erp-order-export"
    # A progress line in the run's event log every this many orders, and at least this often.
    progress_every_orders: int = 500
    progress_every_seconds: float = 30.0
    # How often a waiting export checks whether a progress line is due (0: only per order).
    progress_heartbeat_seconds: float = 5.0
    claim_batch: int = Field(
        default=100,
        ge=1,
        description="Orders claimed in one store transaction and looked up in one ERP request.",
    )
    claim_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claim holds an order; renewed every quarter of it while the "
        "export runs, taken over by another export only once it has run out (or its process "
        "on this host is gone).",
    )
    claim_wait_seconds: float | None = Field(
        default=None,
        ge=0,
        description="How long to wait for orders another live export holds before reporting "
        "them failed_transient (claimed_elsewhere); empty: twice the lease.",
    )
    order_ids: list[str] = Field(
        default=[],
        description="Incremental run (set by the new_commercetools_orders sensor): export only "
        "these orders of the day, in order of placement. Empty: every eligible order of the day.",
    )


@dg.asset(
    group_name=FLOW,
    kinds={"python"},
    deps=[order_batches],
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="erp_writes",
    description="Eligible orders created in the ERP exactly once, and marked in commercetools.",
    owners=[systems.ECOMMERCE_OPS],
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
    order_ids = list(dict.fromkeys(config.order_ids))
    if order_ids:
        key = _single_day(context, "erp_sales_orders")
        frames = {key: read_batch_orders(integration_store, key, order_ids)}
        absent = len(order_ids) - len(frames[key])
        if absent:
            context.log.warning(
                "erp_sales_orders %s: %d of %d orders asked for are not in the day's batch "
                "(order_batches found no such order of this day); nothing to export for them",
                key,
                absent,
                len(order_ids),
            )
    else:
        frames = {key: read_batch(integration_store, key) for key in context.partition_keys}
    batch = pd.concat(frames.values(), ignore_index=True) if frames else batch_frame([])
    items = export_items(batch) if len(batch) else []
    settings = ExportOptions(
        workers=config.workers,
        max_in_flight_writes=config.max_in_flight_writes,
        rate_per_second=config.rate_per_second or None,
        burst=config.burst,
        max_attempts=config.max_attempts,
        claim_batch=config.claim_batch,
        claim_lease_seconds=config.claim_lease_seconds,
        claim_wait_seconds=config.claim_wait_seconds,
    )
    started = datetime.now(UTC)
    progress = step_progress(
        context,
        "erp_sales_orders export",
        len(items),
        unit="orders",
        every=config.progress_every_orders,
        every_seconds=config.progress_every_seconds,
    )

    def told(result: ExportResult) -> None:
        progress.advance(parked=int(result.outcome.startswith("failed")))

    with (
        event_log_for_step(context),
        heartbeat(progress, config.progress_heartbeat_seconds),
        erp.open_port() as port,
    ):
        report = OrderExporter(port, integration_store, settings, progress=told).export(items)
    seconds = max((datetime.now(UTC) - started).total_seconds(), 1e-9)
    counts = report.counts

    marked, mark_failed = _write_back(
        context, config, commercetools, integration_store, batch, report
    )
    context.log.info("erp_sales_orders: %s", json.dumps(counts))
    by_key = report.by_key()
    by_partition = {
        key: _export_metadata(
            frame,
            [by_key[k] for k in frame["external_document_number"] if k in by_key],
            marked,
            mark_failed,
        )
        for key, frame in frames.items()
    }
    metadata = report_partitions(context, by_partition)
    metadata.update(
        {
            "orders_per_second": round((counts["exported"] + counts["recovered"]) / seconds, 2),
            "workers": config.workers,
            "max_in_flight_writes": config.max_in_flight_writes,
            "rate_limit_per_second": config.rate_per_second,
            "scope": "orders" if order_ids else "day",
            "orders_requested": len(order_ids) if order_ids else len(items),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


EXPORT_RESULT_COLUMNS = {
    "order": "external document number (orderNumber, or the order id)",
    "outcome": "exported, recovered (found in the ERP), already_exported or failed_*",
    "erp_document": "the ERP sales order number",
    "attempts": "ERP calls made for the order in this run",
    "category": "why a failed order was parked (exception category)",
    "reason": "the full reason, as on the exception queue",
}


def _export_metadata(
    frame: pd.DataFrame, results: list[ExportResult], marked: set[str], mark_failed: set[str]
) -> dict[str, Any]:
    """One day's export: that day's own outcome counts, schema, preview and failures."""
    rows = pd.DataFrame(
        [
            {
                # Stored text came from outside: it passes the one scrubber on its way to the UI.
                "order": scrub(r.key, limit=80),
                "outcome": r.outcome,
                "erp_document": r.erp_document,
                "attempts": r.attempts,
                "category": r.category,
                "reason": scrub(r.reason) if r.reason else r.reason,
            }
            for r in results
        ],
        columns=list(EXPORT_RESULT_COLUMNS),
    )
    rows["attempts"] = rows["attempts"].astype("int64")
    keys = {r.key for r in results}
    metadata = results_metadata(
        rows,
        descriptions=EXPORT_RESULT_COLUMNS,
        preview_columns=["order", "outcome", "erp_document", "attempts", "category"],
    )
    outcomes = rows["outcome"].value_counts().to_dict()
    metadata.update(
        {f"orders_{name}": int(outcomes.get(name, 0)) for name in ExportReport.OUTCOMES}
    )
    in_erp = {r.key for r in results if r.outcome in ("exported", "recovered")}
    sent = frame[frame["external_document_number"].isin(in_erp)] if len(frame) else frame
    gross = (
        {str(c): int(v) for c, v in sent.groupby("currency")["gross_minor"].sum().items()}
        if len(sent)
        else {}
    )
    metadata.update(
        {
            "gross_into_erp_minor_by_currency": dg.MetadataValue.json(gross),
            "gross_into_erp": money_text(gross),
            "ineligible_orders": int((~frame["eligible"].astype(bool)).sum()) if len(frame) else 0,
            "marked_in_commercetools": len(keys & marked),
            "write_back_failures": len(keys & mark_failed),
            "failures": markdown_table(
                rows[rows["outcome"].str.startswith("failed")],
                50,
                columns=["order", "category", "reason"],
            ),
        }
    )
    return metadata


def _write_back(
    context: dg.AssetExecutionContext,
    config: ErpExportConfig,
    commercetools: CommercetoolsResource,
    integration_store: Any,
    batch: pd.DataFrame,
    report: Any,
) -> tuple[set[str], set[str]]:
    """Mark exported orders in commercetools; a failure here is queued, the ERP order stands.

    Returns the orders marked and the orders whose marking failed."""
    mode: WriteBackMode = config.write_back  # type: ignore[assignment]
    marked: set[str] = set()
    failed: set[str] = set()
    if mode == "none" or not len(batch):
        return marked, failed
    done = {
        r.key: r
        for r in report.results
        if r.outcome in ("exported", "recovered", "already_exported")
    }
    pending = batch[
        batch["external_document_number"].isin(done) & ~batch["exported_marker"].astype(bool)
    ]
    if pending.empty:
        return marked, failed
    parked = {
        e.entity_key
        for e in integration_store.list_exceptions(
            flow=FLOW, status=["open", "retrying"], category="write_back"
        )
    }
    targets = [
        WriteBackTarget(
            key=row.external_document_number,
            order_id=row.order_id,
            order_version=None if pd.isna(row.order_version) else int(row.order_version),
            erp_document=str(
                done[row.external_document_number].erp_document
                or integration_store.ledger.get(FLOW, row.external_document_number).external_ref
            ),
        )
        for row in pending.itertuples(index=False)
    ]
    with commercetools.open_client() as client:
        channel_id = export_channel_id(client, config.export_channel_key)
        results = write_back_all(
            client,
            targets,
            workers=config.workers,
            mode=mode,
            channel_key=config.export_channel_key,
            channel_id=channel_id,
            synced_at=datetime.now(UTC),
            field_name=config.write_back_field,
        )
    # The store is written here, on the calling thread, once the pool has finished.
    for result in results:
        target = result.target
        key = target.key
        if result.error is not None:
            exc = result.error
            failed.add(key)
            integration_store.record_exception(
                flow=FLOW,
                entity_key=key,
                category="write_back",
                reason=f"order is in the ERP as {target.erp_document} but could not be marked "
                f"in commercetools: {type(exc).__name__}: {exc}",
                payload_ref=f"order:{target.order_id}@v{target.order_version}",
            )
            context.log.warning(
                "write-back failed for %s: %s", scrub(key, limit=80), type(exc).__name__
            )
            continue
        if result.sent:
            marked.add(key)
        if key in parked:  # in the ERP and marked: the parked write-back failure is over
            integration_store.close_on_success(FLOW, key, "order_to_cash")
    return marked, failed
