"""Our commercetools client against npm @labdigital/commercetools-mock over real HTTP.

An implementation we did not write: OAuth client credentials, keyset paging, the predicates the
flows send, version-checked updates and 409 handling, inventory, products and sync info.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ct_pipelines.commercetools import (
    BadRequestError,
    ConcurrentModificationError,
    NotFoundError,
)
from ct_pipelines.commercetools.models import Channel, InventoryEntry, Order, Product
from ct_pipelines_tests.contract import seed
from ct_pipelines_tests.contract.conftest import MockProject


def _catalog(project: MockProject, skus: list[str]) -> None:
    tax = seed.tax_category(project)
    kind = seed.product_type(project)
    for sku in skus:
        seed.product(project, kind["id"], [sku], tax_category_id=tax["id"])


def _orders(project: MockProject, count: int, sku: str = "SKU-1") -> list[dict[str, Any]]:
    return [seed.paid_order(project, f"ORD-{i:05d}", sku) for i in range(count)]


# --- OAuth --------------------------------------------------------------------------------------


def test_client_credentials_token_is_fetched_once_and_reused(ct_project: MockProject) -> None:
    with ct_project.client() as client:
        for _ in range(5):
            client.query("orders", limit=1)
        assert client.token_fetch_count == 1


def test_api_refuses_requests_without_a_valid_token(ct_project: MockProject) -> None:
    # The mock checks bearer tokens like the real API, so our client's auth is really exercised.
    url = f"{ct_project.server.base_url}/{ct_project.key}/orders"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_a_rejected_token_is_renewed_once(ct_project: MockProject) -> None:
    with ct_project.client() as client:
        client.query("orders", limit=1)
        # Swap the cached token for one the server never issued (a revoked token).
        current = client._auth._token
        assert current is not None
        client._auth._token = type(current)(
            value="revoked", expires_at=current.expires_at, renew_at=current.renew_at
        )
        assert client.query("orders", limit=1)["results"] == []
        assert client.token_fetch_count == 2


def test_token_endpoint_rejects_a_request_without_client_credentials(
    ct_project: MockProject,
) -> None:
    response = httpx.post(
        f"{ct_project.server.base_url}/oauth/token", data={"grant_type": "client_credentials"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "invalid_client"


def test_missing_resource_is_not_found(ct_project: MockProject) -> None:
    with ct_project.client() as client:
        with pytest.raises(NotFoundError):
            client.get("orders/00000000-0000-0000-0000-000000000000")
        assert client.get_order("00000000-0000-0000-0000-000000000000") is None
        assert client.get_order_by_number("NO-SUCH-ORDER") is None


# --- paging and predicates ---------------------------------------------------------------------


def test_query_all_pages_through_many_orders_by_id_cursor(ct_project: MockProject) -> None:
    _catalog(ct_project, ["SKU-1"])
    created = _orders(ct_project, 1_050)
    with ct_project.client() as client:
        small_pages = list(client.query_all("orders", page_size=100))
        full_pages = [order.id for order in client.iter_orders()]
    ids = [doc["id"] for doc in small_pages]
    assert len(ids) == len(set(ids)) == 1_050
    assert set(ids) == {doc["id"] for doc in created}
    assert ids == sorted(ids)  # sort=id asc, so `id > :lastId` resumes exactly
    assert full_pages == ids


def test_query_all_stops_on_an_exactly_full_last_page(ct_project: MockProject) -> None:
    _catalog(ct_project, ["SKU-1"])
    _orders(ct_project, 40)
    with ct_project.client() as client:
        assert len(list(client.query_all("orders", page_size=20))) == 40
        assert len(list(client.query_all("orders", page_size=40))) == 40


def test_query_all_keeps_the_callers_predicates_on_every_page(ct_project: MockProject) -> None:
    _catalog(ct_project, ["SKU-1"])
    for i in range(30):
        seed.paid_order(ct_project, f"A-{i:03d}", "SKU-1", payment_state="Paid")
        seed.paid_order(ct_project, f"B-{i:03d}", "SKU-1", payment_state="Pending")
    with ct_project.client() as client:
        paid = list(
            client.query_all(
                "orders",
                where="paymentState = :state",
                variables={"state": "Paid"},
                page_size=7,
            )
        )
    assert len(paid) == 30
    assert all(doc["orderNumber"].startswith("A-") for doc in paid)


def test_creation_window_predicate_of_the_order_batches(ct_project: MockProject) -> None:
    from ct_pipelines.defs.order_to_cash.logic.orders import (
        as_utc_literal,
        created_window_predicate,
    )

    _catalog(ct_project, ["SKU-1"])
    orders = _orders(ct_project, 5)
    created = sorted(datetime.fromisoformat(o["createdAt"].replace("Z", "+00:00")) for o in orders)
    with ct_project.client() as client:

        def window(start: datetime, end: datetime) -> int:
            return sum(
                1
                for _ in client.query_all(
                    "orders",
                    where=[created_window_predicate()],
                    variables={
                        "windowStart": as_utc_literal(start),
                        "windowEnd": as_utc_literal(end),
                    },
                    expand=["paymentInfo.payments[*]"],
                )
            )

        assert window(created[0], created[-1] + timedelta(milliseconds=1)) == 5
        assert window(created[-1] + timedelta(milliseconds=1), created[-1] + timedelta(days=1)) == 0
        assert window(created[0] - timedelta(days=1), created[0]) == 0  # end is exclusive


def test_in_predicates_with_numbered_variables(ct_project: MockProject) -> None:
    # dispatch looks orders up as `orderNumber in (:v0, :v1, ...)`, inventory as `sku in (...)`.
    _catalog(ct_project, ["SKU-1"])
    orders = _orders(ct_project, 6)
    wanted = ["ORD-00001", "ORD-00004", "NOT-THERE"]
    names = [f"v{i}" for i in range(len(wanted))]
    with ct_project.client() as client:
        page = client.query(
            "orders",
            where=f"orderNumber in ({', '.join(':' + n for n in names)})",
            variables=dict(zip(names, wanted, strict=True)),
            limit=len(wanted),
            with_total=False,
        )
        by_id = client.query(
            "orders",
            where="id in (:v0)",
            variables={"v0": orders[2]["id"]},
        )
    assert sorted(doc["orderNumber"] for doc in page["results"]) == ["ORD-00001", "ORD-00004"]
    assert [doc["orderNumber"] for doc in by_id["results"]] == ["ORD-00002"]


def test_order_change_polling_keyset_on_last_modified_and_id(ct_project: MockProject) -> None:
    # The order sensor pages by (lastModifiedAt, id) with sort on both, never offset.
    _catalog(ct_project, ["SKU-1"])
    _orders(ct_project, 25)
    since = "2000-01-01T00:00:00.000Z"
    seen: list[str] = []
    after: tuple[str, str] | None = None
    with ct_project.client() as client:
        while True:
            where = ["lastModifiedAt >= :since"]
            variables = {"since": since}
            if after is not None:
                where.append(
                    "(lastModifiedAt > :afterAt or (lastModifiedAt = :afterAt and id > :afterId))"
                )
                variables.update(afterAt=after[0], afterId=after[1])
            page = client.query(
                "orders",
                where=where,
                variables=variables,
                sort=["lastModifiedAt asc", "id asc"],
                limit=10,
                with_total=False,
            )["results"]
            seen.extend(doc["id"] for doc in page)
            if len(page) < 10:
                break
            after = (page[-1]["lastModifiedAt"], page[-1]["id"])
    assert len(seen) == len(set(seen)) == 25


def test_orders_parse_into_our_models_with_payments_expanded(ct_project: MockProject) -> None:
    _catalog(ct_project, ["SKU-1"])
    seed.paid_order(ct_project, "ORD-1", "SKU-1", quantity=3, unit_cent_amount=1999)
    with ct_project.client() as client:
        order = client.get_order_by_number("ORD-1")
        (listed,) = list(client.iter_orders())
    assert isinstance(order, Order) and order.id == listed.id
    assert order.total_price.cent_amount == 5997
    assert order.taxed_price is not None
    assert order.line_items[0].variant.sku == "SKU-1"


# --- updates, versions, 409 ---------------------------------------------------------------------


def test_update_with_a_stale_version_is_a_409_with_the_current_version(
    ct_project: MockProject,
) -> None:
    _catalog(ct_project, ["SKU-1"])
    order = seed.paid_order(ct_project, "ORD-1", "SKU-1")
    action = {"action": "setCustomerEmail", "email": "someone@example.com"}
    with ct_project.client(conflict_retries=0) as client:
        updated = client.update("orders", order["id"], order["version"], [action])
        assert updated["version"] > order["version"]
        # A change the stale writer makes (the mock checks versions only on an actual change).
        stale = {"action": "setCustomerEmail", "email": "someone-else@example.com"}
        with pytest.raises(ConcurrentModificationError) as raised:
            client.post(f"orders/{order['id']}", {"version": order["version"], "actions": [stale]})
    assert raised.value.status_code == 409
    assert "ConcurrentModification" in raised.value.codes
    assert raised.value.current_version == updated["version"]


def test_update_rereads_on_409_and_rebuilds_the_actions(ct_project: MockProject) -> None:
    channel = seed.channel(ct_project, "wh-1", ["InventorySupply"])
    entry = ct_project.post(
        "inventory",
        {
            "sku": "SKU-1",
            "supplyChannel": {"typeId": "channel", "id": channel["id"]},
            "quantityOnStock": 5,
        },
    )
    # Someone else changes the entry after we read it (the mock has no addQuantity).
    moved = ct_project.post(
        f"inventory/{entry['id']}",
        {"version": entry["version"], "actions": [{"action": "changeQuantity", "quantity": 7}]},
    )
    seen: list[int] = []

    def rebuild(fresh: dict[str, Any]) -> list[dict[str, Any]]:
        seen.append(int(fresh["quantityOnStock"]))
        return [{"action": "changeQuantity", "quantity": 20}]

    with ct_project.client() as client:
        result = client.update(
            "inventory",
            entry["id"],
            entry["version"],
            [{"action": "changeQuantity", "quantity": 20}],
            reread=rebuild,
        )
    assert seen == [7]
    assert result["quantityOnStock"] == 20
    assert result["version"] > moved["version"]


def test_update_that_is_no_longer_needed_after_a_409_sends_nothing(
    ct_project: MockProject,
) -> None:
    channel = seed.channel(ct_project, "wh-1", ["InventorySupply"])
    entry = ct_project.post(
        "inventory",
        {
            "sku": "SKU-1",
            "supplyChannel": {"typeId": "channel", "id": channel["id"]},
            "quantityOnStock": 5,
        },
    )
    moved = ct_project.post(
        f"inventory/{entry['id']}",
        {"version": entry["version"], "actions": [{"action": "changeQuantity", "quantity": 9}]},
    )
    with ct_project.client() as client:
        result = client.update(
            "inventory",
            entry["id"],
            entry["version"],
            [{"action": "changeQuantity", "quantity": 9}],
            reread=lambda fresh: None if fresh["quantityOnStock"] == 9 else [],
        )
    assert result["version"] == moved["version"]


def test_more_than_500_actions_go_in_chunks_each_with_the_new_version(
    ct_project: MockProject,
) -> None:
    kind = seed.product_type(ct_project)
    product = seed.product(ct_project, kind["id"], ["SKU-1"], publish=False)
    actions = [
        {"action": "setDescription", "description": {"en-GB": f"take {i}"}, "staged": True}
        for i in range(1_100)
    ]
    with ct_project.client() as client:
        result = client.update("products", product["id"], product["version"], actions)
    # Three requests, each with the version the previous answer carried (the mock counts one
    # version per action, so a client computing versions instead of reading them would fail).
    assert result["version"] > product["version"]
    assert result["masterData"]["staged"]["description"]["en-GB"] == "take 1099"


def test_invalid_update_action_is_a_bad_request(ct_project: MockProject) -> None:
    _catalog(ct_project, ["SKU-1"])
    order = seed.paid_order(ct_project, "ORD-1", "SKU-1")
    with ct_project.client() as client, pytest.raises(BadRequestError) as raised:
        client.update("orders", order["id"], order["version"], [{"action": "noSuchAction"}])
    assert raised.value.status_code == 400


# --- inventory ------------------------------------------------------------------------------------


def test_inventory_entries_create_query_and_change_quantity(ct_project: MockProject) -> None:
    channel = seed.channel(ct_project, "wh-1", ["InventorySupply"])
    with ct_project.client() as client:
        (found,) = [c for c in client.iter_channels() if c.key == "wh-1"]
        assert isinstance(found, Channel) and found.id == channel["id"]
        created = client.create(
            "inventory",
            {
                "sku": "SKU-1",
                "key": "wh-1.SKU-1",
                "supplyChannel": {"typeId": "channel", "id": channel["id"]},
                "quantityOnStock": 12,
            },
        )
        assert created["availableQuantity"] == 12
        (entry,) = client.query_all(
            "inventory",
            where=["sku = :sku", "supplyChannel(id = :channel)"],
            variables={"sku": "SKU-1", "channel": channel["id"]},
        )
        assert entry["id"] == created["id"]
        updated = client.update(
            "inventory",
            entry["id"],
            entry["version"],
            [{"action": "changeQuantity", "quantity": 4}],
        )
        (typed,) = list(client.iter_inventory())
    assert updated["quantityOnStock"] == 4
    assert isinstance(typed, InventoryEntry)
    assert typed.quantity_on_stock == 4 and typed.available_quantity == 4


def test_inventory_sku_in_predicate(ct_project: MockProject) -> None:
    channel = seed.channel(ct_project, "wh-1", ["InventorySupply"])
    for i in range(12):
        ct_project.post(
            "inventory",
            {
                "sku": f"SKU-{i}",
                "supplyChannel": {"typeId": "channel", "id": channel["id"]},
                "quantityOnStock": i,
            },
        )
    chunk = ["SKU-1", "SKU-5", "SKU-11"]
    names = [f"s{i}" for i in range(len(chunk))]
    with ct_project.client() as client:
        docs = list(
            client.query_all(
                "inventory",
                where=f"sku in ({', '.join(':' + n for n in names)})",
                variables=dict(zip(names, chunk, strict=True)),
                page_size=2,
            )
        )
    assert sorted(doc["sku"] for doc in docs) == sorted(chunk)


# --- products ------------------------------------------------------------------------------------


def test_products_and_projections_as_the_product_sync_reads_them(
    ct_project: MockProject,
) -> None:
    tax = seed.tax_category(ct_project)
    kind = seed.product_type(
        ct_project,
        attributes=[
            {
                "name": "colour",
                "label": {"en-GB": "Colour"},
                "isRequired": False,
                "type": {"name": "text"},
                "attributeConstraint": "None",
                "isSearchable": False,
                "inputHint": "SingleLine",
            }
        ],
    )
    with ct_project.client() as client:
        created = client.create(
            "products",
            {
                "key": "tee",
                "productType": {"typeId": "product-type", "key": kind["key"]},
                "taxCategory": {"typeId": "tax-category", "key": tax["key"]},
                "name": {"en-GB": "Tee"},
                "slug": {"en-GB": "tee"},
                "masterVariant": {
                    "sku": "TEE-S",
                    "key": "TEE-S",
                    "attributes": [{"name": "colour", "value": "red"}],
                    "prices": [{"value": seed.money(1500)}],
                },
                "variants": [{"sku": "TEE-M", "key": "TEE-M"}],
                "publish": False,
            },
        )
        assert created["productType"]["id"] == kind["id"]
        updated = client.update(
            "products",
            created["id"],
            created["version"],
            [
                {
                    "action": "setAttribute",
                    "sku": "TEE-M",
                    "name": "colour",
                    "value": "blue",
                    "staged": True,
                },
                {"action": "publish"},
            ],
        )
        assert updated["masterData"]["published"] is True
        (product,) = list(client.iter_products())
        published = list(client.iter_product_projections(staged=False))
        tax_keys = [t.key for t in client.iter_tax_categories()]
    assert isinstance(product, Product)
    assert product.master_data.published
    assert {
        v.sku
        for v in [product.master_data.current.master_variant, *product.master_data.current.variants]
    } == {"TEE-S", "TEE-M"}
    assert [p.id for p in published] == [created["id"]]
    assert tax_keys == ["standard"]


# --- sync info ----------------------------------------------------------------------------------


def test_update_sync_info_marks_an_order_against_the_export_channel(
    ct_project: MockProject,
) -> None:
    from ct_pipelines.defs.order_to_cash.logic.write_back import is_marked, write_back

    _catalog(ct_project, ["SKU-1"])
    channel = seed.channel(ct_project, "erp-order-export", ["OrderExport"])
    order = seed.paid_order(ct_project, "ORD-1", "SKU-1")
    synced_at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    with ct_project.client() as client:
        assert write_back(
            client,
            order,
            mode="sync_info",
            channel_key="erp-order-export",
            channel_id=channel["id"],
            erp_document="SO-1",
            synced_at=synced_at,
        )
        marked = client.get(f"orders/{order['id']}")
        assert is_marked(marked, "sync_info", channel["id"], "erpSalesOrderNumber")
        # A second write-back from the stale copy meets a 409, re-reads, and sends nothing.
        assert write_back(
            client,
            order,
            mode="sync_info",
            channel_key="erp-order-export",
            channel_id=channel["id"],
            erp_document="SO-1",
            synced_at=synced_at,
        )
        again = client.get(f"orders/{order['id']}")
        typed = client.get_order(order["id"])
    (info,) = marked["syncInfo"]
    assert info["channel"] == {"typeId": "channel", "id": channel["id"]}
    assert info["externalId"] == "SO-1"
    assert again["version"] == marked["version"]
    assert typed is not None and typed.sync_info and typed.sync_info[0].channel is not None
    assert typed.sync_info[0].channel.id == channel["id"]
