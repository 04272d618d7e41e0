"""Product master: the designated master's items (the ERP by default), syndicated to commercetools.

``product_master`` reads the master and records what it holds; ``commercetools_products``
creates missing products and variants and sends the minimal update actions for the rest
(names, attributes, prices, tax categories), catching edits made in commercetools to mastered
fields. Nothing is ever deleted.
"""

from datetime import UTC, datetime
from typing import Literal

import dagster as dg

from ct_pipelines.defs import systems
from ct_pipelines.defs.metadata import check_text, frame_metadata, markdown_table
from ct_pipelines.defs.product_master.logic.frames import (
    PRODUCT_MASTER_COLUMNS,
    PRODUCT_SYNC_COLUMNS,
    product_master_frame,
    product_sync_frame,
)
from ct_pipelines.defs.product_master.logic.master import build_catalog
from ct_pipelines.defs.product_master.logic.planner import ProductOptions
from ct_pipelines.defs.product_master.logic.summary import issue_counts
from ct_pipelines.defs.product_master.logic.sync import FLOW, sync_products
from ct_pipelines.defs.product_master.resources import ProductCatalogResource
from ct_pipelines.defs.resources import (
    CommercetoolsResource,
    ErpResource,
    IntegrationStoreResource,
)
from ct_pipelines.defs.step_log import event_log_for_step, step_progress

SYNC_SNAPSHOT = "product_sync"
MASTER_RULE_CHECK = "mastered_fields_in_step"
MASTER_RULE_SPEC = dg.AssetCheckSpec(
    MASTER_RULE_CHECK,
    asset="commercetools_products",
    description="Fields the master owns are the same in commercetools (edits there were "
    "reverted, not left as reported) and every product synced.",
)
PREVIEW_CHANGES = 25


