"""Property: whatever arrives, no batch crashes, and each order is exported or has a reason."""

from __future__ import annotations

import contextlib
import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ct_pipelines.defs.order_to_cash.logic.batch import build_batch, park_rejects
from ct_pipelines.defs.order_to_cash.logic.engine import (
    FLOW,
    ExportItem,
    ExportOptions,
    OrderExporter,
)
from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
from ct_pipelines.defs.resources import sandbox_world
from ct_pipelines.erp.port import SalesOrderDraft
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines.kernel.eligibility import EligibilityRule
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines.store import IntegrationStore
from ct_sandbox import SANDBOX_ERP_URL


def _set(path: list[Any], value: Any):
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for part in path[:-1]:
            target = target[part] if not isinstance(target, list) else target[int(part)]
        target[path[-1]] = value

    return apply


def _delete(path: list[Any]):
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for part in path[:-1]:
            target = target[part]
        target.pop(path[-1], None)

    return apply


MUTATIONS = {
    "no totalPrice": _delete(["totalPrice"]),
    "no lineItems": _delete(["lineItems"]),
    "no createdAt": _delete(["createdAt"]),
    "no orderState": _delete(["orderState"]),
    "float centAmount": _set(["totalPrice", "centAmount"], 12.5),
    "string centAmount": _set(["taxedPrice", "totalNet", "centAmount"], "1299"),
    "unknown currency": _set(["totalPrice", "currencyCode"], "XXX"),
    "no taxedPrice": _delete(["taxedPrice"]),
    "negative quantity": _set(["lineItems", 0, "quantity"], -2),
    "no sku": _delete(["lineItems", 0, "variant", "sku"]),
    "unknown sku": _set(["lineItems", 0, "variant", "sku"], "NOT-IN-THE-ERP"),
    "long order number": _set(["orderNumber"], "MARKETPLACE-" + "9" * 40),
    "unknown tax rate": _set(["lineItems", 0, "taxRate", "amount"], 0.175),
    "lines are junk": _set(["lineItems"], "oops"),
    "gross off by one": lambda d: d["taxedPrice"]["totalGross"].__setitem__(
        "centAmount", d["taxedPrice"]["totalGross"]["centAmount"] + 1
    ),
    "cancelled": _set(["orderState"], "Cancelled"),
    "null version": _set(["version"], None),
    "empty lines": _set(["lineItems"], []),
}


@pytest.fixture
def exporter_world(sandbox_dir: Path, tmp_path: Path):
    world = sandbox_world(sandbox_dir)
    templates = [
        d
        for d in world.documents.iter_all("orders")
        if d.get("paymentState") == "Paid" and d.get("taxedPrice")
    ][:10]
    store = IntegrationStore(f"sqlite:///{tmp_path / 'hypothesis-store.db'}")
    store.migrate()
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        item_numbers = {item.sku: item.item_no for item in erp.iter_items()}
        yield templates, store, erp, item_numbers


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=9),
            st.lists(st.sampled_from(sorted(MUTATIONS)), max_size=3),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_no_batch_crashes_and_every_order_is_exported_or_explained(exporter_world, orders) -> None:
    templates, store, erp, item_numbers = exporter_world
    docs = []
    for template_index, mutations in orders:
        doc = copy.deepcopy(templates[template_index % len(templates)])
        doc["id"] = str(uuid.uuid4())
        doc["orderNumber"] = f"HYP-{uuid.uuid4().hex[:12]}"
        doc["syncInfo"] = []
        for name in mutations:
            # A mutation that does not apply to this shape leaves the order as it is.
            with contextlib.suppress(KeyError, IndexError, TypeError):
                MUTATIONS[name](doc)
        docs.append(doc)

    batch = build_batch(
        docs,
        tz=SHOP.tz,
        rule=EligibilityRule(),
        mapping=SalesOrderMapping(item_numbers=item_numbers),
        channel_id=None,
    )
    park_rejects(store, FLOW, batch.rejects)
    items = [
        ExportItem(
            key=row["external_document_number"],
            order_id=row["order_id"],
            order_version=row["order_version"],
            created_at=row["created_at"],
            draft=None
            if row["sales_order"] is None
            else SalesOrderDraft.model_validate_json(row["sales_order"]),
            error_category=row["mapping_error_category"],
            error_reason=row["mapping_error"],
            sku=row["mapping_error_sku"],
        )
        for row in batch.rows
        if row["eligible"]
    ]
    report = OrderExporter(
        erp, store, ExportOptions(workers=2, rate_per_second=None), sleep=lambda _s: None
    ).export(items)

    assert len(batch.rows) + len(batch.rejects) == len(docs)  # nothing silently dropped
    explained = {e.entity_key: e for e in store.list_exceptions(flow=FLOW, status="open")}
    exported = store.exported_keys(FLOW, [item.key for item in items])
    ineligible = {row["external_document_number"] for row in batch.rows if not row["eligible"]}
    for reject in batch.rejects:
        assert explained[reject.entity_key].reason
    for result in report.results:
        if result.outcome in ("exported", "recovered", "already_exported"):
            assert result.key in exported
        else:
            assert result.key in explained and explained[result.key].reason, result
    accounted = exported | set(explained) | ineligible
    for row in batch.rows:
        assert row["external_document_number"] in accounted
