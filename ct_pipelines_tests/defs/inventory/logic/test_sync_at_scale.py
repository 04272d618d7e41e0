"""Acceptance at catalogue scale: 50,000 SKUs x 4 channels, 1 % of the stock moved.

The sync must write exactly the changed entries (every request is counted at the transport),
and the drift check, judged on a fresh read of both systems, must be green afterwards.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ct_pipelines.commercetools import CommercetoolsClient
from ct_pipelines.defs.inventory import checks
from ct_pipelines.defs.inventory.logic import (
    InventoryOptions,
    InventorySync,
    compute_targets,
    index_entries,
)
from ct_pipelines.defs.inventory.logic.rules import parse_rules
from ct_pipelines.defs.inventory.logic.sync import analyse
from ct_pipelines.defs.resources import sandbox_settings
from ct_pipelines.erp.rest import RestErpClient
from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld
from ct_sandbox.testing import CountingTransport, add_scale_inventory, change_scale_stock

SKUS = 50_000


@pytest.mark.slow
def test_50k_skus_by_4_channels_with_1_percent_changed_writes_exactly_the_changes(
    sandbox_dir: Path,
) -> None:
    world = SandboxWorld.open(sandbox_dir)
    scale = add_scale_inventory(world, SKUS)
    changed = change_scale_stock(world, scale, 0.01)
    assert len(changed) == scale.entries // 100 == 2_000
    rules = parse_rules(scale.rules_data, source="scale rules")
    all_entries = world.documents.count("inventory")

    transport = CountingTransport(world.commercetools_transport())
    # Large ERP pages: the ERP side is not what this test measures.
    with (
        RestErpClient(
            SANDBOX_ERP_URL, None, transport=world.erp_transport(), page_size=5000
        ) as erp,
        CommercetoolsClient(sandbox_settings(), transport=transport) as client,
    ):
        result = InventorySync(client, rules, InventoryOptions(max_workers=8)).run(erp.iter_stock())

        stats = result.stats
        written = {(c.sku, c.channel) for c in result.plan.changes}
        assert written == set(changed)
        assert (stats.updated, stats.created, stats.failed) == (2_000, 0, 0)
        assert stats.unchanged == scale.entries - 2_000
        # Writes: exactly one POST per changed entry, the minimum possible.
        assert transport.count("POST", "/inventory/") == 2_000 == result.minimum_writes
        assert stats.write_requests == 2_000
        # Reads: one page of channels, keyset pages of 500 over every entry, one page of
        # products (the shop's SKUs, for the guard).
        pages = math.floor(all_entries / 500) + 1
        assert transport.count("GET", "/channels") == 1
        assert transport.count("GET", "/products") == 1
        assert transport.count("GET", "/inventory") == pages == stats.read_requests - 2
        assert len(transport.requests) == 1 + 1 + 1 + pages + 2_000  # + the token request

        # The drift check on a fresh read of both systems.
        directory = InventorySync(client, rules).read_channels()
        current = index_entries(client.query_all("inventory"), directory.key_by_id, rules)
        targets = compute_targets(erp.iter_stock(), rules)
    drift = checks.drift_result(analyse(targets, current, directory, rules))
    assert drift.passed, drift.description
    assert drift.metadata["compared_entries"].value == scale.entries
    assert all(drift.metadata[f"drifted:{channel}"].value == 0 for channel in rules.channels)
    sample = next(iter(changed))
    entry_quantities = {
        (key[0], key[1]): entry.quantity_on_stock for key, entry in current.entries.items()
    }
    assert entry_quantities[sample] == max(changed[sample], 0)