@dg.asset(
    group_name=FLOW,
    kinds={"python"},
    deps=[systems.ERP_ITEMS],
    owners=[systems.MERCHANDISING],
)
def product_master(
    context: dg.AssetExecutionContext, erp: ErpResource, store: IntegrationStoreResource
) -> dg.MaterializeResult:
    """The designated master's items (the ERP by default), as syndication reads them."""
    with erp.open_port() as port:
        frame = product_master_frame(port.iter_items())
    taken_at = datetime.now(UTC)
    info = store.get_store().write_snapshot(FLOW, frame, taken_at=taken_at)
    context.log.info("product_master: %d items from %s", len(frame), erp.describe())
    metadata = frame_metadata(frame, descriptions=PRODUCT_MASTER_COLUMNS)
    metadata.update(
        {
            "source": erp.describe(),
            "snapshot_taken_at": dg.MetadataValue.timestamp(taken_at),
            "snapshot_id": str(getattr(info, "id", "")),
            "active_items": int(frame["active"].sum()) if len(frame) else 0,
            "items_by_tax_code": dg.MetadataValue.json(
                {str(k): int(v) for k, v in frame["tax_code"].value_counts().items()}
            ),
            # Two items with one SKU cannot both be syndicated; the sync keeps the first.
            "duplicate_skus": int(frame["sku"].duplicated().sum()),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


class ProductSyncConfig(dg.Config):
    """Run configuration of a product sync."""

    # What to do with an edit made in commercetools to a mastered field.
    drift_policy: Literal["revert", "report"] = "revert"
    # Publish after updating (else changes stay staged for a person to publish).
    publish: bool = True
    # What happens in commercetools to what the master deactivates; never a deletion.
    deactivation: Literal["unpublish", "flag"] = "unpublish"
    # Boolean variant attribute marking deactivated variants; empty turns flagging off.
    flag_attribute: str = "discontinued"
    # A product whose tax category cannot be resolved: created unpublished, or not created.
    unresolved_tax: Literal["unpublished", "skip"] = "unpublished"
    # Plan and report only; nothing is sent and the baseline is kept.
    dry_run: bool = False
    # Stop sending after this many failed products: past that something systemic is wrong.
    max_failures: int = 50

    def policy(self, product_type_key: str | None) -> ProductOptions:
        return ProductOptions(
            drift=self.drift_policy,
            publish=self.publish,
            deactivation=self.deactivation,
            flag_attribute=self.flag_attribute or None,
            product_type_key=product_type_key,
            unresolved_tax=self.unresolved_tax,
        )


@dg.asset(
    group_name=FLOW,
    kinds={"commercetools", "python"},
    deps=[product_master],
    pool="commercetools_writes",
    check_specs=[MASTER_RULE_SPEC],
    owners=[systems.MERCHANDISING],
)
def commercetools_products(
    context: dg.AssetExecutionContext,
    config: ProductSyncConfig,
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    store: IntegrationStoreResource,
    product_catalog: ProductCatalogResource,
) -> dg.MaterializeResult:
    """commercetools products, variants, prices and tax categories syndicated from the master.

    Creates what is missing, sends only the update actions that change something (a sync with
    nothing to do sends no request), publishes per configuration, and reverts or reports edits
    made in commercetools to mastered fields. Deactivated items are unpublished or flagged,
    never deleted.
    """
    taken_at = datetime.now(UTC)
    with erp.open_port() as port:
        master = build_catalog(port.iter_items(), product_catalog.rules())
    integration_store = store.get_store()
    policy = config.policy(product_catalog.product_type_key)
    progress = step_progress(context, "commercetools_products sync", 0, unit="products", every=200)
    with event_log_for_step(context), commercetools.open_client() as client:
        run = sync_products(
            client,
            integration_store,
            master,
            policy,
            dry_run=config.dry_run,
            taken_at=taken_at,
            max_failures=config.max_failures,
            progress=progress,
        )
    plan, result = run.plan, run.result
    frame = product_sync_frame(plan, result)
    if not config.dry_run:
        integration_store.write_snapshot(SYNC_SNAPSHOT, frame, taken_at=taken_at)
    drift = plan.drift_counts()
    changes = [
        {
            "entity": c.entity,
            "field": c.field,
            "master": c.master,
            "commercetools": c.commercetools,
            "kind": c.kind,
            "applied": c.applied,
        }
        for c in plan.changes()
    ]
    context.log.info(
        "commercetools_products: %d products, %d update requests planned, %d sent, "
        "%d created, %d failed; drift %s",
        plan.products,
        plan.update_requests,
        result.update_requests,
        len(result.created),
        len(result.failed),
        drift,
    )
    if plan.issues:
        # What the sync skipped or sent only in part: a warning, so it shows in the event log.
        context.log.warning(
            "commercetools_products: %d things not sent as the master has them (%s); first: %s",
            len(plan.issues),
            ", ".join(f"{kind} {n}" for kind, n in issue_counts(plan).items()),
            "; ".join(f"{issue.entity}: {issue.detail}" for issue in plan.issues[:5]),
        )
    if result.aborted:
        raise dg.Failure(
            f"product sync stopped after {len(result.failed)} failed products; "
            "see the exception queue (flow product_master)",
            metadata={"failed_products": len(result.failed)},
        )
    metadata = frame_metadata(frame, descriptions=PRODUCT_SYNC_COLUMNS)
    metadata.update(
        {
            "target": commercetools.describe(),
            "master": erp.describe(),
            "dry_run": config.dry_run,
            "drift_policy": config.drift_policy,
            "publish": config.publish,
            "deactivation": config.deactivation,
            "skus": plan.skus,
            "baseline_found": run.baseline_found,
            "requests_planned": plan.requests,
            "update_requests_planned": plan.update_requests,
            "update_requests_sent": result.update_requests,
            "products_created": len(result.created),
            "products_updated": len(result.updated),
            "products_failed": len(result.failed),
            "actions_planned": dg.MetadataValue.json(plan.action_counts()),
            "drift_detected": drift["detected"],
            "drift_reverted": drift["reverted"],
            "drift_reported": drift["reported"],
            "issues": dg.MetadataValue.json(issue_counts(plan)),
            "exceptions_recorded": run.exceptions_recorded,
            "exceptions_closed": run.exceptions_closed,
            "changes": markdown_table(
                changes, PREVIEW_CHANGES, empty="No mastered field differs.", say_more=True
            ),
        }
    )
    unreverted = drift["reported"]
    failed = len(result.failed)
    check = dg.AssetCheckResult(
        check_name=MASTER_RULE_CHECK,
        passed=unreverted == 0 and failed == 0,
        # A failed product means the master's data did not arrive; a reported edit is a
        # decision waiting for a person.
        severity=dg.AssetCheckSeverity.ERROR if failed else dg.AssetCheckSeverity.WARN,
        description=check_text(
            MASTER_RULE_CHECK,
            unreverted == 0 and failed == 0,
            "every mastered field is as the master has it and every product synced",
            f"{unreverted} edits made in commercetools to fields the master owns were left as "
            f"reported, {failed} products failed to sync",
            "decide whether each edit was right: if so make it in the master, if not the next "
            "sync reverts it; failed products are on the exception queue with their reason "
            "(`ct-pipelines exceptions list --flow product_master`)",
        ),
        metadata={
            "drift_reported": unreverted,
            "drift_reverted": drift["reverted"],
            "products_failed": failed,
        },
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])
