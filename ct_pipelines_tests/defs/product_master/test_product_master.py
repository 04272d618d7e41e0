"""The product master assets and checks run by Dagster against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.defs.product_master.assets import (
    MASTER_RULE_CHECK,
    commercetools_products,
    product_master,
)
from ct_pipelines.defs.product_master.checks import product_parity
from ct_pipelines.defs.product_master.resources import ProductCatalogResource
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.defs.product_master.logic.sandbox_helpers import (
    price_minor,
    product_by_sku,
    set_erp_price,
)
from ct_pipelines_tests.runbook import assert_says_what_to_do
from ct_sandbox import SandboxWorld

ASSETS = [product_master, commercetools_products]


def _resources() -> dict[str, Any]:
    return {**build_resources(), "product_catalog": ProductCatalogResource()}


def _run(sync_config: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        resources=_resources(),
        run_config={"ops": {"commercetools_products": {"config": sync_config or {}}}},
    )


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    (event,) = [m for m in result.asset_materializations_for_node(asset)]
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def test_sync_then_nothing_to_do_sends_no_update_request(sandbox_dir: Path) -> None:
    first = _run()
    assert first.success
    meta = _metadata(first, "commercetools_products")
    assert meta["update_requests_sent"] == 2  # the seed's two discontinued items get flagged
    assert meta["dagster/row_count"] == meta["products_updated"] + 60
    world = SandboxWorld.open(sandbox_dir)
    versions = {d["id"]: d["version"] for d in world.documents.iter_all("products")}

    second = _run()

    meta = _metadata(second, "commercetools_products")
    assert meta["update_requests_planned"] == 0
    assert meta["update_requests_sent"] == 0
    assert meta["baseline_found"] is True
    assert {d["id"]: d["version"] for d in world.documents.iter_all("products")} == versions
    assert _check(second, MASTER_RULE_CHECK).passed
    assert _metadata(second, "product_master")["duplicate_skus"] == 0


@pytest.mark.parametrize("policy", ["revert", "report"])
def test_edit_in_commercetools_is_reverted_or_reported(sandbox_dir: Path, policy: str) -> None:
    assert _run().success
    world = SandboxWorld.open(sandbox_dir)
    world.inject_drift("price_mismatch", skus=["CND-FIG"])
    set_erp_price(sandbox_dir, "MUG-CREAM", "GBP", 1350)

    result = _run({"drift_policy": policy})

    meta = _metadata(result, "commercetools_products")
    assert meta["drift_detected"] == 1
    assert price_minor(product_by_sku(world, "MUG-CREAM"), "MUG-CREAM") == 1350
    check = _check(result, MASTER_RULE_CHECK)
    if policy == "revert":
        assert meta["drift_reverted"] == 1 and meta["update_requests_sent"] == 2
        assert price_minor(product_by_sku(world, "CND-FIG"), "CND-FIG") == 1800
        assert check.passed
    else:
        assert meta["drift_reported"] == 1 and meta["update_requests_sent"] == 1
        assert price_minor(product_by_sku(world, "CND-FIG"), "CND-FIG") != 1800
        assert not check.passed
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert check.metadata["drift_reported"].value == 1
        assert_says_what_to_do(check.description, MASTER_RULE_CHECK)


def test_dry_run_sends_nothing(sandbox_dir: Path) -> None:
    result = _run({"dry_run": True})
    meta = _metadata(result, "commercetools_products")
    assert meta["update_requests_planned"] == 2 and meta["update_requests_sent"] == 0
    assert meta["baseline_found"] is False


def test_parity_checks_pass_after_a_sync_and_catch_drift(sandbox_dir: Path) -> None:
    assert _run().success
    world = SandboxWorld.open(sandbox_dir)
    world.inject_drift("price_mismatch", skus=["CND-FIG"])
    world.inject_drift("sku_missing_in_erp", product_keys=["mug"])

    result = dg.materialize(
        [*ASSETS, product_parity],
        resources=_resources(),
        selection=dg.AssetSelection.checks(product_parity),
    )

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {
        "sku_parity",
        "price_parity",
        "tax_category_parity",
        "variants_without_price",
        "duplicate_skus",
    }
    assert not evaluations["price_parity"].passed
    assert evaluations["price_parity"].metadata["mismatches"].value == 1
    assert evaluations["price_parity"].severity == dg.AssetCheckSeverity.ERROR
    assert not evaluations["sku_parity"].passed
    assert evaluations["sku_parity"].metadata["missing_in_master"].value == 1
    assert evaluations["sku_parity"].metadata["missing_in_commercetools"].value == 0
    price = evaluations["price_parity"]
    assert "CND-FIG GBP" in str(price.description) and "minor units)" in str(price.description)
    for name in ("sku_parity", "price_parity"):
        assert_says_what_to_do(evaluations[name].description, name)
    for name in ("tax_category_parity", "variants_without_price", "duplicate_skus"):
        assert evaluations[name].passed, name
