"""Asset checks of the inventory flow.

Drift, oversell risk, unmapped locations/channels and negative stock are judged on the data
``inventory_snapshots`` has just read (in-asset checks: no second read of 400,000 rows); the
functions below build their results. Staleness is its own check, so it can run on a schedule
and go red exactly when snapshots stop arriving.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from ct_pipelines.defs.inventory.logic.diff import CtInventory
from ct_pipelines.defs.inventory.logic.guard import GuardVerdict
from ct_pipelines.defs.inventory.logic.settings import InventorySettings
from ct_pipelines.defs.inventory.logic.sync import Analysis, SyncStats
from ct_pipelines.defs.inventory.logic.targets import TargetSet
from ct_pipelines.defs.resources import IntegrationStoreResource

SNAPSHOTS = "inventory_snapshots"
DRIFT = "inventory_drift"
OVERSELL = "inventory_oversell_risk"
UNMAPPED = "inventory_unmapped"
NEGATIVE = "inventory_negative_stock"
STALENESS = "inventory_snapshot_staleness"
SYNC_FAILURES = "inventory_sync_failures"
SYNC_GUARD = "inventory_sync_guard"
#: drift above this share of compared entries is an error, below it a warning (in flight)
DRIFT_ERROR_RATIO = 0.01

#: what the checks report: counts, ratios and Dagster metadata values (JSON, timestamps)
CheckMetadata = dict[str, dg.MetadataValue | int | float]

SNAPSHOT_CHECK_SPECS = [
    dg.AssetCheckSpec(DRIFT, asset=SNAPSHOTS, description="commercetools quantity vs target"),
    dg.AssetCheckSpec(
        OVERSELL, asset=SNAPSHOTS, description="commercetools available above the ERP's"
    ),
    dg.AssetCheckSpec(UNMAPPED, asset=SNAPSHOTS, description="locations/channels outside rules"),
    dg.AssetCheckSpec(NEGATIVE, asset=SNAPSHOTS, description="negative stock on either side"),
]


def drift_result(analysis: Analysis) -> dg.AssetCheckResult:
    """Passed when every compared (SKU, channel) holds its target; counts per channel."""
    plan = analysis.plan
    compared = plan.compared
    drifted = plan.drifted
    ratio = drifted / compared if compared else 0.0
    metadata: CheckMetadata = {
        "compared_entries": compared,
        "drifted_entries": drifted,
        "entries_to_update": plan.updates,
        "entries_to_create": plan.creates,
        "absolute_drift_units": sum(c.absolute_drift for c in plan.per_channel.values()),
        "drift_ratio": float(round(ratio, 6)),
        "channels_skipped": dg.MetadataValue.json(analysis.channels_skipped),
    }
    for channel, counts in sorted(plan.per_channel.items()):
        metadata[f"drifted:{channel}"] = counts.drifted
        metadata[f"compared:{channel}"] = counts.compared
    return dg.AssetCheckResult(
        check_name=DRIFT,
        asset_key=SNAPSHOTS,
        passed=drifted == 0,
        severity=dg.AssetCheckSeverity.ERROR
        if ratio > DRIFT_ERROR_RATIO
        else dg.AssetCheckSeverity.WARN,
        description=(
            "commercetools matches the targets"
            if drifted == 0
            else f"{drifted} of {compared} entries differ from their target"
        ),
        metadata=metadata,
    )


def oversell_result(analysis: Analysis) -> dg.AssetCheckResult:
    """Passed when no entry offers more than the ERP has available for its channel."""
    per_channel = {c: n.oversell_risk for c, n in sorted(analysis.plan.per_channel.items())}
    total = sum(per_channel.values())
    metadata: CheckMetadata = {"entries_at_risk": total}
    metadata.update({f"at_risk:{c}": n for c, n in per_channel.items()})
    return dg.AssetCheckResult(
        check_name=OVERSELL,
        asset_key=SNAPSHOTS,
        passed=total == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "no channel offers more than the ERP has"
            if total == 0
            else f"{total} entries show more available in commercetools than in the ERP"
        ),
        metadata=metadata,
    )


def unmapped_result(analysis: Analysis) -> dg.AssetCheckResult:
    """Passed when every stocked location and every supply channel is mapped or ignored."""
    report = analysis.mapping
    if report is None:
        raise ValueError("the unmapped check needs a full analysis (no SKU filter)")
    # A rule pointing at a channel commercetools lacks leaves stock unpublished: an error.
    severity = (
        dg.AssetCheckSeverity.ERROR if report.missing_channels else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        check_name=UNMAPPED,
        asset_key=SNAPSHOTS,
        passed=report.problems == 0,
        severity=severity,
        description=(
            "every location and supply channel is mapped or ignored"
            if report.problems == 0
            else f"{report.problems} mapping gaps"
        ),
        metadata={
            "unmapped_locations": len(report.unmapped_locations),
            "unmapped_channels": len(report.unmapped_channels),
            "missing_channels": len(report.missing_channels),
            "silent_locations": len(report.silent_locations),
            "entries_with_unknown_channel": sum(report.unknown_channel_ids.values()),
            "details": dg.MetadataValue.json(
                {
                    "unmapped_locations (stock rows)": report.unmapped_locations,
                    "unmapped_channels": report.unmapped_channels,
                    "missing_channels": report.missing_channels,
                    "silent_locations": report.silent_locations,
                    "unknown_channel_ids": report.unknown_channel_ids,
                }
            ),
        },
    )


def negative_result(targets: TargetSet, current: CtInventory) -> dg.AssetCheckResult:
    """Passed when no ERP row and no commercetools entry holds negative stock."""
    erp = sum(targets.negative_rows.values())
    ct = sum(current.negative.values())
    metadata: CheckMetadata = {
        "erp_negative_rows": erp,
        "commercetools_negative_entries": ct,
    }
    metadata.update({f"erp:{loc}": n for loc, n in sorted(targets.negative_rows.items())})
    metadata.update({f"commercetools:{ch}": n for ch, n in sorted(current.negative.items())})
    return dg.AssetCheckResult(
        check_name=NEGATIVE,
        asset_key=SNAPSHOTS,
        passed=erp + ct == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description="no negative stock"
        if erp + ct == 0
        else f"negative stock: {erp} ERP rows, {ct} commercetools entries",
        metadata=metadata,
    )


def sync_failures_result(stats: SyncStats) -> dg.AssetCheckResult:
    failed = stats.failed
    codes: dict[str, int] = {}
    for failure in stats.failures:
        label = ",".join(failure.codes) or str(failure.status)
        codes[label] = codes.get(label, 0) + 1
    return dg.AssetCheckResult(
        check_name=SYNC_FAILURES,
        asset_key="inventory_sync",
        passed=failed == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description="every planned write succeeded"
        if failed == 0
        else f"{failed} entries could not be written; the next reconciliation retries them",
        metadata={
            "failed": failed,
            "failures_by_code": dg.MetadataValue.json(codes),
            "first_failures": dg.MetadataValue.json(
                [
                    {"sku": f.sku, "channel": f.channel, "kind": f.kind, "status": f.status}
                    for f in stats.failures[:20]
                ]
            ),
        },
    )


def guard_result(verdict: GuardVerdict, *, forced: bool = False) -> dg.AssetCheckResult:
    """Failed (ERROR) when the plan was destructive: refused, or applied only by force; a WARN
    when creates for SKUs no product has were left out."""
    if verdict.refused:
        description = ("FORCED by an operator: " if forced else "") + verdict.message()
    elif verdict.unknown_sku_creates:
        description = (
            f"{verdict.unknown_sku_creates} entries not created: their SKUs are no product's "
            f"variant (first: {', '.join(verdict.unknown_skus)})"
        )
    else:
        description = "the plan is within the limits"
    data = verdict.as_metadata()
    metadata: dict[str, dg.RawMetadataValue] = {
        "refused": verdict.refused and not forced,
        "forced": forced,
        "unknown_sku_creates_dropped": verdict.unknown_sku_creates,
        "details": dg.MetadataValue.json(data),
    }
    if verdict.feed is not None:
        metadata["shop_skus"] = verdict.feed.shop_skus
        metadata["feed_matched_skus"] = verdict.feed.matched
        metadata["feed_match_share"] = float(round(verdict.feed.share, 4))
    for channel in verdict.channels:
        metadata[f"zeroed:{channel.channel}"] = channel.entries_zeroed
        metadata[f"units_removed:{channel.channel}"] = channel.units_removed
    return dg.AssetCheckResult(
        check_name=SYNC_GUARD,
        asset_key="inventory_sync",
        passed=not verdict.refused and not verdict.unknown_sku_creates,
        severity=dg.AssetCheckSeverity.ERROR if verdict.refused else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def staleness_result(
    last_taken_at: datetime | None, now: datetime, settings: InventorySettings
) -> dg.AssetCheckResult:
    stale_after = settings.stale_after
    metadata: CheckMetadata = {
        "cadence_minutes": settings.reconcile_minutes,
        "stale_after_minutes": float(stale_after.total_seconds() / 60),
    }
    if last_taken_at is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description="no inventory snapshot has been taken yet",
            metadata=metadata,
        )
    age = now - last_taken_at
    metadata["age_minutes"] = float(round(age.total_seconds() / 60, 2))
    metadata["last_snapshot_at"] = dg.MetadataValue.timestamp(last_taken_at)
    passed = age <= stale_after
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"last snapshot {age.total_seconds() / 60:.0f} min ago"
            + ("" if passed else f", older than the {settings.reconcile_minutes} min cadence")
        ),
        metadata=metadata,
    )


@dg.asset_check(
    asset=SNAPSHOTS,
    name=STALENESS,
    description="The latest inventory snapshot is no older than the reconciliation cadence.",
)
def inventory_snapshot_staleness(store: IntegrationStoreResource) -> dg.AssetCheckResult:
    snapshots = store.get_store().list_snapshots(SNAPSHOTS)
    last = snapshots[0].taken_at if snapshots else None
    return staleness_result(last, datetime.now(UTC), InventorySettings.from_env())
