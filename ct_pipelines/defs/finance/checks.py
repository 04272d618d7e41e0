"""Finance checks: zero variance, every day posted, tax rounding patterns.

Numeric metadata on every evaluation lets the UI plot variance over time.
"""

import os
from typing import Any

import dagster as dg

from ct_pipelines.defs.finance import assets as finance_assets
from ct_pipelines.defs.finance.logic.checks import (
    closed_days,
    posting_gaps,
    posting_window,
    settlement_verdict,
    stored_frames,
    variance_verdict,
)
from ct_pipelines.defs.finance.logic.facts import orders_from_frame
from ct_pipelines.defs.finance.logic.rollup import tax_rounding_pattern
from ct_pipelines.defs.finance.logic.snapshots import (
    ORDER_TOTALS,
    RECONCILIATION,
    SETTLEMENT,
    SETTLEMENT_TOTALS,
    VARIANCES,
)
from ct_pipelines.defs.finance.resources import SettlementFilesResource
from ct_pipelines.defs.metadata import (
    check_text,
    markdown_table,
    runbook_hint,
    with_money_text,
    with_tables,
)
from ct_pipelines.defs.resources import ErpResource, IntegrationStoreResource


class VarianceCheckConfig(dg.Config):
    tolerance_minor: int = 0  # per day, currency and metric; above it the check is an ERROR
    lookback_days: int = 35  # a month-to-date and a little before


class PostingCheckConfig(dg.Config):
    lookback_days: int = 7


class SettlementCheckConfig(dg.Config):
    lookback_days: int = 7


class RoundingCheckConfig(dg.Config):
    lookback_days: int = 7
    error_at_orders: int = 10  # this many orders off in the window is a pattern, not noise


@dg.asset_check(
    asset=finance_assets.finance_reconciliation,
    description="Every reconciled day of the look-back window has zero variance per currency and "
    "metric (or at most the tolerance); names the orders behind any variance.",
)
def finance_zero_variance(
    config: VarianceCheckConfig, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    integration_store = store.get_store()
    days = closed_days(config.lookback_days)
    passed, metadata = variance_verdict(
        stored_frames(integration_store, RECONCILIATION, days),
        stored_frames(integration_store, VARIANCES, days),
        config.tolerance_minor,
    )
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "every reconciled day is within tolerance"
            if passed
            else "commercetools and the ERP differ by "
            + (
                "; ".join(
                    str(v)
                    for k, v in with_money_text(metadata).items()
                    if k.startswith("variance_abs_") and "_minor_" not in k
                )
                or "order counts"
            )
            + " (absolute, over the window). What to do: trace the orders named in the "
            "metadata (usually orphaned orders or a totals difference), fix them, then re-run "
            "finance_nightly for the day. " + runbook_hint("finance_zero_variance")
        ),
        metadata=with_money_text(with_tables(metadata)),
    )


