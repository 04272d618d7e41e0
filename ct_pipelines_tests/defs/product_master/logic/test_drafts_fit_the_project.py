"""Product drafts are mapped onto the product type and the project's currencies; a product
whose tax category cannot be resolved is created unpublished (or not created).

The sandbox stores product types and serves the project's settings (currencies GBP and EUR) as a
real project does; these tests make the shop's product type stricter (an enum of colours) and
record the drafts the sync sends on their way to the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ct_pipelines.commercetools import CommercetoolsClient
from ct_pipelines.defs.product_master.logic.master import build_catalog
from ct_pipelines.defs.product_master.logic.planner import ProductOptions
from ct_pipelines.defs.product_master.logic.sync import SyncRun, sync_products
from ct_pipelines.defs.resources import sandbox_settings
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines.store import IntegrationStore
from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld, db

COLOURS_ALLOWED_EXTRA = ("Navy",)


class DraftRecorder(httpx.BaseTransport):
    """Passes every request to the sandbox; keeps a copy of each product draft sent."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.drafts: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.rstrip("/").endswith("/products"):
            self.drafts.append(json.loads(request.content))
        return self.inner.handle_request(request)


def _add_item(
    conn: Any, item_no: str, sku: str, product: str, attrs: dict[str, Any], tax_code: str
) -> None:
    conn.execute(
        "INSERT INTO erp_items (item_no, sku, name, attributes, tax_code, active, item_type, "
        "updated_at) VALUES (?, ?, ?, ?, ?, 1, 'inventory', '2026-11-01T00:00:00.000Z')",
        (item_no, sku, f"Go-live {sku}", json.dumps({**attrs, "product_key": product}), tax_code),
    )
    for currency, country in (("GBP", "GB"), ("USD", "US")):
        conn.execute(
            "INSERT INTO erp_item_prices (item_no, currency, country, channel_key, amount_minor, "
            "fraction_digits) VALUES (?, ?, ?, '', 1500, 2)",
            (item_no, currency, country),
        )


@pytest.fixture
def world(sandbox_dir: Path) -> SandboxWorld:
    world = SandboxWorld.open(sandbox_dir)
    conn = db.connect(world.db_path)
    with db.transaction(conn):
        _add_item(conn, "90001", "GL-NAVY", "golive", {"colour": "Navy", "fabric": "silk"}, "S")
        _add_item(conn, "90002", "GL-ODD", "golive", {"colour": "Chartreuse"}, "S")
        _add_item(conn, "90003", "NOTAX-1", "notax", {"colour": "Navy"}, "Q")
    # The shop's own product type, made stricter: colours are an enum, there is no "fabric".
    world.documents.replace("product-types", _product_type(world))
    return world


def _product_type(world: SandboxWorld) -> dict[str, Any]:
    any_product = next(world.documents.iter_all("products"))
    conn = db.connect(world.db_path)
    colours = {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT json_extract(attributes, '$.colour') FROM erp_items"
        )
        if row[0] and row[0] != "Chartreuse"
    }
    colours.update(COLOURS_ALLOWED_EXTRA)
    return {
        "id": any_product["productType"]["id"],
        "key": "goods",
        "version": 1,
        "name": "Goods",
        "description": "The shop's goods, with colours from a fixed list.",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "lastModifiedAt": "2026-01-01T00:00:00.000Z",
        "attributes": [
            {
                "name": "colour",
                "type": {"name": "enum", "values": [{"key": c, "label": c} for c in colours]},
            },
            {"name": "size", "type": {"name": "text"}},
            {"name": "variant", "type": {"name": "text"}},
            {"name": "category", "type": {"name": "text"}},
            {"name": "discontinued", "type": {"name": "boolean"}},
        ],
    }


def _sync(world: SandboxWorld, tmp_path: Path, **policy: Any) -> tuple[SyncRun, list[Any]]:
    transport = DraftRecorder(world.commercetools_transport())
    store = IntegrationStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as erp:
        master = build_catalog(erp.iter_items())
    with CommercetoolsClient(sandbox_settings(), transport=transport) as client:
        run = sync_products(
            client, store, master, ProductOptions(**policy), taken_at=datetime.now(UTC)
        )
    store.close()
    return run, transport.drafts


def _variants(draft: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield draft["masterVariant"]
    yield from draft.get("variants", [])


def test_drafts_send_only_what_the_type_and_project_accept(
    world: SandboxWorld, tmp_path: Path
) -> None:
    run, drafts = _sync(world, tmp_path)
    golive = next(d for d in drafts if d["key"] == "golive")
    by_sku = {v["sku"]: v for v in _variants(golive)}
    navy = {a["name"]: a["value"] for a in by_sku["GL-NAVY"]["attributes"]}
    assert navy["colour"] == "Navy" and "fabric" not in navy
    odd = {a["name"] for a in by_sku["GL-ODD"]["attributes"]}
    assert "colour" not in odd  # Chartreuse is not among the type's enum values
    for variant in _variants(golive):
        assert {p["value"]["currencyCode"] for p in variant["prices"]} == {"GBP"}
    issues = {(i.kind, i.entity) for i in run.plan.issues}
    assert ("attribute_not_in_type", "sku:GL-NAVY") in issues
    assert ("attribute_not_in_type", "sku:GL-ODD") in issues
    assert ("currency_not_in_project", "sku:GL-NAVY") in issues
    assert not run.result.failed
    assert golive["publish"] is True


def test_a_product_without_a_resolvable_tax_category_is_created_unpublished(
    world: SandboxWorld, tmp_path: Path
) -> None:
    run, drafts = _sync(world, tmp_path)
    notax = next(d for d in drafts if d["key"] == "notax")
    assert notax["publish"] is False and "taxCategory" not in notax
    product = world.documents.get_by("products", "key", "notax")
    assert product is not None and product["masterData"]["published"] is False
    assert ("unresolved_tax_category", "product:notax") in {
        (i.kind, i.entity) for i in run.plan.issues
    }
    for draft in drafts:  # nothing published lacks a tax category
        assert not draft["publish"] or "taxCategory" in draft


def test_or_not_created_at_all_by_policy(world: SandboxWorld, tmp_path: Path) -> None:
    run, drafts = _sync(world, tmp_path, unresolved_tax="skip")
    assert "notax" not in {d["key"] for d in drafts}
    assert world.documents.get_by("products", "key", "notax") is None
    assert "unresolved_tax_category" in {i.kind for i in run.plan.issues}
