"""Reading commercetools for the planner, and applying a plan through the client.

One request per product that has work (two or more only past 500 actions, the client chunks);
a product with nothing to change gets no request. A failure of one product is recorded and the
sync goes on; the failed product keeps its previous baseline so the unsent change is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from ct_pipelines.commercetools.errors import CommercetoolsError, NotFoundError
from ct_pipelines.defs.product_master.logic.master import MasterCatalog, MasterProduct
from ct_pipelines.defs.product_master.logic.planner import (
    Baseline,
    CommercetoolsCatalog,
    ProductItemPlan,
    ProductOptions,
    ProductPlan,
    ProductPlanner,
    next_baseline,
    plan_sync,
)
from ct_pipelines.store import ExceptionRecord, ExceptionStatus, SnapshotInfo, SnapshotNotFound

logger = logging.getLogger(__name__)

FLOW = "product_master"
BASELINE_SNAPSHOT = "product_sync_baseline"
BASELINE_HISTORY = 10
DRIFT_CATEGORY = "product_drift"

BASELINE_COLUMNS = {
    "entity": "product:<key> or sku:<sku>",
    "fields": "mastered field -> canonical value as of the last successful sync",
}


class ProductsClient(Protocol):
    """The part of ``CommercetoolsClient`` the sync uses."""

    def query_all(self, resource: str) -> Iterable[dict[str, Any]]: ...

    def create(self, resource: str, draft: dict[str, Any]) -> dict[str, Any]: ...

    def update(
        self,
        resource: str,
        id: str,
        version: int,
        actions: Any,
        *,
        reread: Callable[[dict[str, Any]], list[dict[str, Any]] | None] | None = None,
    ) -> dict[str, Any]: ...


def read_product_types(client: ProductsClient) -> list[dict[str, Any]] | None:
    """Every product type; None when the API offers no product-types endpoint (the local
    sandbox before it models them): drafts are then not checked against the type."""
    try:
        return list(client.query_all("product-types"))
    except NotFoundError:
        logger.warning("commercetools has no product-types endpoint; drafts not checked")
        return None


def read_project_currencies(client: ProductsClient) -> list[str] | None:
    """The project's currencies (``GET /{projectKey}``); None when it cannot be read."""
    get_project = getattr(client, "get_project", None)
    if get_project is None:
        return None
    try:
        project = get_project()
    except NotFoundError:
        logger.warning("commercetools project settings not readable; currencies not checked")
        return None
    currencies = project.get("currencies")
    return [str(c) for c in currencies] if isinstance(currencies, list) else None


def read_commercetools(client: ProductsClient) -> CommercetoolsCatalog:
    """Every product (current and staged data), with channel and tax category keys, the
    product types and the project's currencies (drafts are mapped onto them)."""
    channels = {c["id"]: c["key"] for c in client.query_all("channels") if c.get("key")}
    tax_categories = {t["id"]: t["key"] for t in client.query_all("tax-categories") if t.get("key")}
    return CommercetoolsCatalog(
        client.query_all("products"),
        channel_keys=channels,
        tax_category_keys=tax_categories,
        product_types=read_product_types(client),
        currencies=read_project_currencies(client),
    )


@dataclass(slots=True)
class ProductReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # product key -> reason (no secrets)
    requests: int = 0  # create and update requests sent, as planned (chunks counted)
    update_requests: int = 0
    aborted: bool = False


def apply_plan(
    client: ProductsClient,
    plan: ProductPlan,
    master: MasterCatalog,
    commercetools: CommercetoolsCatalog,
    baseline: Baseline | None = None,
    *,
    max_failures: int = 50,
) -> ProductReport:
    """Send the plan; ``commercetools`` is updated with the products the API returned.

    On a 409 the product is read again and its actions are planned afresh from the new
    version (the client's ``reread``), so a concurrent edit is neither lost nor overwritten
    blindly. Stops after ``max_failures`` failed products: past that, something systemic is
    wrong (credentials, an outage) and carrying on only hammers the API.
    """
    products: dict[str, MasterProduct] = {p.key: p for p in master.products}
    planner = ProductPlanner(commercetools, plan.policy, baseline, master.attribute_names)
    result = ProductReport()
    for product_plan in plan.plans:
        if product_plan.draft is None and not product_plan.actions:
            continue
        if len(result.failed) >= max_failures:
            result.aborted = True
            result.failed.setdefault(product_plan.product_key, "not attempted: sync aborted")
            continue
        try:
            doc = _send(client, product_plan, planner, products[product_plan.product_key])
        except CommercetoolsError as exc:
            logger.warning("product %s: %s", product_plan.product_key, exc)
            result.failed[product_plan.product_key] = str(exc)[:500]
            continue
        result.requests += product_plan.requests
        if product_plan.draft is not None:
            result.created.append(product_plan.product_key)
        else:
            result.updated.append(product_plan.product_key)
            result.update_requests += product_plan.requests
        commercetools.add(doc)
    return result


