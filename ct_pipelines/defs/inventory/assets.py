"""Inventory: ERP/WMS stock by location to commercetools supply channels, delta only.

- ``inventory_sync`` writes the differences (full reconciliation, or a delta for the SKUs the
  stock-movement sensor saw), one request per changed entry.
- ``inventory_snapshots`` records both systems with the time taken, and judges drift, oversell
  risk, mapping gaps and negative stock on what it read.

Targets, buffers and mapping rules: :mod:`ct_pipelines.defs.inventory.logic`.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from ct_pipelines.defs import systems
from ct_pipelines.defs.freshness import INVENTORY_CADENCE
from ct_pipelines.defs.inventory import checks
from ct_pipelines.defs.inventory.logic.diff import index_entries
from ct_pipelines.defs.inventory.logic.frames import (
    INVENTORY_SNAPSHOT_COLUMNS,
    commercetools_inventory_rows,
    erp_stock_rows,
    inventory_snapshot_frame,
)
from ct_pipelines.defs.inventory.logic.settings import InventorySettings
from ct_pipelines.defs.inventory.logic.sync import (
    InventoryOptions,
    InventorySync,
    InventorySyncRefused,
    analyse,
    source_locations,
)
from ct_pipelines.defs.inventory.logic.targets import compute_targets
from ct_pipelines.defs.metadata import frame_metadata, markdown_table
from ct_pipelines.defs.resources import CommercetoolsResource, ErpResource, IntegrationStoreResource
from ct_pipelines.defs.step_log import event_log_for_step, step_progress

FLOW = "inventory"
CHANGES_SNAPSHOT = "inventory_sync_changes"
CHANGE_COLUMNS: dict[str, str] = {
    "sku": "stock keeping unit",
    "channel_key": "commercetools supply channel key",
    "kind": "`update` (changeQuantity) or `create`",
    "before": "quantityOnStock read before the write (empty for a create)",
    "target": "quantityOnStock written: ERP available minus buffer, at least 0",
    "outcome": "`updated`, `created`, `converged` (already right after a 409 re-read), `failed`",
}

# Loaded when the code location loads: a broken rules file or setting stops it with a message
# naming the problem. Runs read them again, so they use the file as it is when they start.
InventorySettings.from_env().load_rules()


class InventorySyncConfig(dg.Config):
    mode: Literal["full", "delta"] = Field(
        default="full",
        description="full: every mapped channel and SKU; delta: only `skus` (from the sensor)",
    )
    skus: list[str] = Field(default_factory=list, description="SKUs of a delta run")
    locations: list[str] = Field(
        default_factory=list,
        description="ERP locations whose stock moved (delta); empty: every mapped channel",
    )
    max_workers: int | None = Field(
        default=None, description="concurrent writes; default CT_PIPELINES_INVENTORY_WORKERS"
    )
    dry_run: bool = Field(default=False, description="plan and report, write nothing")
    force: bool = Field(
        default=False,
        description=(
            "apply a plan the guard refused (zeroes or removes too much of a channel, or an ERP "
            "feed that does not match the shop); needs force_reason; audited in the store"
        ),
    )
    force_reason: str = Field(default="", description="why the override is right (audited)")
    forced_by: str = Field(
        default="", description="who overrides; default the run's dagster/user tag"
    )


@dg.asset(
    group_name=FLOW,
    kinds={"commercetools", "python"},
    pool="commercetools_writes",
    check_specs=[
        checks.SYNC_FAILURES_SPEC,
        dg.AssetCheckSpec(
            checks.SYNC_GUARD,
            asset="inventory_sync",
            description="The sync's plan was not destructive: it would not zero or remove "
            "more than the allowed share of a channel's stock, and the ERP feed matched enough "
            "of the shop's SKUs (or an operator forced it, audited).",
        ),
    ],
    description=(
        "Sets commercetools stock per SKU and supply channel to the ERP/WMS target "
        "(available minus buffer), writing only the entries that differ. Refuses, before any "
        "write, a plan that zeroes or removes too much of a channel or whose ERP feed does not "
        "match the shop's SKUs; never creates an entry for a SKU no product has."
    ),
    deps=[systems.ERP_STOCK],
    owners=[systems.WAREHOUSE],
    freshness_policy=INVENTORY_CADENCE,
)
def inventory_sync(
    context: dg.AssetExecutionContext,
    config: InventorySyncConfig,
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    store: IntegrationStoreResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    settings = InventorySettings.from_env()
    rules = settings.load_rules()
    if config.force and not config.force_reason.strip():
        raise dg.Failure("force needs force_reason: the override is audited")
    options = InventoryOptions(
        max_workers=config.max_workers or settings.max_workers,
        dry_run=config.dry_run,
        limits=settings.limits,
        force=config.force,
    )
    delta = config.mode == "delta"
    if delta and not config.skus:
        raise dg.Failure("a delta inventory sync needs the SKUs whose stock moved (config.skus)")
    channels = (
        sorted(rules.channels_fed_by(config.locations))
        if delta and config.locations
        else sorted(rules.channels)
    )
    taken_at = datetime.now(UTC)
    started = time.perf_counter()
    progress = step_progress(context, "inventory_sync writes", 0, unit="changes", every=1000)
    with (
        event_log_for_step(context),
        erp.open_port() as port,
        commercetools.open_client() as client,
    ):
        # A delta reads the ERP stock of the affected channels' locations only (none at all
        # when the locations that moved feed no channel).
        locations = source_locations(rules, channels) if delta else None
        rows = port.iter_stock(locations) if locations is None or locations else iter(())
        try:
            result = InventorySync(client, rules, options, progress=progress).run(
                rows,
                skus=config.skus if delta else None,
                channels=channels if delta else None,
            )
        except InventorySyncRefused as refused:
            verdict = refused.verdict
            if verdict is None:
                raise dg.Failure(str(refused)) from refused
            yield checks.guard_result(verdict)
            store.get_store().record_exception(
                flow=FLOW,
                entity_key="inventory_sync",
                category="sync_refused",
                reason=verdict.message()[:2000],
                details=verdict.as_metadata(),
            )
            context.log.error("%s", verdict.message())
            raise dg.Failure(
                description=verdict.message(),
                metadata={
                    "details": dg.MetadataValue.json(verdict.as_metadata()),
                    "write_requests": 0,
                },
            ) from refused
    if result.forced and result.guard is not None:
        actor = config.forced_by or context.run.tags.get("dagster/user") or "operator"
        audit = store.get_store()
        record = audit.record_exception(
            flow=FLOW,
            entity_key=f"forced:{context.run.run_id}",
            category="guard_override",
            reason=result.guard.message()[:2000],
            details={**result.guard.as_metadata(), "run_id": context.run.run_id},
            actor=actor,
        )
        audit.resolve_exception(
            record.id, actor, f"inventory_sync forced past the guard: {config.force_reason}"
        )
    elapsed = time.perf_counter() - started
    stats = result.stats
    if stats.failed and stats.failed == len(result.plan.changes):
        raise dg.Failure(
            f"all {stats.failed} inventory writes failed; first: {stats.failures[0].message}",
            metadata=stats.as_metadata(),
        )
    changes = pd.DataFrame(
        [
            {
                "sku": change.sku,
                "channel_key": change.channel,
                "kind": change.kind,
                "before": change.current,
                "target": change.target,
                "outcome": outcome,
            }
            for change, outcome in stats.outcomes
        ]
        if not options.dry_run
        else [
            {
                "sku": c.sku,
                "channel_key": c.channel,
                "kind": c.kind,
                "before": c.current,
                "target": c.target,
                "outcome": "planned",
            }
            for c in result.plan.changes
        ],
        columns=list(CHANGE_COLUMNS),
    )
    changes["before"] = changes["before"].astype("Int64")
    changes["target"] = changes["target"].astype("int64")
    db = store.get_store()
    db.write_snapshot(CHANGES_SNAPSHOT, changes, taken_at=taken_at)
    db.prune_snapshots(CHANGES_SNAPSHOT, keep=settings.snapshot_history)
    context.log.info(
        "inventory_sync (%s): %d compared, %d created, %d updated, %d unchanged, %d failed; "
        "%d write requests for %d changes",
        config.mode,
        result.plan.compared,
        stats.created,
        stats.updated,
        stats.unchanged,
        stats.failed,
        stats.write_requests,
        result.minimum_writes,
    )
    metadata = frame_metadata(changes, descriptions=CHANGE_COLUMNS)
    metadata.update(stats.as_metadata())
    metadata.update(
        {
            "mode": config.mode,
            "dry_run": config.dry_run,
            "compared": result.plan.compared,
            "minimum_write_requests": result.minimum_writes,
            "erp_rows": result.targets.erp_rows,
            "diff_seconds": float(round(result.seconds["diff"], 3)),
            "seconds": float(round(elapsed, 3)),
            "channels_in_scope": dg.MetadataValue.json(result.channels_in_scope),
            "channels_skipped": dg.MetadataValue.json(result.channels_skipped),
            "per_channel": markdown_table(
                [
                    {
                        "channel": channel,
                        "compared": counts.compared,
                        "to update": counts.to_update,
                        "to create": counts.to_create,
                        "oversell risk": counts.oversell_risk,
                    }
                    for channel, counts in sorted(result.plan.per_channel.items())
                ]
            ),
            "rules": dg.MetadataValue.json(rules.describe()),
            "sources": f"{erp.describe()}; {commercetools.describe()}",
        }
    )
    if delta:
        metadata["skus_in_delta"] = len(config.skus)
    guard = result.guard
    check_results = [checks.sync_failures_result(stats)]
    if guard is not None:
        metadata["unknown_sku_creates_dropped"] = guard.unknown_sku_creates
        metadata["forced"] = result.forced
        check_results.append(checks.guard_result(guard, forced=result.forced))
    yield dg.MaterializeResult(metadata=metadata, check_results=check_results)


@dg.asset(
    group_name=FLOW,
    kinds={"commercetools", "python"},
    deps=[inventory_sync, systems.ERP_STOCK, systems.COMMERCETOOLS_INVENTORY],
    check_specs=checks.SNAPSHOT_CHECK_SPECS,
    description=(
        "Stock per SKU in the ERP/WMS (by location) and in commercetools (by supply channel), "
        "kept with its time so drift can be followed."
    ),
    owners=[systems.WAREHOUSE],
    freshness_policy=INVENTORY_CADENCE,
)
def inventory_snapshots(
    context: dg.AssetExecutionContext,
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    settings = InventorySettings.from_env()
    rules = settings.load_rules()
    taken_at = datetime.now(UTC)
    with erp.open_port() as port:
        levels = list(port.iter_stock())
    with commercetools.open_client() as client:
        sync = InventorySync(client, rules, InventoryOptions(dry_run=True))
        directory = sync.read_channels()
        docs = list(client.query_all("inventory"))
    targets = compute_targets(levels, rules)
    current = index_entries(docs, directory.key_by_id, rules)
    analysis = analyse(targets, current, directory, rules)
    erp_rows = erp_stock_rows(levels)
    ct_rows = commercetools_inventory_rows(docs, directory.key_by_id)
    frame = inventory_snapshot_frame(erp_rows, ct_rows)
    frame["taken_at"] = taken_at.isoformat()
    db = store.get_store()
    info = db.write_snapshot("inventory_snapshots", frame, taken_at=taken_at)
    db.prune_snapshots("inventory_snapshots", keep=settings.snapshot_history)
    context.log.info(
        "inventory_snapshots: %d ERP rows, %d commercetools rows, %d entries off target",
        len(erp_rows),
        len(ct_rows),
        analysis.plan.drifted,
    )
    metadata = frame_metadata(frame, descriptions=INVENTORY_SNAPSHOT_COLUMNS)
    metadata.update(
        {
            "erp_rows": len(erp_rows),
            "commercetools_rows": len(ct_rows),
            "erp_locations": frame.loc[frame["system"] == "erp", "location"].nunique(),
            "commercetools_channels": frame.loc[
                frame["system"] == "commercetools", "channel_key"
            ].nunique(),
            # Numeric, so the UI plots drift over time across materialisations.
            "drifted_entries": analysis.plan.drifted,
            "oversell_risk_entries": sum(
                c.oversell_risk for c in analysis.plan.per_channel.values()
            ),
            "snapshot_taken_at": dg.MetadataValue.timestamp(taken_at),
            "snapshot_id": str(info.id),
            "sources": f"{erp.describe()}; {commercetools.describe()}",
        }
    )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            checks.drift_result(analysis),
            checks.oversell_result(analysis),
            checks.unmapped_result(analysis),
            checks.negative_result(targets, current),
        ],
    )
