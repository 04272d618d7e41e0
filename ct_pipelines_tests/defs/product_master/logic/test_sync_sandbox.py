"""The product sync against the sandbox: real HTTP requests, counted at the transport."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ct_pipelines.commercetools import CommercetoolsClient
from ct_pipelines.defs.product_master.logic.master import MasterCatalog, build_catalog
from ct_pipelines.defs.product_master.logic.parity import compare
from ct_pipelines.defs.product_master.logic.planner import ProductOptions
from ct_pipelines.defs.product_master.logic.sync import FLOW, SyncRun, sync_products
from ct_pipelines.defs.resources import sandbox_settings
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines.store import IntegrationStore
from ct_pipelines_tests.defs.product_master.logic.sandbox_helpers import (
    erp_skus_of_product,
    price_minor,
    product_by_sku,
    set_erp_active,
    set_erp_price,
    variant,
)
from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld
from ct_sandbox.testing import CountingTransport


class Harness:
    def __init__(self, sandbox: Path, store: IntegrationStore) -> None:
        self.sandbox = sandbox
        self.world = SandboxWorld.open(sandbox)
        self.store = store
        self.transport = CountingTransport(self.world.commercetools_transport())

    def sync(self, **policy: object) -> SyncRun:
        self.transport.requests.clear()
        erp = RestErpClient(SANDBOX_ERP_URL, None, transport=self.world.erp_transport())
        with erp:
            master = build_catalog(erp.iter_items())
        with CommercetoolsClient(sandbox_settings(), transport=self.transport) as client:
            return sync_products(
                client,
                self.store,
                master,
                ProductOptions(**policy),  # type: ignore[arg-type]
                taken_at=datetime.now(UTC),
            )


@pytest.fixture
def harness(sandbox_dir: Path, tmp_path: Path) -> Iterator[Harness]:
    store = IntegrationStore(f"sqlite:///{tmp_path / 'sync-store.db'}")
    store.migrate()
    yield Harness(sandbox_dir, store)
    store.close()


def test_second_sync_with_no_changes_sends_zero_update_requests(harness: Harness) -> None:
    first = harness.sync()
    # The seed has two items the ERP discontinued while commercetools still sells them.
    assert first.plan.action_counts() == {"publish": 2, "setAttribute": 2}
    assert len(harness.transport.product_updates()) == 2
    assert not first.result.failed

    second = harness.sync()

    assert second.plan.requests == 0
    assert harness.transport.product_writes() == []
    assert second.baseline_found
    report = compare(build_catalog_from(harness), second.commercetools)
    assert report.price_mismatches == [] and report.missing_in_commercetools == []


def build_catalog_from(harness: Harness) -> MasterCatalog:
    with RestErpClient(SANDBOX_ERP_URL, None, transport=harness.world.erp_transport()) as erp:
        return build_catalog(erp.iter_items())


def test_an_erp_price_change_is_one_update_with_change_price(harness: Harness) -> None:
    harness.sync()
    set_erp_price(harness.sandbox, "TSH-NAVY-M", "GBP", 2799)

    run = harness.sync()

    assert run.plan.action_counts() == {"changePrice": 1, "publish": 1}
    assert len(harness.transport.product_updates()) == 1
    product = product_by_sku(harness.world, "TSH-NAVY-M")
    assert price_minor(product, "TSH-NAVY-M") == 2799
    assert not product["masterData"]["hasStagedChanges"]
    assert [c.kind for c in run.plan.changes()] == ["syndicate"]
    assert harness.sync().plan.requests == 0


def test_an_edit_in_commercetools_is_reverted(harness: Harness) -> None:
    harness.sync()
    drift = harness.world.inject_drift("price_mismatch", skus=["MUG-SAGE"])
    erp_amount = drift["details"][0]["erp_amount_minor"]

    run = harness.sync(drift="revert")

    assert run.plan.drift_counts() == {"detected": 1, "reverted": 1, "reported": 0}
    assert len(harness.transport.product_updates()) == 1
    assert price_minor(product_by_sku(harness.world, "MUG-SAGE"), "MUG-SAGE") == erp_amount


def test_an_edit_in_commercetools_is_reported_and_left_alone(harness: Harness) -> None:
    harness.sync()
    harness.world.inject_drift("price_mismatch", skus=["MUG-SAGE"])
    edited = product_by_sku(harness.world, "MUG-SAGE")

    run = harness.sync(drift="report")

    assert run.plan.drift_counts() == {"detected": 1, "reverted": 0, "reported": 1}
    assert harness.transport.product_writes() == []
    assert product_by_sku(harness.world, "MUG-SAGE") == edited
    (queued,) = harness.store.list_exceptions(flow=FLOW, status="open")
    assert queued.category == "product_drift" and queued.sku == "MUG-SAGE"
    assert queued.entity_key == "sku:MUG-SAGE|price:GBP/GB/*"

    # Reported again (not reverted) on the next run; closed once someone fixes it.
    harness.sync(drift="report")
    (again,) = harness.store.list_exceptions(flow=FLOW, status="open")
    assert again.attempts == 2
    harness.sync(drift="revert")
    assert harness.store.list_exceptions(flow=FLOW, status="open") == []


def test_a_deactivated_product_is_unpublished_never_deleted(harness: Harness) -> None:
    harness.sync()
    skus = erp_skus_of_product(harness.sandbox, "oak")
    products_before = harness.world.documents.count("products")
    set_erp_active(harness.sandbox, skus, active=False)

    run = harness.sync(deactivation="unpublish")

    assert run.plan.action_counts() == {"unpublish": 1}
    product = product_by_sku(harness.world, skus[0])
    assert product["masterData"]["published"] is False
    assert harness.world.documents.count("products") == products_before
    assert not [w for w in harness.transport.product_writes() if w[0] == "DELETE"]
    assert harness.sync(deactivation="unpublish").plan.requests == 0

    set_erp_active(harness.sandbox, skus, active=True)
    assert harness.sync().plan.action_counts() == {"publish": 1}
    assert product_by_sku(harness.world, skus[0])["masterData"]["published"] is True


def test_a_deactivated_product_is_flagged_when_configured(harness: Harness) -> None:
    harness.sync()
    skus = erp_skus_of_product(harness.sandbox, "oak")
    set_erp_active(harness.sandbox, skus, active=False)

    run = harness.sync(deactivation="flag")

    assert run.plan.action_counts() == {"publish": 1, "setAttribute": len(skus)}
    product = product_by_sku(harness.world, skus[0])
    assert product["masterData"]["published"] is True
    for sku in skus:
        attributes = {a["name"]: a["value"] for a in variant(product, sku)["attributes"]}
        assert attributes["discontinued"] is True


def test_items_missing_in_commercetools_become_products_and_variants(harness: Harness) -> None:
    # Items the ERP has and commercetools lacks (removed here before any sync).
    doc = product_by_sku(harness.world, "TSH-NAVY-M")
    for view in ("current", "staged"):
        data = doc["masterData"][view]
        data["variants"] = [v for v in data["variants"] if v.get("sku") != "TSH-NAVY-M"]
    harness.world.documents.replace("products", doc)
    mug = product_by_sku(harness.world, "MUG-SAGE")
    harness.world.documents.delete("products", mug["id"])

    run = harness.sync()

    counts = run.plan.action_counts()
    assert counts["createProduct"] == 1 and counts["addVariant"] == 1
    assert not run.result.failed
    created = product_by_sku(harness.world, "MUG-SAGE")
    assert created["key"] == "mug" and created["masterData"]["published"] is True
    assert harness.sync().plan.requests == 0