def _send(
    client: ProductsClient, plan: ProductItemPlan, planner: ProductPlanner, product: MasterProduct
) -> dict[str, Any]:
    if plan.draft is not None:
        return client.create("products", plan.draft)
    assert plan.product_id is not None and plan.version is not None

    def reread(fresh: dict[str, Any]) -> list[dict[str, Any]]:
        return planner.plan(product, fresh).actions

    return client.update("products", plan.product_id, plan.version, plan.actions, reread=reread)


def baseline_frame(baseline: Baseline) -> pd.DataFrame:
    rows = [{"entity": e, "fields": dict(sorted(f.items()))} for e, f in sorted(baseline.items())]
    return pd.DataFrame(rows, columns=list(BASELINE_COLUMNS))


def baseline_from_frame(frame: pd.DataFrame) -> Baseline:
    return {
        str(entity): {str(k): str(v) for k, v in (fields or {}).items()}
        for entity, fields in zip(frame["entity"], frame["fields"], strict=True)
    }


# --- one sync run: baseline in, plan, apply, baseline and exceptions out ---------------------


class SyncStore(Protocol):
    """The part of ``IntegrationStore`` a sync run uses."""

    def read_snapshot(self, name: str) -> pd.DataFrame: ...

    def write_snapshot(
        self, name: str, rows: pd.DataFrame, *, taken_at: datetime
    ) -> SnapshotInfo: ...

    def prune_snapshots(self, name: str, keep: int) -> int: ...

    def record_exception(
        self,
        *,
        flow: str,
        entity_key: str,
        category: str,
        reason: str,
        details: Mapping[str, Any] | None = None,
        sku: str | None = None,
    ) -> ExceptionRecord: ...

    def list_exceptions(
        self, flow: str | None = None, status: Sequence[ExceptionStatus] | None = None
    ) -> list[ExceptionRecord]: ...

    def close_on_success(self, flow: str, entity_key: str) -> list[ExceptionRecord]: ...


@dataclass(slots=True)
class SyncRun:
    plan: ProductPlan
    result: ProductReport
    commercetools: CommercetoolsCatalog
    baseline_found: bool
    exceptions_recorded: int = 0
    exceptions_closed: int = 0


def load_baseline(store: SyncStore) -> Baseline | None:
    try:
        frame = store.read_snapshot(BASELINE_SNAPSHOT)
    except SnapshotNotFound:
        return None
    return baseline_from_frame(frame)


def sync_products(
    client: ProductsClient,
    store: SyncStore,
    master: MasterCatalog,
    policy: ProductOptions,
    *,
    dry_run: bool = False,
    taken_at: datetime,
    max_failures: int = 50,
) -> SyncRun:
    """Plan and apply one sync; keeps the baseline and the exception queue up to date.

    A dry run plans only: nothing is sent, the baseline and the queue are left alone.
    """
    baseline = load_baseline(store)
    commercetools = read_commercetools(client)
    plan = plan_sync(master, commercetools, policy, baseline)
    run = SyncRun(plan, ProductReport(), commercetools, baseline_found=baseline is not None)
    if dry_run:
        return run
    run.result = apply_plan(
        client, plan, master, commercetools, baseline, max_failures=max_failures
    )
    store.write_snapshot(
        BASELINE_SNAPSHOT,
        baseline_frame(next_baseline(baseline, master, policy, run.result.failed)),
        taken_at=taken_at,
    )
    store.prune_snapshots(BASELINE_SNAPSHOT, keep=BASELINE_HISTORY)
    run.exceptions_recorded, run.exceptions_closed = _queue_exceptions(store, run)
    return run


def _queue_exceptions(store: SyncStore, run: SyncRun) -> tuple[int, int]:
    """Reported drift, issues and failures go to the exception queue; fixed ones are closed."""
    open_now: set[str] = set()
    recorded = 0
    for change in run.plan.changes():
        if change.kind != "drift" or change.applied:
            continue
        key = f"{change.entity}|{change.field}"
        open_now.add(key)
        store.record_exception(
            flow=FLOW,
            entity_key=key,
            category=DRIFT_CATEGORY,
            reason=(
                f"{change.field} of {change.entity} was changed in commercetools to "
                f"{change.commercetools!r}; the master says {change.master!r} (reported, not reverted)"
            ),
            details={
                "field": change.field,
                "master": change.master,
                "commercetools": change.commercetools,
            },
            sku=change.entity.removeprefix("sku:") if change.entity.startswith("sku:") else None,
        )
        recorded += 1
    for issue in run.plan.issues:
        key = f"{issue.entity}|{issue.kind}"
        open_now.add(key)
        store.record_exception(flow=FLOW, entity_key=key, category=issue.kind, reason=issue.detail)
        recorded += 1
    for product_key, reason in run.result.failed.items():
        key = f"product:{product_key}|sync_failed"
        open_now.add(key)
        store.record_exception(flow=FLOW, entity_key=key, category="sync_failed", reason=reason)
        recorded += 1
    closed = 0
    for record in store.list_exceptions(flow=FLOW, status=["open", "retrying"]):
        if record.entity_key not in open_now:
            store.close_on_success(FLOW, record.entity_key)
            closed += 1
    return recorded, closed
