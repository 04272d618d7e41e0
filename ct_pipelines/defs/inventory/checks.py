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
from ct_pipelines.defs.metadata import check_text
from ct_pipelines.defs.resources import IntegrationStoreResource

SNAPSHOTS = "inventory_snapshots"
DRIFT = "inventory_drift"
OVERSELL = "inventory_oversell_risk"
UNMAPPED = "inventory_unmapped"
NEGATIVE = "inventory_negative_stock"
STALENESS = "inventory_snapshot_staleness"
SYNC_FAILURES = "inventory_sync_failures"
SYNC_FAILURES_SPEC = dg.AssetCheckSpec(
    SYNC_FAILURES,
    asset="inventory_sync",
    description="Every stock write of this sync reached commercetools: none refused, none left "
    "unsent.",
)
SYNC_GUARD = "inventory_sync_guard"
#: drift above this share of compared entries is an error, below it a warning (in flight)
DRIFT_ERROR_RATIO = 0.01

#: what the checks report: counts, ratios and Dagster metadata values (JSON, timestamps)
CheckMetadata = dict[str, dg.MetadataValue | int | float]

SNAPSHOT_CHECK_SPECS = [
    dg.AssetCheckSpec(
        DRIFT,
        asset=SNAPSHOTS,
        description="Every SKU in every supply channel shows in commercetools the quantity the "
        "ERP/WMS says should be available (ERP available minus the buffer).",
    ),
    dg.AssetCheckSpec(
        OVERSELL,
        asset=SNAPSHOTS,
        description="No SKU shows more available in commercetools than the ERP/WMS has for its "
        "channel (customers could buy stock that does not exist).",
    ),
    dg.AssetCheckSpec(
        UNMAPPED,
        asset=SNAPSHOTS,
        description="Every stocked ERP location and every supply channel is mapped (or "
        "deliberately ignored) in the inventory rules, so no stock goes unpublished.",
    ),
    dg.AssetCheckSpec(
        NEGATIVE,
        asset=SNAPSHOTS,
        description="No ERP stock row and no commercetools entry holds negative stock.",
    ),
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
        description=check_text(
            DRIFT,
            drifted == 0,
            f"all {compared} entries in commercetools hold their target",
            f"{drifted} of {compared} entries in commercetools differ from what the ERP/WMS "
            "says should be available (by channel: "
            + ", ".join(
                f"{channel} {counts.drifted}"
                for channel, counts in sorted(plan.per_channel.items())
                if counts.drifted
            )
            + ")",
            "the next inventory_full_reconciliation repairs drift; if it stays, look at the "
            "channels in the metadata and tell IT the channel name",
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
        description=check_text(
            OVERSELL,
            total == 0,
            "no channel offers more than the ERP has",
            f"{total} entries show more available in commercetools than in the ERP (by "
            "channel: " + ", ".join(f"{c} {n}" for c, n in per_channel.items() if n) + ")",
            "run inventory_full_reconciliation now; if the check still fails, tell IT and "
            "consider taking the SKUs offline",
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
        description=check_text(
            UNMAPPED,
            report.problems == 0,
            "every location and supply channel is mapped or ignored",
            f"{report.problems} mapping gaps: {len(report.unmapped_locations)} ERP locations "
            f"and {len(report.unmapped_channels)} supply channels without a rule, "
            f"{len(report.missing_channels)} channels of the rules missing in commercetools"
            + (
                f" ({', '.join(sorted(report.missing_channels)[:5])})"
                if report.missing_channels
                else ""
            ),
            "the stock team tells IT which location belongs to which channel; IT updates the "
            "inventory rules (CT_PIPELINES_INVENTORY_RULES)",
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
        description=check_text(
            NEGATIVE,
            erp + ct == 0,
            "no negative stock",
            f"negative stock: {erp} ERP rows, {ct} commercetools entries",
            "the warehouse corrects the stock count in the WMS (a missed goods receipt or a "
            "double-booked sale)",
        ),
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
        description=check_text(
            SYNC_FAILURES,
            failed == 0,
            "every planned write succeeded",
            f"{failed} stock entries could not be written (by code: "
            + ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))
            + ")",
            "nothing for transient failures, the next reconciliation retries them; tell IT "
            "when the same SKUs fail again (first ones in the metadata)",
        ),
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
        description = check_text(
            SYNC_GUARD,
            False,
            "",
            ("FORCED by an operator: " if forced else "") + verdict.message().rstrip("."),
            "compare the ERP feed with the shop (re-keyed SKUs, a wrong location mapping, a "
            "half-finished ERP import); only when the stock really is gone, IT re-runs "
            "inventory_sync with `force: true` and a `force_reason`"
            if not forced
            else "check with whoever forced it (the `guard_override` exception says who and "
            "why) that the stock really was gone",
        )
    elif verdict.unknown_sku_creates:
        description = check_text(
            SYNC_GUARD,
            False,
            "",
            f"{verdict.unknown_sku_creates} entries not created: their SKUs are no product's "
            f"variant (first: {', '.join(verdict.unknown_skus)})",
            "the product team creates the products in commercetools (product_master_sync_job) "
            "or removes the SKUs from the ERP's stock feed",
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
            description=check_text(
                STALENESS,
                False,
                "",
                "no inventory snapshot has been taken yet",
                "turn on the schedule inventory_full_reconciliation (or run it once)",
            ),
            metadata=metadata,
        )
    age = now - last_taken_at
    metadata["age_minutes"] = float(round(age.total_seconds() / 60, 2))
    metadata["last_snapshot_at"] = dg.MetadataValue.timestamp(last_taken_at)
    passed = age <= stale_after
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check_text(
            STALENESS,
            passed,
            f"last snapshot {age.total_seconds() / 60:.0f} min ago",
            f"the last inventory snapshot is {age.total_seconds() / 60:.0f} minutes old, older "
            f"than the {settings.reconcile_minutes}-minute reconciliation cadence",
            "check that the schedule inventory_full_reconciliation is on and its last runs "
            "succeeded; tell IT if they fail",
        ),
        metadata=metadata,
    )


@dg.asset_check(
    asset=SNAPSHOTS,
    name=STALENESS,
    description="The latest inventory snapshot is no older than the reconciliation cadence "
    "(CT_PIPELINES_INVENTORY_RECONCILE_MINUTES), so stock figures are not going stale.",
)
def inventory_snapshot_staleness(store: IntegrationStoreResource) -> dg.AssetCheckResult:
    snapshots = store.get_store().list_snapshots(SNAPSHOTS)
    last = snapshots[0].taken_at if snapshots else None
    return staleness_result(last, datetime.now(UTC), InventorySettings.from_env())
