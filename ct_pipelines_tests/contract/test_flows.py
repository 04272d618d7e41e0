"""Each flow's happy path with commercetools on the npm mock and the ERP on the sandbox.

The resources are the production ones (``build_resources``): with every CTP_* variable set they
talk to the mock over HTTP as they would to a real project; the ERP side has no URL, so it stays
the local sandbox. The mock project starts empty and is seeded through its own endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ct_pipelines.defs.inventory.assets import inventory_snapshots, inventory_sync
from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.contract import seed
from ct_pipelines_tests.contract.conftest import MockProject

INVENTORY_CHANNELS = {
    "wh-manchester": ["InventorySupply", "Primary"],
    "wh-milton-keynes": ["InventorySupply"],
    "store-london": ["InventorySupply", "ProductDistribution"],
}


@pytest.fixture
def on_mock(
    ct_project: MockProject, sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> MockProject:
    """commercetools = the mock project (live mode, over HTTP); ERP = a private sandbox copy."""
    for name, value in ct_project.env().items():
        monkeypatch.setenv(name, value)
    resources = build_resources()
    assert not resources["commercetools"].uses_sandbox
    assert resources["erp"].uses_sandbox
    return ct_project


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = result.asset_materializations_for_node(asset)
    assert events, f"{asset} did not materialise"
    return {k: v.value for k, v in events[-1].metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_inventory_sync_publishes_erp_stock_then_repairs_drift(on_mock: MockProject) -> None:
    for key, roles in INVENTORY_CHANNELS.items():
        seed.channel(on_mock, key, roles)

    first = dg.materialize([inventory_sync, inventory_snapshots], resources=build_resources())
    assert first.success
    sync = _metadata(first, "inventory_sync")
    assert sync["failed"] == 0
    assert sync["created"] > 0 and sync["updated"] == 0
    assert "commercetools project " + on_mock.key in sync["sources"]
    assert all(check.passed for check in _checks(first).values()), _checks(first)
    entries = on_mock.get("inventory", {"limit": 500, "where": "quantityOnStock > 0"})
    assert entries["total"] == sync["created"]

    # Someone edits one entry in the Merchant Center: the next run puts it back, and only it.
    entry = entries["results"][0]
    on_mock.post(
        f"inventory/{entry['id']}",
        {
            "version": entry["version"],
            "actions": [{"action": "changeQuantity", "quantity": entry["quantityOnStock"] + 7}],
        },
    )
    second = dg.materialize([inventory_sync, inventory_snapshots], resources=build_resources())
    assert second.success
    repaired = _metadata(second, "inventory_sync")
    assert (repaired["created"], repaired["updated"], repaired["failed"]) == (0, 1, 0)
    assert on_mock.get(f"inventory/{entry['id']}")["quantityOnStock"] == entry["quantityOnStock"]
    assert all(check.passed for check in _checks(second).values())
