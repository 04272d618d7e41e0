"""The commercetools sandbox app over a real httpx.Client: the API rules it must enforce."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ct_sandbox.commercetools import CommercetoolsSandboxApp, register_api_client
from ct_sandbox.documents import DocumentStore
from ct_sandbox.faults import FaultConfig, request_counts, request_log, save_faults
from ct_sandbox.transport import sandbox_transport

PROJECT = "test-shop"
BASE = "http://commercetools.sandbox"
NOW = "2026-03-01T09:00:00.000Z"


def _gbp(cents: int) -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": "GBP",
        "centAmount": cents,
        "fractionDigits": 2,
    }


def _order(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=number)),
        "version": 1,
        "createdAt": NOW,
        "lastModifiedAt": NOW,
        "orderNumber": f"UK-{number:05d}",
        "orderState": "Open" if number % 3 else "Confirmed",
        "totalPrice": _gbp(1000 + number),
        "lineItems": [{"id": f"li-{number}", "variant": {"sku": "TEA-1"}, "quantity": 1}],
        "customLineItems": [],
        "shippingInfo": {"shippingMethodName": "Standard", "price": _gbp(395), "deliveries": []},
        "syncInfo": [],
        **extra,
    }


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return tmp_path / "world.db"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(world: Path, clock: Clock) -> CommercetoolsSandboxApp:
    return CommercetoolsSandboxApp(world, PROJECT, token_ttl_seconds=3600, clock=clock)


@pytest.fixture
def store(app: CommercetoolsSandboxApp) -> DocumentStore:
    return app.store


def _token(
    client: httpx.Client, scope: str | None = f"manage_project:{PROJECT}", **kw: Any
) -> httpx.Response:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return client.post("/oauth/token", auth=kw.pop("auth", ("client", "secret")), data=data)


@pytest.fixture
def anonymous(app: CommercetoolsSandboxApp) -> Iterator[httpx.Client]:
    with httpx.Client(transport=sandbox_transport(app), base_url=BASE) as client:
        yield client


@pytest.fixture
def client(anonymous: httpx.Client) -> httpx.Client:
    token = _token(anonymous).json()["access_token"]
    anonymous.headers["Authorization"] = f"Bearer {token}"
    return anonymous


def api(path: str) -> str:
    return f"/{PROJECT}/{path}"


def _error_code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["code"]


# -- OAuth ------------------------------------------------------------------------------------


def test_token_response_and_bearer_use(anonymous: httpx.Client) -> None:
    response = _token(anonymous)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == f"manage_project:{PROJECT}"
    ok = anonymous.get(api("orders"), headers={"Authorization": f"Bearer {body['access_token']}"})
    assert ok.status_code == 200


def test_unknown_and_missing_tokens_are_401_invalid_token(anonymous: httpx.Client) -> None:
    for headers in ({"Authorization": "Bearer not-a-token"}, {}):
        response = anonymous.get(api("orders"), headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["statusCode"] == 401
        assert body["message"] == "invalid_token"
        assert body["error"] == "invalid_token"
        assert body["errors"][0]["code"] == "invalid_token"


def test_tokens_expire(client: httpx.Client, clock: Clock) -> None:
    assert client.get(api("orders")).status_code == 200
    clock.now += timedelta(seconds=3601)
    expired = client.get(api("orders"))
    assert expired.status_code == 401
    assert expired.json()["error"] == "invalid_token"


def test_expire_tokens(client: httpx.Client, app: CommercetoolsSandboxApp) -> None:
    app.expire_tokens()
    assert client.get(api("orders")).status_code == 401


def test_token_request_validation(anonymous: httpx.Client, world: Path) -> None:
    no_auth = anonymous.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert no_auth.status_code == 401
    assert no_auth.json()["error"] == "invalid_client"
    wrong_grant = anonymous.post("/oauth/token", auth=("c", "s"), data={"grant_type": "password"})
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    other_project = _token(anonymous, scope="manage_orders:another-project")
    assert other_project.status_code == 400
    assert other_project.json()["error"] == "invalid_scope"

    register_api_client(
        world, "pipelines", "s3cret", [f"view_orders:{PROJECT}"], token_ttl_seconds=60
    )
    assert _token(anonymous, scope=None, auth=("pipelines", "wrong")).status_code == 401
    assert _token(anonymous, scope=None, auth=("someone", "else")).status_code == 401
    granted = _token(anonymous, scope=None, auth=("pipelines", "s3cret")).json()
    assert (granted["scope"], granted["expires_in"]) == (f"view_orders:{PROJECT}", 60)
    too_much = _token(anonymous, scope=f"manage_orders:{PROJECT}", auth=("pipelines", "s3cret"))
    assert too_much.json()["error"] == "invalid_scope"


def test_scopes_are_enforced(anonymous: httpx.Client, store: DocumentStore) -> None:
    store.insert_many("orders", [_order(1)])
    token = _token(anonymous, scope=f"view_orders:{PROJECT} view_published_products:{PROJECT}")
    anonymous.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    assert anonymous.get(api("orders")).status_code == 200
    write = anonymous.post(api(f"orders/{_order(1)['id']}"), json={"version": 1, "actions": []})
    assert write.status_code == 403
    assert write.json()["error"] == "insufficient_scope"
    assert anonymous.get(api("inventory")).status_code == 403
    assert anonymous.get(api("product-projections")).status_code == 200
    assert anonymous.get(api("product-projections"), params={"staged": "true"}).status_code == 403


def test_the_project_serves_its_settings_to_a_client_allowed_to_see_them(
    client: httpx.Client, anonymous: httpx.Client
) -> None:
    project = client.get(f"/{PROJECT}").json()
    assert project["key"] == PROJECT
    assert project["currencies"] == ["GBP", "EUR"] and project["countries"] == ["GB", "IE"]
    assert client.post(f"/{PROJECT}", json={}).status_code == 405
    token = _token(anonymous, scope=f"view_orders:{PROJECT}").json()["access_token"]
    anonymous.headers["Authorization"] = f"Bearer {token}"
    refused = anonymous.get(f"/{PROJECT}")
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    token = _token(anonymous, scope=f"view_project_settings:{PROJECT}").json()["access_token"]
    anonymous.headers["Authorization"] = f"Bearer {token}"
    assert anonymous.get(f"/{PROJECT}").status_code == 200


# -- queries ----------------------------------------------------------------------------------


def test_keyset_paging_with_where_and_sort(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many("orders", [_order(n) for n in range(1, 1235)])
    expected = [_order(n)["id"] for n in range(1, 1235) if n % 3]
    seen: list[str] = []
    params: dict[str, Any] = {
        "where": 'orderState = "Open"',
        "sort": "id asc",
        "limit": 500,
        "withTotal": "false",
    }
    while True:
        page = client.get(api("orders"), params=params).json()
        assert "total" not in page
        seen.extend(order["id"] for order in page["results"])
        if page["count"] < 500:
            break
        params["where"] = ['orderState = "Open"', "id > :lastId"]
        params["var.lastId"] = page["results"][-1]["id"]
    assert seen == expected


def test_query_defaults_and_total(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many("orders", [_order(n) for n in range(1, 31)])
    page = client.get(api("orders")).json()
    assert (page["limit"], page["offset"], page["count"], page["total"]) == (20, 0, 20, 30)
    last = client.get(api("orders"), params={"offset": 25}).json()
    assert (last["count"], last["total"]) == (5, 30)


def test_total_is_capped_with_a_predicate(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many("orders", [_order(n) for n in range(1, 10_052)])
    unfiltered = client.get(api("orders"), params={"limit": 1}).json()
    assert unfiltered["total"] == 10_051
    filtered = client.get(api("orders"), params={"limit": 1, "where": "version = 1"}).json()
    assert filtered["total"] == 10_000
    deep = client.get(
        api("orders"), params={"limit": 500, "offset": 10_000, "sort": "id asc"}
    ).json()
    assert deep["count"] == 51


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": 10_001}, "offset"),
        ({"offset": -1}, "offset"),
        ({"withTotal": "yes"}, "withTotal"),
        ({"where": "orderState = Open"}, "Expected a literal"),
        ({"where": "id > :lastId"}, "var.lastId"),
        ({"where": "geoLocation within circle(1,2,3)"}, "not supported"),
        ({"sort": "createdAt"}, "Invalid sort"),
        ({"expand": "paymentInfo.payments[0]"}, "expansion"),
        ({"var.last-id": "x", "where": "id > :x"}, "variable"),
    ],
)
def test_invalid_query_parameters_are_400(
    client: httpx.Client, params: dict[str, Any], fragment: str
) -> None:
    response = client.get(api("orders"), params=params)
    assert response.status_code == 400
    assert _error_code(response) == "InvalidInput"
    assert fragment in response.json()["message"]


def test_sort_desc_and_several_keys(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many(
        "orders",
        [
            _order(1, createdAt="2026-01-02T00:00:00.000Z"),
            _order(2, createdAt="2026-01-01T00:00:00.000Z"),
            _order(3, createdAt="2026-01-02T00:00:00.000Z"),
        ],
    )
    page = client.get(api("orders"), params={"sort": ["createdAt desc", "orderNumber desc"]}).json()
    assert [o["orderNumber"] for o in page["results"]] == ["UK-00003", "UK-00001", "UK-00002"]
    by_total = client.get(api("orders"), params={"sort": "totalPrice.centAmount desc"}).json()
    assert [o["orderNumber"] for o in by_total["results"]] == ["UK-00003", "UK-00002", "UK-00001"]


def test_get_by_id_order_number_and_404(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many("orders", [_order(7)])
    assert client.get(api(f"orders/{_order(7)['id']}")).json()["orderNumber"] == "UK-00007"
    assert client.get(api("orders/order-number=UK-00007")).json()["id"] == _order(7)["id"]
    missing = client.get(api("orders/nope"))
    assert missing.status_code == 404
    assert _error_code(missing) == "ResourceNotFound"
    assert client.get(api("carts")).status_code == 404


def test_expand_payments(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many(
        "payments",
        [
            {
                "id": "pay-1",
                "version": 3,
                "createdAt": NOW,
                "lastModifiedAt": NOW,
                "amountPlanned": _gbp(1001),
                "transactions": [],
            }
        ],
    )
    store.insert_many(
        "orders", [_order(1, paymentInfo={"payments": [{"typeId": "payment", "id": "pay-1"}]})]
    )
    page = client.get(api("orders"), params={"expand": "paymentInfo.payments[*]"}).json()
    ref = page["results"][0]["paymentInfo"]["payments"][0]
    assert ref["obj"]["amountPlanned"]["centAmount"] == 1001
    single = client.get(api(f"orders/{_order(1)['id']}")).json()
    assert "obj" not in single["paymentInfo"]["payments"][0]
    found = client.get(api("orders"), params={"where": 'paymentInfo(payments(id="pay-1"))'}).json()
    assert found["count"] == 1


@pytest.mark.slow
def test_keyset_paging_reaches_all_25000_orders(client: httpx.Client, store: DocumentStore) -> None:
    # Speed is measured in bench/page_orders.py; here: past the offset cap, each order once.
    store.insert_many("orders", (_order(n) for n in range(1, 25_001)))
    seen: list[str] = []
    params: dict[str, Any] = {"sort": "id asc", "limit": 500, "withTotal": "false"}
    while True:
        page = client.get(api("orders"), params=params).json()
        seen.extend(order["id"] for order in page["results"])
        if page["count"] < 500:
            break
        params.update({"where": "id > :lastId", "var.lastId": page["results"][-1]["id"]})
    assert len(seen) == 25_000
    assert len(set(seen)) == 25_000
    assert seen == sorted(seen)


# -- updates ----------------------------------------------------------------------------------


def _update(
    client: httpx.Client, path: str, version: int, *actions: dict[str, Any]
) -> httpx.Response:
    return client.post(api(path), json={"version": version, "actions": list(actions)})


def test_version_conflict_is_409_with_current_version(
    client: httpx.Client, store: DocumentStore
) -> None:
    order_id = _order(1)["id"]
    store.insert_many("orders", [_order(1, version=4)])
    response = _update(
        client, f"orders/{order_id}", 3, {"action": "changeOrderState", "orderState": "Complete"}
    )
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert error["code"] == "ConcurrentModification"
    assert error["currentVersion"] == 4
    assert response.json()["message"] == (
        f"Object {order_id} has a different version than expected. Expected: 3 - Actual: 4."
    )


def test_more_than_500_actions_is_413(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many("orders", [_order(1)])
    actions = [{"action": "changeOrderState", "orderState": "Open"}] * 997
    response = _update(client, f"orders/{_order(1)['id']}", 1, *actions)
    assert response.status_code == 413
    assert response.json()["message"] == "The update actions count of 997 exceeds the limit of 500."
    assert _update(client, f"orders/{_order(1)['id']}", 1, *actions[:500]).status_code == 200


def test_unknown_action_is_400_invalid_input(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many("orders", [_order(1)])
    response = _update(client, f"orders/{_order(1)['id']}", 1, {"action": "setShipmentStatus"})
    assert response.status_code == 400
    assert _error_code(response) == "InvalidInput"
    assert "setShipmentStatus" in response.json()["message"]


def test_order_state_actions_and_the_two_cancel_spellings(
    client: httpx.Client, store: DocumentStore
) -> None:
    store.insert_many("orders", [_order(1)])
    path = f"orders/{_order(1)['id']}"
    wrong = _update(
        client, path, 1, {"action": "changeShipmentState", "shipmentState": "Cancelled"}
    )
    assert wrong.status_code == 400
    assert _error_code(wrong) == "InvalidJsonInput"
    updated = _update(
        client,
        path,
        1,
        {"action": "changeShipmentState", "shipmentState": "Canceled"},
        {"action": "changeOrderState", "orderState": "Cancelled"},
        {"action": "changePaymentState", "paymentState": "CreditOwed"},
    ).json()
    assert (updated["version"], updated["shipmentState"], updated["orderState"]) == (
        2,
        "Canceled",
        "Cancelled",
    )
    # An update that changes nothing keeps the version.
    same = _update(
        client, path, 2, {"action": "changeOrderState", "orderState": "Cancelled"}
    ).json()
    assert same["version"] == 2


def test_deliveries_parcels_and_tracking(client: httpx.Client, store: DocumentStore) -> None:
    store.insert_many("orders", [_order(1), _order(2, shippingInfo=None)])
    path = f"orders/{_order(1)['id']}"
    tracking = {"trackingId": "RM123", "carrier": "Royal Mail"}
    order = _update(
        client,
        path,
        1,
        {
            "action": "addDelivery",
            "deliveryKey": "SHIP-1",
            "items": [{"id": "li-1", "quantity": 1}],
            "parcels": [{"key": "PARCEL-1", "trackingData": tracking}],
        },
    ).json()
    delivery = order["shippingInfo"]["deliveries"][0]
    assert delivery["key"] == "SHIP-1"
    assert delivery["parcels"][0]["trackingData"] == tracking

    duplicate = _update(client, path, 2, {"action": "addDelivery", "deliveryKey": "SHIP-1"})
    assert duplicate.status_code == 400
    assert _error_code(duplicate) == "DuplicateField"
    assert client.get(api(path)).json()["version"] == 2

    bad_item = _update(
        client, path, 2, {"action": "addDelivery", "items": [{"id": "nope", "quantity": 1}]}
    )
    assert bad_item.status_code == 400

    order = _update(
        client,
        path,
        2,
        {"action": "addParcelToDelivery", "deliveryKey": "SHIP-1", "parcelKey": "PARCEL-2"},
        {"action": "setParcelTrackingData", "parcelKey": "PARCEL-1"},
    ).json()
    parcels = order["shippingInfo"]["deliveries"][0]["parcels"]
    assert [p["key"] for p in parcels] == ["PARCEL-1", "PARCEL-2"]
    assert "trackingData" not in parcels[0]

    no_shipping = _update(client, f"orders/{_order(2)['id']}", 1, {"action": "addDelivery"})
    assert _error_code(no_shipping) == "InvalidOperation"


def test_update_sync_info_needs_an_order_export_channel(
    client: httpx.Client, store: DocumentStore
) -> None:
    store.insert_many(
        "channels",
        [
            {
                "id": "c-wh",
                "version": 1,
                "createdAt": NOW,
                "lastModifiedAt": NOW,
                "key": "wh",
                "roles": ["InventorySupply"],
            },
            {
                "id": "c-erp",
                "version": 1,
                "createdAt": NOW,
                "lastModifiedAt": NOW,
                "key": "erp",
                "roles": ["OrderExport"],
            },
        ],
    )
    store.insert_many("orders", [_order(1)])
    path = f"orders/{_order(1)['id']}"
    wrong = _update(
        client, path, 1, {"action": "updateSyncInfo", "channel": {"typeId": "channel", "key": "wh"}}
    )
    assert _error_code(wrong) == "InvalidInput"
    missing = _update(
        client, path, 1, {"action": "updateSyncInfo", "channel": {"typeId": "channel", "id": "x"}}
    )
    assert _error_code(missing) == "ReferencedResourceNotFound"
    order = _update(
        client,
        path,
        1,
        {
            "action": "updateSyncInfo",
            "channel": {"typeId": "channel", "key": "erp"},
            "externalId": "SO-9",
        },
        {
            "action": "setCustomType",
            "type": {"typeId": "type", "key": "erp-order"},
            "fields": {"a": 1},
        },
        {"action": "setCustomField", "name": "b", "value": "x"},
    ).json()
    assert order["syncInfo"][0]["channel"] == {"typeId": "channel", "id": "c-erp"}
    assert order["syncInfo"][0]["externalId"] == "SO-9"
    assert order["custom"]["fields"] == {"a": 1, "b": "x"}
    exported = client.get(api("orders"), params={"where": 'syncInfo(channel(id="c-erp"))'}).json()
    assert exported["count"] == 1


def test_order_import(client: httpx.Client) -> None:
    draft = {
        "orderNumber": "IMP-1",
        "totalPrice": {"currencyCode": "GBP", "centAmount": 1234},
        "lineItems": [
            {
                "name": {"en-GB": "Tea"},
                "variant": {"sku": "TEA-1"},
                "price": {
                    "value": {
                        "type": "highPrecision",
                        "currencyCode": "GBP",
                        "fractionDigits": 4,
                        "preciseAmount": 12345,
                    }
                },
                "quantity": 3,
            }
        ],
        "customLineItems": [
            {
                "name": {"en-GB": "Gift wrap"},
                "slug": "gift-wrap",
                "quantity": 1,
                "money": {"currencyCode": "GBP", "centAmount": 250},
            }
        ],
    }
    created = client.post(api("orders/import"), json=draft)
    assert created.status_code == 201
    order = created.json()
    assert order["version"] == 1
    # 1.2345 x 3 = 3.7035 -> 370 pence, half even.
    assert order["lineItems"][0]["totalPrice"]["centAmount"] == 370
    assert order["lineItems"][0]["price"]["value"]["centAmount"] == 123
    assert order["customLineItems"][0]["totalPrice"]["centAmount"] == 250
    again = client.post(api("orders/import"), json=draft)
    assert _error_code(again) == "DuplicateField"


# -- inventory and channels -------------------------------------------------------------------


def _channel(client: httpx.Client, key: str, roles: list[str] | None = None) -> dict[str, Any]:
    draft: dict[str, Any] = {"key": key}
    if roles is not None:
        draft["roles"] = roles
    response = client.post(api("channels"), json=draft)
    assert response.status_code == 201, response.text
    return response.json()


def test_channels(client: httpx.Client) -> None:
    warehouse = _channel(client, "leeds")
    assert warehouse["roles"] == ["InventorySupply"]
    assert _error_code(client.post(api("channels"), json={"key": "leeds"})) == "DuplicateField"
    assert (
        _error_code(client.post(api("channels"), json={"key": "x", "roles": []}))
        == "InvalidOperation"
    )
    assert client.post(api("channels"), json={"roles": ["Primary"]}).status_code == 400
    updated = _update(
        client, "channels/key=leeds", 1, {"action": "addRoles", "roles": ["OrderExport"]}
    ).json()
    assert updated["roles"] == ["InventorySupply", "OrderExport"]
    page = client.get(
        api("channels"), params={"where": 'roles contains any ("OrderExport")'}
    ).json()
    assert page["count"] == 1


def test_inventory_lifecycle(client: httpx.Client) -> None:
    leeds = _channel(client, "leeds")
    bristol = _channel(client, "bristol")
    draft = {
        "sku": "TEA-1",
        "quantityOnStock": 10,
        "supplyChannel": {"typeId": "channel", "id": leeds["id"]},
    }
    entry = client.post(api("inventory"), json=draft).json()
    assert (entry["quantityOnStock"], entry["availableQuantity"]) == (10, 10)

    duplicate = client.post(api("inventory"), json=draft)
    assert duplicate.status_code == 400
    assert _error_code(duplicate) == "DuplicateField"
    other = client.post(
        api("inventory"), json={**draft, "supplyChannel": {"typeId": "channel", "key": "bristol"}}
    )
    assert other.status_code == 201
    assert other.json()["supplyChannel"]["id"] == bristol["id"]
    assert (
        client.post(api("inventory"), json={"sku": "TEA-1", "quantityOnStock": 1}).status_code
        == 201
    )
    assert (
        _error_code(client.post(api("inventory"), json={"sku": "TEA-1", "quantityOnStock": 1}))
        == "DuplicateField"
    )
    unknown = client.post(
        api("inventory"), json={**draft, "supplyChannel": {"typeId": "channel", "id": "x"}}
    )
    assert _error_code(unknown) == "ReferencedResourceNotFound"

    path = f"inventory/{entry['id']}"
    entry = _update(client, path, 1, {"action": "removeQuantity", "quantity": 15}).json()
    assert (entry["quantityOnStock"], entry["availableQuantity"]) == (-5, -5)
    entry = _update(
        client,
        path,
        2,
        {"action": "addQuantity", "quantity": 7},
        {"action": "changeQuantity", "quantity": 40},
    ).json()
    assert (entry["quantityOnStock"], entry["availableQuantity"], entry["version"]) == (40, 40, 3)
    assert (
        _update(client, path, 3, {"action": "changeQuantity", "quantity": "40"}).status_code == 400
    )
    moved = _update(
        client,
        path,
        3,
        {"action": "setSupplyChannel", "supplyChannel": {"typeId": "channel", "id": bristol["id"]}},
    )
    assert _error_code(moved) == "DuplicateField"

    by_channel = client.get(
        api("inventory"),
        params={
            "where": ["supplyChannel(id = :c)", 'sku in ("TEA-1")'],
            "var.c": leeds["id"],
            "expand": "supplyChannel",
        },
    ).json()
    assert by_channel["count"] == 1
    assert by_channel["results"][0]["supplyChannel"]["obj"]["key"] == "leeds"

    assert _error_code(client.delete(api(path))) == "InvalidInput"
    assert client.delete(api(path), params={"version": 1}).status_code == 409
    in_use = client.delete(api(f"channels/{leeds['id']}"), params={"version": 1})
    assert _error_code(in_use) == "ReferenceExists"
    assert client.delete(api(path), params={"version": 3}).status_code == 200
    assert client.get(api(path)).status_code == 404


# -- products ---------------------------------------------------------------------------------


def _product_draft(key: str, sku: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "productType": {"typeId": "product-type", "key": "tea"},
        "name": {"en-GB": key},
        "slug": {"en-GB": key},
        "masterVariant": {
            "sku": sku,
            "prices": [{"value": {"currencyCode": "GBP", "centAmount": 450}}],
        },
        **extra,
    }


def test_product_changes_stay_staged_until_publish(client: httpx.Client) -> None:
    created = client.post(api("products"), json=_product_draft("earl-grey", "EG-1", publish=True))
    assert created.status_code == 201
    product = created.json()
    path = f"products/{product['id']}"
    product = _update(
        client,
        path,
        1,
        {
            "action": "setPrices",
            "sku": "EG-1",
            "prices": [{"value": {"currencyCode": "GBP", "centAmount": 499}}],
        },
        {"action": "addVariant", "sku": "EG-2", "attributes": [{"name": "size", "value": "250g"}]},
    ).json()
    assert product["masterData"]["hasStagedChanges"] is True
    current = client.get(api(f"product-projections/{product['id']}")).json()
    staged = client.get(
        api(f"product-projections/{product['id']}"), params={"staged": "true"}
    ).json()
    assert current["masterVariant"]["prices"][0]["value"]["centAmount"] == 450
    assert current["variants"] == []
    assert staged["masterVariant"]["prices"][0]["value"]["centAmount"] == 499
    assert staged["variants"][0]["sku"] == "EG-2"

    product = _update(client, path, 2, {"action": "publish"}).json()
    assert product["masterData"]["hasStagedChanges"] is False
    current = client.get(api(f"product-projections/{product['id']}")).json()
    assert current["masterVariant"]["prices"][0]["value"]["centAmount"] == 499

    product = _update(
        client, path, 3, {"action": "changeName", "name": {"en-GB": "Earl Grey"}, "staged": False}
    ).json()
    assert product["masterData"]["current"]["name"] == product["masterData"]["staged"]["name"]
    assert product["masterData"]["hasStagedChanges"] is False


def test_projections_list_published_products_only(client: httpx.Client) -> None:
    client.post(api("products"), json=_product_draft("published", "P-1", publish=True))
    draft = client.post(api("products"), json=_product_draft("draft", "D-1")).json()
    current = client.get(api("product-projections")).json()
    assert [p["key"] for p in current["results"]] == ["published"]
    staged = client.get(
        api("product-projections"), params={"staged": "true", "sort": "key asc"}
    ).json()
    assert [p["key"] for p in staged["results"]] == ["draft", "published"]
    assert client.get(api(f"product-projections/{draft['id']}")).status_code == 404
    by_sku = client.get(
        api("product-projections"), params={"where": 'masterVariant(sku="P-1")'}
    ).json()
    assert by_sku["count"] == 1
    products = client.get(api("products"), params={"where": "masterData(published=true)"}).json()
    assert [p["key"] for p in products["results"]] == ["published"]


def test_product_rules(client: httpx.Client) -> None:
    tax = client.post(
        api("tax-categories"),
        json={
            "name": "Standard",
            "key": "standard",
            "rates": [{"name": "VAT", "amount": 0.2, "includedInPrice": True, "country": "GB"}],
        },
    ).json()
    first = client.post(api("products"), json=_product_draft("prod-a", "A-1", publish=True)).json()
    second = client.post(api("products"), json=_product_draft("prod-b", "B-1")).json()
    dup_sku = _update(client, f"products/{second['id']}", 1, {"action": "addVariant", "sku": "A-1"})
    assert _error_code(dup_sku) == "DuplicateField"
    assert (
        _error_code(client.post(api("products"), json=_product_draft("prod-c", "A-1")))
        == "DuplicateField"
    )

    staged_tax = _update(
        client,
        f"products/{first['id']}",
        1,
        {
            "action": "setTaxCategory",
            "taxCategory": {"typeId": "tax-category", "key": "standard"},
            "staged": True,
        },
    )
    assert _error_code(staged_tax) == "InvalidInput"
    taxed = _update(
        client,
        f"products/{first['id']}",
        1,
        {"action": "setTaxCategory", "taxCategory": {"typeId": "tax-category", "key": "standard"}},
    ).json()
    assert taxed["taxCategory"] == {"typeId": "tax-category", "id": tax["id"]}
    assert (
        client.get(api(f"product-projections/{first['id']}")).json()["taxCategory"]["id"]
        == tax["id"]
    )

    price_id = taxed["masterData"]["staged"]["masterVariant"]["prices"][0]["id"]
    clash = _update(
        client,
        f"products/{first['id']}",
        2,
        {
            "action": "addPrice",
            "sku": "A-1",
            "price": {"value": {"currencyCode": "GBP", "centAmount": 1}},
        },
    )
    assert _error_code(clash) == "DuplicatePriceScope"
    changed = _update(
        client,
        f"products/{first['id']}",
        2,
        {
            "action": "changePrice",
            "priceId": price_id,
            "price": {
                "value": {
                    "type": "highPrecision",
                    "currencyCode": "GBP",
                    "fractionDigits": 3,
                    "preciseAmount": 4125,
                }
            },
        },
    ).json()
    value = changed["masterData"]["staged"]["masterVariant"]["prices"][0]["value"]
    # 4.125 rounds half even to 412 pence.
    assert (value["type"], value["centAmount"], value["preciseAmount"]) == (
        "highPrecision",
        412,
        4125,
    )
    removed = _update(
        client, f"products/{first['id']}", 3, {"action": "removePrice", "priceId": price_id}
    ).json()
    assert removed["masterData"]["staged"]["masterVariant"]["prices"] == []
    assert removed["masterData"]["current"]["masterVariant"]["prices"][0]["id"] == price_id

    client.post(api("inventory"), json={"sku": "A-1", "quantityOnStock": 1})
    blocked = _update(
        client, f"products/{first['id']}", 4, {"action": "setSku", "variantId": 1, "sku": "A-2"}
    )
    assert _error_code(blocked) == "InvalidOperation"
    master = _update(client, f"products/{first['id']}", 4, {"action": "removeVariant", "id": 1})
    assert _error_code(master) == "InvalidOperation"


def test_tax_category_rates_are_fractions(client: httpx.Client) -> None:
    bad = client.post(
        api("tax-categories"),
        json={
            "name": "Standard",
            "rates": [{"name": "VAT", "amount": 20, "includedInPrice": True, "country": "GB"}],
        },
    )
    assert _error_code(bad) == "InvalidField"
    assert client.get(api("tax-categories")).json()["count"] == 0


# -- faults and request log -------------------------------------------------------------------


def test_injected_status_faults_then_success(client: httpx.Client, world: Path) -> None:
    save_faults(
        world, "commercetools", FaultConfig(rate_503=1.0, max_faults=2, retry_after_seconds=7)
    )
    first = client.get(api("orders"))
    assert first.status_code == 503
    assert first.headers["Retry-After"] == "7"
    assert _error_code(first) == "OverCapacity"
    assert client.get(api("orders")).status_code == 503
    assert client.get(api("orders")).status_code == 200
    counts = request_counts(world, "commercetools")
    assert counts[("GET", f"/{PROJECT}/orders", 503)] == 2
    assert counts[("GET", f"/{PROJECT}/orders", 200)] == 1
    # The token request was not disturbed (include_auth is off).
    assert counts[("POST", "/oauth/token", 200)] == 1


@pytest.mark.parametrize(
    ("rate", "status", "code"),
    [
        ("rate_429", 429, "TooManyRequests"),
        ("rate_502", 502, "General"),
        ("rate_504", 504, "General"),
    ],
)
def test_each_status_fault_has_an_error_body(
    client: httpx.Client, world: Path, rate: str, status: int, code: str
) -> None:
    save_faults(world, "commercetools", FaultConfig(**{rate: 1.0}))
    response = client.get(api("orders"))
    assert response.status_code == status
    assert response.json()["statusCode"] == status
    assert _error_code(response) == code
    if status == 429:
        assert response.headers["Retry-After"] == "1"


def test_injected_409_really_moves_the_version(
    client: httpx.Client, store: DocumentStore, world: Path
) -> None:
    store.insert_many("orders", [_order(1)])
    path = f"orders/{_order(1)['id']}"
    save_faults(world, "commercetools", FaultConfig(rate_409=1.0, max_faults=1))
    assert client.get(api(path)).status_code == 200  # reads are never 409
    conflict = _update(client, path, 1, {"action": "changeOrderState", "orderState": "Complete"})
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["currentVersion"] == 2
    assert "injected" not in conflict.json()["errors"][0]
    assert client.get(api(path)).json()["version"] == 2
    done = _update(client, path, 2, {"action": "changeOrderState", "orderState": "Complete"})
    assert done.json()["version"] == 3
    faults = [r.fault for r in request_log(world, "commercetools") if r.status == 409]
    assert faults == ["409"]


def test_seeded_faults_are_deterministic(client: httpx.Client, world: Path) -> None:
    def run() -> list[int]:
        save_faults(world, "commercetools", FaultConfig(rate_429=0.2, rate_503=0.2, seed=42))
        return [client.get(api("orders")).status_code for _ in range(30)]

    first = run()
    assert first == run()
    assert {429, 503, 200} <= set(first)


def test_latency_is_added(client: httpx.Client, world: Path) -> None:
    save_faults(world, "commercetools", FaultConfig(latency_ms=150))
    started = time.perf_counter()
    client.get(api("orders"))
    assert time.perf_counter() - started >= 0.15


def test_concurrent_clients_with_conflict_retries(
    app: CommercetoolsSandboxApp, store: DocumentStore
) -> None:
    store.insert_many(
        "inventory",
        [
            {
                "id": "i1",
                "version": 1,
                "createdAt": NOW,
                "lastModifiedAt": NOW,
                "sku": "S",
                "quantityOnStock": 0,
                "availableQuantity": 0,
            }
        ],
    )
    errors: list[BaseException] = []
    conflicts: list[int] = []

    def work() -> None:
        try:
            with httpx.Client(transport=sandbox_transport(app), base_url=BASE) as http:
                token = _token(http).json()["access_token"]
                http.headers["Authorization"] = f"Bearer {token}"
                for _ in range(10):
                    while True:
                        version = http.get(api("inventory/i1")).json()["version"]
                        response = _update(
                            http, "inventory/i1", version, {"action": "addQuantity", "quantity": 1}
                        )
                        if response.status_code == 200:
                            break
                        assert response.status_code == 409
                        conflicts.append(1)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entry = store.get("inventory", "i1")
    assert entry is not None
    assert (entry["quantityOnStock"], entry["availableQuantity"], entry["version"]) == (60, 60, 61)


# -- strict like the real API: product types, currencies, channel references ------------------

_TEA_TYPE = {
    "key": "tea",
    "name": "Tea",
    "description": "Loose and bagged tea",
    "attributes": [
        {"name": "size", "type": {"name": "text"}},
        {
            "name": "caffeine",
            "type": {
                "name": "enum",
                "values": [{"key": "none", "label": "None"}, {"key": "high", "label": "High"}],
            },
        },
        {
            "name": "origins",
            "type": {
                "name": "set",
                "elementType": {
                    "name": "lenum",
                    "values": [{"key": "in", "label": {"en-GB": "India"}}],
                },
            },
        },
    ],
}


def test_product_attributes_must_be_defined_by_the_product_type(client: httpx.Client) -> None:
    created = client.post(api("product-types"), json=_TEA_TYPE)
    assert created.status_code == 201
    type_id = created.json()["id"]
    draft = _product_draft("assam", "AS-1")
    draft["masterVariant"]["attributes"] = [{"name": "strength", "value": "strong"}]
    unknown = client.post(api("products"), json=draft)
    assert unknown.status_code == 400
    assert _error_code(unknown) == "AttributeNameDoesNotExist"
    assert unknown.json()["errors"][0]["invalidAttributeName"] == "strength"

    draft["masterVariant"]["attributes"] = [
        {"name": "size", "value": "250g"},
        {"name": "caffeine", "value": "high"},
        {"name": "origins", "value": [{"key": "in", "label": {"en-GB": "India"}}]},
    ]
    product = client.post(api("products"), json=draft)
    assert product.status_code == 201, product.text
    assert product.json()["productType"] == {"typeId": "product-type", "id": type_id}

    path = f"products/{product.json()['id']}"
    missing = _update(client, path, 1, {"action": "setAttribute", "variantId": 1, "name": "x"})
    assert _error_code(missing) == "AttributeNameDoesNotExist"
    added = _update(
        client, path, 1, {"action": "addVariant", "sku": "AS-2", "attributes": [{"name": "y"}]}
    )
    assert _error_code(added) == "AttributeNameDoesNotExist"


def test_enum_attribute_values_must_be_values_of_the_product_type(client: httpx.Client) -> None:
    assert client.post(api("product-types"), json=_TEA_TYPE).status_code == 201
    draft = _product_draft("darjeeling", "DJ-1")
    draft["masterVariant"]["attributes"] = [{"name": "caffeine", "value": "medium"}]
    bad = client.post(api("products"), json=draft)
    assert bad.status_code == 400
    error = bad.json()["errors"][0]
    assert (error["code"], error["field"], error["invalidValue"]) == (
        "InvalidField",
        "caffeine",
        "medium",
    )
    assert error["allowedValues"] == ["none", "high"]
    draft["masterVariant"]["attributes"] = [{"name": "origins", "value": ["cn"]}]
    assert _error_code(client.post(api("products"), json=draft)) == "InvalidField"

    draft["masterVariant"]["attributes"] = []
    product = client.post(api("products"), json=draft).json()
    path = f"products/{product['id']}"
    wrong = _update(
        client,
        path,
        1,
        {"action": "setAttributeInAllVariants", "name": "caffeine", "value": {"key": "medium"}},
    )
    assert _error_code(wrong) == "InvalidField"
    right = _update(
        client,
        path,
        1,
        {"action": "setAttributeInAllVariants", "name": "caffeine", "value": "none"},
    )
    assert right.status_code == 200


def test_prices_only_in_the_projects_currencies(client: httpx.Client) -> None:
    draft = _product_draft("sencha", "SE-1")
    draft["masterVariant"]["prices"] = [{"value": {"currencyCode": "USD", "centAmount": 500}}]
    bad = client.post(api("products"), json=draft)
    assert bad.status_code == 400
    error = bad.json()["errors"][0]
    assert (error["code"], error["field"], error["invalidValue"]) == (
        "InvalidField",
        "currencyCode",
        "USD",
    )
    draft["masterVariant"]["prices"] = [{"value": {"currencyCode": "EUR", "centAmount": 500}}]
    product = client.post(api("products"), json=draft)
    assert product.status_code == 201
    price = {"value": {"currencyCode": "JPY", "centAmount": 500}}
    added = _update(
        client,
        f"products/{product.json()['id']}",
        1,
        {"action": "addPrice", "variantId": 1, "price": price},
    )
    assert _error_code(added) == "InvalidField"


def test_a_missing_channel_in_a_price_is_a_referenced_resource_not_found(
    client: httpx.Client,
) -> None:
    draft = _product_draft("oolong", "OO-1")
    draft["masterVariant"]["prices"][0]["channel"] = {"typeId": "channel", "key": "nowhere"}
    missing = client.post(api("products"), json=draft)
    assert missing.status_code == 400
    error = missing.json()["errors"][0]
    assert (error["code"], error["typeId"], error["key"]) == (
        "ReferencedResourceNotFound",
        "channel",
        "nowhere",
    )