@dg.asset_check(
    asset=finance_assets.finance_journal_batches,
    description="Every completed shop day of the look-back window, from the first day built (or "
    "CT_PIPELINES_ORDERS_START_DATE when set), was built and its journals are in the ERP.",
)
def finance_days_posted(
    config: PostingCheckConfig, erp: ErpResource, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    integration_store = store.get_store()
    days, counted_from = posting_window(
        integration_store,
        closed_days(config.lookback_days),
        os.environ.get("CT_PIPELINES_ORDERS_START_DATE") or None,
    )
    with erp.open_port() as port:
        gaps = posting_gaps(integration_store, port, days)
    missing_days = sorted({str(d) for d in gaps["day"]}) if len(gaps) else []
    return dg.AssetCheckResult(
        passed=gaps.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text(
            "finance_days_posted",
            gaps.empty,
            f"every one of {len(days)} completed shop days has its journals in the ERP",
            f"{len(missing_days)} completed shop days have no journal in the ERP ("
            + ", ".join(missing_days[:7])
            + (" …" if len(missing_days) > 7 else "")
            + ")",
            "check that finance_nightly is on, then launch finance_nightly (a backfill of the "
            "finance assets) for those days; a day already posted is never posted twice",
        ),
        metadata={
            "counted_from": counted_from or "no day built yet",
            "days_checked": len(days),
            "days_not_posted": int(gaps["day"].nunique()),
            "batches_not_posted": int(gaps["batch_id"].notna().sum()),
            "gaps": markdown_table(gaps, 100),
        },
    )


@dg.asset_check(
    asset=finance_assets.finance_reconciliation,
    description="Orders whose tax portions differ from their line taxes, by day and rate: a "
    "pattern means commercetools and the ERP round tax differently.",
)
def finance_tax_rounding_patterns(
    config: RoundingCheckConfig, store: IntegrationStoreResource
) -> dg.AssetCheckResult:
    integration_store = store.get_store()
    days = closed_days(config.lookback_days)
    orders = stored_frames(integration_store, ORDER_TOTALS, days)
    pattern = tax_rounding_pattern(orders_from_frame(orders) if len(orders) else [])
    count = int(pattern["orders"].sum()) if len(pattern) else 0
    metadata: dict[str, Any] = {
        "orders_with_rounding_difference": count,
        "days_affected": int(pattern["day"].nunique()) if len(pattern) else 0,
        "rates_affected": int(pattern["rate"].nunique()) if len(pattern) else 0,
        "by_day_and_rate": markdown_table(pattern, 100),
    }
    for currency, group in pattern.groupby("currency"):
        metadata[f"rounding_difference_minor_{currency}"] = int(group["difference_minor"].sum())
    severity = (
        dg.AssetCheckSeverity.ERROR
        if count >= config.error_at_orders
        else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        passed=count == 0,
        severity=severity,
        description=(
            "no tax rounding differences"
            if count == 0
            else f"{count} orders round tax differently from their lines. What to do: finance "
            "reviews with the accountant whether a rounding journal is needed and agrees a rule "
            "with IT. " + runbook_hint("finance_tax_rounding_patterns")
        ),
        metadata=with_money_text(metadata),
    )


@dg.asset_check(
    asset=finance_assets.finance_payment_settlement,
    description="Every commercetools charge, refund and chargeback of the provider's payments "
    "on the completed shop days of the look-back window is in the settlement file with the same "
    "amount and currency, and the file holds nothing commercetools does not; names each one "
    "that is not, with its order and amounts.",
)
def finance_settlement_matched(
    config: SettlementCheckConfig,
    settlement_files: SettlementFilesResource,
    store: IntegrationStoreResource,
) -> dg.AssetCheckResult:
    location = settlement_files.location()
    if location.directory is None:
        # Not a pass: nobody compared anything.
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=check_text(
                "finance_settlement_matched",
                False,
                "",
                f"not checked: {location.explanation}",
                "set CT_PIPELINES_SETTLEMENT_DIR to the folder the payment provider's reports "
                "are saved in, then run the check again",
            ),
            metadata={"configured": False, "days_checked": 0},
        )
    integration_store = store.get_store()
    days = closed_days(config.lookback_days)
    passed, metadata = settlement_verdict(
        stored_frames(integration_store, SETTLEMENT, days),
        stored_frames(integration_store, SETTLEMENT_TOTALS, days),
    )
    metadata = with_money_text(with_tables(metadata))
    amounts = "; ".join(
        str(v)
        for k, v in metadata.items()
        if k.startswith("not_matched_abs_") and "_minor_" not in k
    )
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text(
            "finance_settlement_matched",
            passed,
            f"every transaction of {metadata['days_checked']} days matches the settlement file",
            f"{metadata['items_not_matched']} items do not match the settlement file "
            f"({metadata['missing_in_settlement']} missing from it, "
            f"{metadata['not_in_commercetools']} not in commercetools, "
            f"{metadata['amount_differs']} with another amount): {amounts} (absolute)",
            "open the check's table, find each order's payment in the provider's dashboard, "
            "and correct the side that is wrong (or record the difference with finance)",
        ),
        metadata={"configured": True, **metadata},
    )
