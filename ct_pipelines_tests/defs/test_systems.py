"""The global lineage, read from the definitions: one connected graph per business process, with
the systems it reads from and writes to at its ends, and owners and code references on every
asset."""

import dagster as dg
import pytest
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from ct_pipelines.definitions import defs

# Every edge a business process needs, upstream -> downstream (asset keys as the UI shows them).
PROCESSES: dict[str, set[tuple[str, str]]] = {
    "order to cash, reconciled by finance": {
        ("commercetools/orders", "order_batches"),
        ("erp/items", "order_batches"),
        ("order_batches", "erp_sales_orders"),
        ("erp_sales_orders", "erp/sales_orders"),
        ("erp/sales_orders", "finance_reconciliation"),
    },
    "inventory": {
        ("erp/stock", "inventory_sync"),
        ("inventory_sync", "commercetools/inventory"),
        ("inventory_sync", "inventory_snapshots"),
        ("erp/stock", "inventory_snapshots"),
        ("commercetools/inventory", "inventory_snapshots"),
    },
    "product master": {
        ("erp/items", "product_master"),
        ("product_master", "commercetools_products"),
        ("commercetools_products", "commercetools/products"),
    },
    "dispatch": {
        ("erp/shipments", "erp_shipments"),
        ("erp_shipments", "commercetools_deliveries"),
        ("commercetools_deliveries", "commercetools/deliveries"),
    },
    "finance": {
        ("commercetools/orders", "finance_order_totals"),
        ("commercetools/payments", "finance_payment_transactions"),
        ("finance_order_totals", "finance_journal_batches"),
        ("finance_payment_transactions", "finance_journal_batches"),
        ("finance_journal_batches", "erp/journals"),
        ("finance_journal_batches", "finance_reconciliation"),
        ("erp/journals", "finance_reconciliation"),
        ("erp/sales_orders", "finance_reconciliation"),
        ("finance_reconciliation", "finance_period_close"),
    },
}
SYSTEMS = {"commercetools", "erp"}
SUMMARISED = {
    "order_batches",
    "erp_sales_orders",
    "inventory_sync",
    "inventory_snapshots",
    "commercetools_products",
    "commercetools_deliveries",
    "finance_journal_batches",
    "finance_reconciliation",
}


@pytest.fixture(scope="module")
def graph() -> AssetGraph:
    loaded = defs()
    definitions = loaded if isinstance(loaded, dg.Definitions) else loaded()
    return definitions.resolve_asset_graph()


def _edges(graph: AssetGraph) -> set[tuple[str, str]]:
    return {
        (parent.to_user_string(), key.to_user_string())
        for key in graph.get_all_asset_keys()
        for parent in graph.get(key).parent_keys
    }


def _system(key: str) -> str | None:
    head = key.split("/")[0]
    return head if "/" in key and head in SYSTEMS else None


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_each_process_is_one_graph_from_a_system_to_a_system(
    graph: AssetGraph,
    process: str,
) -> None:
    edges = PROCESSES[process]
    missing = edges - _edges(graph)
    assert not missing, f"{process}: missing edges {sorted(missing)}"
    nodes = {n for edge in edges for n in edge}
    # Connected when the edges are read both ways.
    seen, todo = set(), [min(nodes)]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(b for a, b in edges if a == node)
        todo.extend(a for a, b in edges if b == node)
    assert seen == nodes, f"{process}: {sorted(nodes - seen)} not connected"
    # Where the process starts is a system it reads; where it ends, a system it writes (finance
    # ends in its own period close, after reconciling what the ERP holds).
    starts = {a for a, _ in edges} - {b for _, b in edges}
    assert starts and all(_system(n) for n in starts), f"{process} starts at {sorted(starts)}"
    ends = {b for _, b in edges} - {a for a, _ in edges}
    assert any(_system(n) for n in nodes - starts), f"{process} writes no system"
    assert ends


def test_the_systems_are_external_assets_of_their_system(
    graph: AssetGraph,
) -> None:
    systems = [k for k in graph.get_all_asset_keys() if _system(k.to_user_string())]
    assert {k.to_user_string() for k in systems} == {
        "commercetools/orders",
        "commercetools/payments",
        "commercetools/inventory",
        "commercetools/products",
        "commercetools/deliveries",
        "erp/items",
        "erp/stock",
        "erp/shipments",
        "erp/sales_orders",
        "erp/journals",
    }
    for key in systems:
        node = graph.get(key)
        system = key.path[0]
        assert not node.is_materializable, key
        assert node.group_name == system and system in node.kinds, key
        assert node.description, key


def test_a_written_system_is_downstream_of_its_writer(
    graph: AssetGraph,
) -> None:
    writers = {
        "erp/sales_orders": "erp_sales_orders",
        "erp/journals": "finance_journal_batches",
        "commercetools/inventory": "inventory_sync",
        "commercetools/products": "commercetools_products",
        "commercetools/deliveries": "commercetools_deliveries",
    }
    for target, writer in writers.items():
        parents = {
            p.to_user_string() for p in graph.get(dg.AssetKey.from_user_string(target)).parent_keys
        }
        assert parents == {writer}, target


def test_operations_depend_on_what_they_summarise(
    graph: AssetGraph,
) -> None:
    for name in ("integration_health", "failure_patterns"):
        parents = {p.to_user_string() for p in graph.get(dg.AssetKey(name)).parent_keys}
        assert parents == SUMMARISED, name


def test_every_asset_has_owners_and_a_code_reference(
    graph: AssetGraph,
) -> None:
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners and all(o.startswith("team:") for o in node.owners), key
        references = node.metadata.get("dagster/code_references")
        assert isinstance(references, dg.CodeReferencesMetadataValue), key
        for reference in references.code_references:
            assert isinstance(reference, dg.LocalFileCodeReference)
            assert reference.file_path.endswith(".py") and reference.line_number, key


def test_flows_with_a_cadence_have_a_freshness_policy(
    graph: AssetGraph,
) -> None:
    fresh = {
        k.to_user_string(): graph.get(k).freshness_policy
        for k in graph.get_all_asset_keys()
        if graph.get(k).freshness_policy is not None
    }
    assert {"inventory_sync", "inventory_snapshots"} <= set(fresh)
    assert {k for k in fresh if k.startswith("finance_")} == {
        "finance_order_totals",
        "finance_payment_transactions",
        "finance_journal_batches",
        "finance_reconciliation",
        "finance_period_close",
    }
    inventory = fresh["inventory_sync"]
    assert isinstance(inventory, dg.FreshnessPolicy)
