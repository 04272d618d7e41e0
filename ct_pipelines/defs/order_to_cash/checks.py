"""Drift and integrity checks for order-to-cash; numeric metadata gives the UI its plots."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from ct_pipelines.defs.order_to_cash import assets as o2c
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.defs.resources import ErpResource, IntegrationStoreResource
from ct_pipelines.kernel.shop import SHOP


class OrderCheckConfig(dg.Config):
    lookback_days: int = 7
    orphan_after_minutes: int = 30


def recent_batches(store: Any, days: int, now: datetime | None = None) -> pd.DataFrame:
    """The order_batches of the last ``days`` shop days (only days that were materialised)."""
    today = (now or datetime.now(UTC)).astimezone(SHOP.tz).date()
    keys = set(o2c.order_days.get_partition_keys())
    frames = []
    for offset in range(days):
        key = (today - timedelta(days=offset)).isoformat()
        if key in keys:
            frame = o2c.read_batch(store, key)
            if len(frame):
                frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _order_table(frame: pd.DataFrame, columns: list[str], limit: int = 25) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("none")
    return dg.MetadataValue.md(frame[columns].head(limit).to_markdown(index=False))


def orphaned_orders_frame(
    batches: pd.DataFrame, exported: set[str], now: datetime, after: timedelta
) -> pd.DataFrame:
    """Eligible orders older than ``after`` that the ledger does not show as in the ERP."""
    if batches.empty:
        return batches
    eligible = batches[batches["eligible"].astype(bool)].copy()
    created = pd.to_datetime(eligible["created_at"], utc=True, format="ISO8601")
    eligible["age_minutes"] = ((now - created).dt.total_seconds() // 60).astype(int)
    late = eligible[(eligible["age_minutes"] >= after.total_seconds() // 60)]
    return late[~late["external_document_number"].isin(exported)].sort_values(
        "age_minutes", ascending=False
    )


@dg.asset_check(
    asset=o2c.erp_sales_orders, description="Eligible for longer than N minutes but not in the ERP."
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
        metadata={
            "orphaned_orders": len(orphans),
            "oldest_age_minutes": int(orphans["age_minutes"].max()) if len(orphans) else 0,
            "eligible_orders_checked": int(batches["eligible"].astype(bool).sum())
            if len(batches)
            else 0,
            "orders": _order_table(
                orphans, ["external_document_number", "order_date", "age_minutes", "payment_state"]
            ),
        },
    )


def totals_mismatches(batches: pd.DataFrame, erp_orders: dict[str, Any]) -> pd.DataFrame:
    """Orders whose ERP totals differ from commercetools' by even one minor unit."""
    rows = []
    for row in batches.itertuples(index=False):
        erp = erp_orders.get(row.external_document_number)
        if erp is None:
            continue
        for name in ("net_minor", "tax_minor", "gross_minor"):
            ours, theirs = int(getattr(row, name)), int(getattr(erp.totals, name))
            if ours != theirs:
                rows.append(
                    {
                        "order": row.external_document_number,
                        "amount": name,
                        "commercetools": ours,
                        "erp": theirs,
                        "difference": theirs - ours,
                        "currency": row.currency,
                    }
                )
    return pd.DataFrame(
        rows, columns=["order", "amount", "commercetools", "erp", "difference", "currency"]
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
    return dg.AssetCheckResult(
        passed=mismatches.empty and missing == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "orders_compared": len(erp_orders),
            "orders_with_differences": int(mismatches["order"].nunique()) if len(mismatches) else 0,
            "ledger_says_exported_but_missing_in_erp": missing,
            "absolute_difference_minor": int(mismatches["difference"].abs().sum())
            if len(mismatches)
            else 0,
            "differences": dg.MetadataValue.md(
                mismatches.head(25).to_markdown(index=False) if len(mismatches) else "none"
            ),
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
    return dg.AssetCheckResult(
        passed=affected.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "orders_with_rounding_differences": len(affected),
            "absolute_difference_minor": int(affected["tax_rounding_abs_minor"].sum())
            if len(affected)
            else 0,
            "difference_by_rate_minor": dg.MetadataValue.json(by_rate),
            "orders": _order_table(
                affected, ["external_document_number", "order_date", "tax_rounding_diff"]
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
        metadata={
            "orders_blocked": len(unmapped),
            "unmapped_skus": len(skus),
            "orders_with_unmapped_tax_codes": tax,
            "skus": dg.MetadataValue.json({str(k): int(v) for k, v in skus.head(50).items()}),
            "orders": _order_table(
                unmapped, ["external_document_number", "mapping_error_category", "mapping_error"]
            ),
        },
    )


def duplicate_documents(erp_orders: list[Any]) -> pd.DataFrame:
    """ERP sales orders that share an external document number or a commercetools order.

    The second case is how duplicates really happen: an order exported under its id, then again
    under an order number that was set later, is two documents for one sale.
    """
    rows = [
        {
            "external_document_number": o.external_document_number,
            "source_order_id": o.source_order_id,
            "sales_order_no": o.sales_order_no,
            "gross_minor": o.totals.gross_minor,
        }
        for o in erp_orders
    ]
    frame = pd.DataFrame(
        rows,
        columns=["external_document_number", "source_order_id", "sales_order_no", "gross_minor"],
    )
    if frame.empty:
        return frame
    by_document = frame.duplicated("external_document_number", keep=False)
    by_order = frame.duplicated("source_order_id", keep=False)
    return frame[by_document | by_order].sort_values(["source_order_id", "sales_order_no"])


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
        metadata={
            "erp_documents_checked": len(erp_orders),
            "duplicate_documents": len(duplicates),
            "orders_affected": int(duplicates["source_order_id"].nunique())
            if len(duplicates)
            else 0,
            "duplicates": dg.MetadataValue.md(
                duplicates.head(25).to_markdown(index=False) if len(duplicates) else "none"
            ),
        },
    )
