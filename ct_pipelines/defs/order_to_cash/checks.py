"""Drift and integrity checks for order-to-cash; numeric metadata gives the UI its plots."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from ct_pipelines.defs.metadata import check_text, markdown_table
from ct_pipelines.defs.order_to_cash import assets as o2c
from ct_pipelines.defs.order_to_cash.logic.checks import (
    duplicate_documents,
    orphaned_orders_frame,
    recent_batches,
    totals_mismatches,
)
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.defs.resources import ErpResource, IntegrationStoreResource
from ct_pipelines.kernel.money import display_amounts, display_money
from ct_pipelines.kernel.shop import SHOP


class OrderCheckConfig(dg.Config):
    lookback_days: int = 7
    orphan_after_minutes: int = 30


def _first(frame: pd.DataFrame, column: str, n: int = 5) -> str:
    """The first ``n`` values of ``column``; empty for a frame with no rows (and no columns,
    as when no batch of the lookback window has been materialised yet)."""
    return ", ".join(str(v) for v in frame[column].head(n)) if len(frame) else ""


@dg.asset_check(
    asset=o2c.erp_sales_orders,
    description="Paid or authorised orders eligible for longer than `orphan_after_minutes` "
    "(default 30) but not in the ERP.",
)
def orphaned_orders(
    config: OrderCheckConfig, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    integration_store = store.get_store()
    batches = recent_batches(integration_store, config.lookback_days)
    keys = list(batches["external_document_number"]) if len(batches) else []
    exported = integration_store.exported_keys(FLOW, keys)
    now = datetime.now(UTC)
    orphans = orphaned_orders_frame(
        batches, exported, now, timedelta(minutes=config.orphan_after_minutes)
    )
    return dg.AssetCheckResult(
        passed=orphans.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text(
            "orphaned_orders",
            orphans.empty,
            f"no eligible order has waited more than {config.orphan_after_minutes} minutes",
            f"{len(orphans)} paid or authorised orders are not in the ERP after more than "
            f"{config.orphan_after_minutes} minutes (first: "
            + _first(orphans, "external_document_number")
            + ")",
            "look for them on the exception queue (`ct-pipelines exceptions list --flow "
            "order_to_cash`), fix the reason and retry; if they are not there, run "
            "order_export_job for their days",
        ),
        metadata={
            "orphaned_orders": len(orphans),
            "oldest_age_minutes": int(orphans["age_minutes"].max()) if len(orphans) else 0,
            "eligible_orders_checked": int(batches["eligible"].astype(bool).sum())
            if len(batches)
            else 0,
            "orders": markdown_table(
                orphans,
                25,
                columns=["external_document_number", "order_date", "age_minutes", "payment_state"],
            ),
        },
    )


@dg.asset_check(
    asset=o2c.erp_sales_orders,
    description="Net, tax and gross of each exported order equal the ERP's, to the minor unit.",
)
def totals_parity(
    config: OrderCheckConfig, erp: ErpResource, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    integration_store = store.get_store()
    batches = recent_batches(integration_store, config.lookback_days)
    keys = list(batches["external_document_number"]) if len(batches) else []
    exported = integration_store.exported_keys(FLOW, keys)
    in_erp = (
        batches[batches["external_document_number"].isin(exported)] if len(batches) else batches
    )
    erp_orders: dict[str, Any] = {}
    missing = 0
    with erp.open_port() as port:
        for key in in_erp["external_document_number"] if len(in_erp) else []:
            found = port.find_sales_order(key)
            if found is None:
                missing += 1
            else:
                erp_orders[key] = found
    mismatches = (
        totals_mismatches(in_erp, erp_orders)
        if len(in_erp)
        else totals_mismatches(pd.DataFrame(), {})
    )
    absolute = int(mismatches["difference"].abs().sum()) if len(mismatches) else 0
    by_currency = (
        {
            str(c): int(v)
            for c, v in mismatches.groupby("currency")["difference"]
            .agg(lambda d: d.abs().sum())
            .items()
        }
        if len(mismatches)
        else {}
    )
    shown = mismatches.copy()
    for column in ("commercetools", "erp", "difference"):
        shown[f"{column}_text"] = [
            display_money(int(v), str(c))
            for v, c in zip(shown[column], shown["currency"], strict=True)
        ]
    differing = int(mismatches["order"].nunique()) if len(mismatches) else 0
    return dg.AssetCheckResult(
        passed=mismatches.empty and missing == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text(
            "totals_parity",
            mismatches.empty and missing == 0,
            f"{len(erp_orders)} exported orders match the ERP to the minor unit",
            f"{differing} orders differ from the ERP by {display_amounts(by_currency)} "
            f"(absolute), {missing} are in the ledger but missing in the ERP",
            "finance compares the listed orders in both systems and corrects the ERP document "
            "(credit note or amendment), without exporting again; tell IT about orders missing "
            "in the ERP",
        ),
        metadata={
            "orders_compared": len(erp_orders),
            "orders_with_differences": differing,
            "ledger_says_exported_but_missing_in_erp": missing,
            "absolute_difference_minor": absolute,
            "absolute_difference": display_amounts(by_currency),
            "differences": markdown_table(shown, 25),
        },
    )


@dg.asset_check(
    asset=o2c.order_batches, description="Line taxes per rate add up to the order's tax portions."
)
def tax_rounding(config: OrderCheckConfig, store: IntegrationStoreResource) -> dg.AssetCheckResult:
    batches = recent_batches(store.get_store(), config.lookback_days)
    affected = (
        batches[batches["tax_rounding_abs_minor"].fillna(0).astype(int) > 0]
        if len(batches)
        else batches
    )
    by_rate: dict[str, int] = {}
    for raw in affected["tax_rounding_diff"] if len(affected) else []:
        for rate, diff in json.loads(raw).items():
            by_rate[rate] = by_rate.get(rate, 0) + int(diff)
    by_currency = (
        {
            str(c): int(v)
            for c, v in affected.groupby("currency")["tax_rounding_abs_minor"].sum().items()
        }
        if len(affected)
        else {}
    )
    return dg.AssetCheckResult(
        passed=affected.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=check_text(
            "tax_rounding",
            affected.empty,
            "every order's line taxes add up to its tax per rate",
            f"{len(affected)} orders' line taxes differ from their tax per rate by "
            f"{display_amounts(by_currency)} (absolute; first: "
            + _first(affected, "external_document_number")
            + ")",
            "nothing per order; if the count grows, finance decides with IT whether the ERP "
            "posts the order's tax portions or the line taxes",
        ),
        metadata={
            "absolute_difference": display_amounts(by_currency),
            "orders_with_rounding_differences": len(affected),
            "absolute_difference_minor": int(affected["tax_rounding_abs_minor"].sum())
            if len(affected)
            else 0,
            "difference_by_rate_minor": dg.MetadataValue.json(by_rate),
            "orders": markdown_table(
                affected,
                25,
                columns=["external_document_number", "order_date", "tax_rounding_diff"],
            ),
        },
    )


@dg.asset_check(
    asset=o2c.order_batches, description="Every SKU and tax rate in recent orders maps to the ERP."
)
def unmapped_skus_and_tax_codes(
    config: OrderCheckConfig, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    batches = recent_batches(store.get_store(), config.lookback_days)
    unmapped = (
        batches[batches["mapping_error_category"].isin(["unknown_sku", "unknown_tax_code"])]
        if len(batches)
        else batches
    )
    skus = (
        unmapped["mapping_error_sku"].dropna().value_counts()
        if len(unmapped)
        else pd.Series(dtype=int)
    )
    tax = (
        int((unmapped["mapping_error_category"] == "unknown_tax_code").sum())
        if len(unmapped)
        else 0
    )
    return dg.AssetCheckResult(
        passed=unmapped.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text(
            "unmapped_skus_and_tax_codes",
            unmapped.empty,
            "every SKU and tax rate of recent orders maps to the ERP",
            f"{len(unmapped)} recent orders cannot be exported: {len(skus)} SKUs the ERP does "
            "not know"
            + (f" (first: {', '.join(str(k) for k in skus.head(5).index)})" if len(skus) else "")
            + f", {tax} orders with a tax rate that has no ERP tax code",
            "the product team creates the missing items in the ERP, finance adds the missing "
            "tax codes; then `ct-pipelines exceptions retry --category unknown_sku` (or "
            "`unknown_tax_code`)",
        ),
        metadata={
            "orders_blocked": len(unmapped),
            "unmapped_skus": len(skus),
            "orders_with_unmapped_tax_codes": tax,
            "skus": dg.MetadataValue.json({str(k): int(v) for k, v in skus.head(50).items()}),
            "orders": markdown_table(
                unmapped,
                25,
                columns=["external_document_number", "mapping_error_category", "mapping_error"],
            ),
        },
    )


@dg.asset_check(
    asset=o2c.erp_sales_orders,
    description="No sale is in the ERP twice: one document per external document number and per order.",
)
def duplicate_erp_documents(config: OrderCheckConfig, erp: ErpResource) -> dg.AssetCheckResult:
    today = datetime.now(UTC).astimezone(SHOP.tz).date()
    with erp.open_port() as port:
        erp_orders = [
            order
            for offset in range(config.lookback_days)
            for order in port.iter_sales_orders(today - timedelta(days=offset))
        ]
    duplicates = duplicate_documents(erp_orders)
    return dg.AssetCheckResult(
        passed=duplicates.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text(
            "duplicate_erp_documents",
            duplicates.empty,
            f"{len(erp_orders)} ERP documents, no sale among them twice",
            f"{len(duplicates)} ERP documents hold "
            f"{int(duplicates['source_order_id'].nunique()) if len(duplicates) else 0} sales "
            "more than once (orders: "
            + ", ".join(
                sorted({str(k) for k in duplicates.get("external_document_number", [])})[:5]
            )
            + ")",
            "finance and the warehouse cancel or credit the second document in the ERP before "
            "it ships, then tell IT with the order numbers",
        ),
        metadata={
            "erp_documents_checked": len(erp_orders),
            "duplicate_documents": len(duplicates),
            "orders_affected": int(duplicates["source_order_id"].nunique())
            if len(duplicates)
            else 0,
            "duplicates": markdown_table(duplicates, 25),
        },
    )
