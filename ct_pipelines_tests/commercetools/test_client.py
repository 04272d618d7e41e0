"""The commercetools client against a scripted transport: auth, retries, paging, updates, secrets."""

from __future__ import annotations

import base64
import gc
import logging
import weakref
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from ct_pipelines.commercetools import (
    AuthError,
    BadRequestError,
    CommercetoolsClient,
    ConcurrentModificationError,
    RateLimitedError,
    ServiceUnavailableError,
    TooManyActionsError,
)
from ct_pipelines.commercetools.client import _gc_paused
from ct_pipelines.commercetools.models import Order
from ct_pipelines.lib.retry import RetryPolicy
from ct_pipelines_tests.commercetools.fakes import (
    API_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    PROJECT,
    FakeApi,
    body,
    error,
    project_path,
)


def ok(payload: Any) -> httpx.Response:
    return httpx.Response(200, json=payload)


# --- OAuth2 ------------------------------------------------------------------------------------


def test_token_request_is_client_credentials_with_basic_auth_and_space_separated_scopes() -> None:
    api = FakeApi(handler=lambda r: ok({"id": "o1"}))
    with api.client() as client:
        assert client.get("orders/o1") == {"id": "o1"}
    (token_request,) = api.token_requests
    assert str(token_request.url) == "https://auth.europe-west1.gcp.commercetools.com/oauth/token"
    assert token_request.method == "POST"
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == f"Basic {expected}"
    form = parse_qs(token_request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "scope": [f"manage_orders:{PROJECT} manage_products:{PROJECT}"],
    }
    (api_request,) = api.api_requests
    assert str(api_request.url) == f"{API_URL}/{PROJECT}/orders/o1"
    assert api_request.headers["Authorization"] == f"Bearer {api.issued[0]}"


def test_token_is_cached_between_requests() -> None:
    api = FakeApi(handler=lambda r: ok({}))
    with api.client() as client:
        for _ in range(5):
            client.get("channels")
        assert client.token_fetch_count == 1
    assert len(api.token_requests) == 1


def test_token_renewed_before_expiry_using_the_clock() -> None:
    now = [1000.0]
    api = FakeApi(handler=lambda r: ok({}), token_lifetime=3600)
    with api.client(clock=lambda: now[0], renew_margin=300) as client:
        client.get("channels")
        now[0] += 3600 - 300 - 1  # one second before the renewal point: still the first token
        client.get("channels")
        assert len(api.issued) == 1
        now[0] += 1  # 300 s before expiry: renewed before the API could reject it
        client.get("channels")
    assert len(api.issued) == 2
    assert [r.headers["Authorization"] for r in api.api_requests] == [
        f"Bearer {api.issued[0]}",
        f"Bearer {api.issued[0]}",
        f"Bearer {api.issued[1]}",
    ]


def test_renew_margin_is_capped_at_half_a_short_lifetime() -> None:
    now = [0.0]
    api = FakeApi(handler=lambda r: ok({}), token_lifetime=100)
    with api.client(clock=lambda: now[0], renew_margin=300) as client:
        client.get("channels")
        now[0] = 49.0
        client.get("channels")
        assert len(api.issued) == 1
        now[0] = 50.0
        client.get("channels")
    assert len(api.issued) == 2


def test_401_renews_the_token_once_and_replays_the_request() -> None:
    api = FakeApi(handler=lambda r: ok({"id": "o1", "version": 3}))
    with api.client() as client:
        client.get("orders/o1")
        api.rejected_tokens.add(api.issued[0])  # revoked server-side before it expired
        assert client.get("orders/o1") == {"id": "o1", "version": 3}
    assert len(api.issued) == 2
    assert len(api.api_requests) == 3
    assert api.api_requests[-1].headers["Authorization"] == f"Bearer {api.issued[1]}"


def test_second_401_in_a_row_raises_auth_error() -> None:
    api = FakeApi()
    api.rejected_tokens.update(f"token-{i}-Hq2Vb9Xy" for i in range(1, 10))
    with api.client() as client, pytest.raises(AuthError) as caught:
        client.get("orders")
    assert caught.value.status_code == 401
    assert caught.value.codes == ["invalid_token"]
    assert len(api.api_requests) == 2  # the original and exactly one replay
    assert len(api.issued) == 2


def test_token_endpoint_rejection_is_an_auth_error() -> None:
    def transport(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={
                "statusCode": 401,
                "message": "Please provide valid client credentials.",
                "error": "invalid_client",
            },
        )

    client = CommercetoolsClient(
        FakeApi().client().settings, transport=httpx.MockTransport(transport), sleep=lambda _: None
    )
    with client, pytest.raises(AuthError) as caught:
        client.get("orders")
    assert caught.value.codes == ["invalid_client"]


# --- retries -----------------------------------------------------------------------------------


def scripted(*responses: httpx.Response) -> FakeApi:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0)

    return FakeApi(handler=handler)


def test_429_and_503_retried_honouring_retry_after() -> None:
    api = scripted(
        httpx.Response(
            429, headers={"Retry-After": "2"}, json={"statusCode": 429, "message": "slow down"}
        ),
        httpx.Response(
            503, headers={"Retry-After": "5"}, json={"statusCode": 503, "message": "OverCapacity"}
        ),
        ok({"id": "o1"}),
    )
    sleeps: list[float] = []
    with api.client(
        sleep=sleeps.append, retry=RetryPolicy(max_attempts=5, base_delay=10.0)
    ) as client:
        assert client.get("orders/o1") == {"id": "o1"}
    assert sleeps == [2.0, 5.0]
    assert len(api.api_requests) == 3


def test_retry_after_as_http_date_is_honoured() -> None:
    # A date in the past: retry at once, not after the computed backoff.
    api = scripted(
        httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, json={}),
        ok({}),
    )
    sleeps: list[float] = []
    with api.client(sleep=sleeps.append, retry=RetryPolicy(base_delay=10.0)) as client:
        client.get("orders")
    assert sleeps == [0.0]


def test_rate_limit_exhausted_raises_typed_transient_error() -> None:
    api = FakeApi(handler=lambda r: error(429, "TooManyRequests", "Too many requests"))
    client = api.client(retry=RetryPolicy(max_attempts=3, base_delay=0))
    with client, pytest.raises(RateLimitedError) as caught:
        client.get("orders")
    assert caught.value.transient
    assert caught.value.codes == ["TooManyRequests"]
    assert len(api.api_requests) == 3


def test_service_unavailable_exhausted_raises_with_api_error_json() -> None:
    api = FakeApi(handler=lambda r: error(503, "OverCapacity", "The service is over capacity."))
    client = api.client(retry=RetryPolicy(max_attempts=2, base_delay=0))
    with client, pytest.raises(ServiceUnavailableError) as caught:
        client.get("orders")
    assert caught.value.status_code == 503
    assert caught.value.message == "The service is over capacity."
    assert caught.value.codes == ["OverCapacity"]


def test_read_timeouts_are_retried_then_surface_as_service_unavailable() -> None:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] < 3:
            raise httpx.ReadTimeout("timed out", request=request)
        return ok({"id": "o1"})

    with FakeApi(handler=handler).client() as client:
        assert client.get("orders/o1") == {"id": "o1"}

    def always(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = FakeApi(handler=always).client(retry=RetryPolicy(max_attempts=2, base_delay=0))
    with client, pytest.raises(ServiceUnavailableError) as caught:
        client.get("orders")
    assert caught.value.status_code == 0
    assert "ConnectTimeout" in str(caught.value)


def test_unreachable_hosts_are_named_with_the_variable_that_holds_them() -> None:
    settings = FakeApi().client().settings

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = CommercetoolsClient(
        settings,
        transport=httpx.MockTransport(down),
        sleep=lambda _: None,
        retry=RetryPolicy(max_attempts=2, base_delay=0),
    )
    with client, pytest.raises(ServiceUnavailableError) as caught:
        client.get("orders")
    message = str(caught.value)
    assert httpx.URL(settings.token_url).host in message and "CTP_AUTH_URL" in message
    assert "ConnectError" in message

    def api_down(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        raise httpx.ConnectError("connection refused", request=request)

    client = CommercetoolsClient(
        settings,
        transport=httpx.MockTransport(api_down),
        sleep=lambda _: None,
        retry=RetryPolicy(max_attempts=2, base_delay=0),
    )
    with client, pytest.raises(ServiceUnavailableError) as caught:
        client.get("orders")
    assert httpx.URL(API_URL).host in str(caught.value) and "CTP_API_URL" in str(caught.value)


def test_per_request_timeout_is_configurable() -> None:
    api = FakeApi(handler=lambda r: ok({}))
    timeout = httpx.Timeout(7.0, connect=2.0)
    with api.client(timeout=timeout) as client:
        client.get("orders")
    assert api.api_requests[0].extensions["timeout"] == timeout.as_dict()
    assert api.token_requests[0].extensions["timeout"] == timeout.as_dict()


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [(400, "InvalidInput", BadRequestError), (413, "InvalidInput", TooManyActionsError)],
)
def test_permanent_errors_are_not_retried(
    status: int, code: str, error_type: type[Exception]
) -> None:
    api = FakeApi(handler=lambda r: error(status, code, "nope"))
    with api.client() as client, pytest.raises(error_type) as caught:
        client.post("orders/o1", {"version": 1, "actions": []})
    assert len(api.api_requests) == 1
    assert caught.value.codes == [code]  # type: ignore[attr-defined]


def test_get_or_none_maps_404_to_none() -> None:
    api = FakeApi(
        handler=lambda r: error(404, "ResourceNotFound", "The Resource with ID 'x' was not found.")
    )
    with api.client() as client:
        assert client.get_or_none("orders/x") is None
        assert client.get_order_by_number("UK/2024 #1") is None
    assert api.api_requests[1].url.raw_path.startswith(
        f"/{PROJECT}/orders/order-number=UK%2F2024%20%231?".encode()
    )


# --- paging ------------------------------------------------------------------------------------


def paged_store(ids: list[str]) -> tuple[FakeApi, list[dict[str, list[str]]]]:
    """A query endpoint implementing id-cursor paging; returns the parsed params of each call."""
    seen: list[dict[str, list[str]]] = []
    ordered = sorted(ids)

    def handler(request: httpx.Request) -> httpx.Response:
        params: dict[str, list[str]] = {}
        for key, value in request.url.params.multi_items():
            params.setdefault(key, []).append(value)
        seen.append(params)
        limit = int(params["limit"][0])
        last = params.get("var.lastId", [None])[0]
        rows = [{"id": i} for i in ordered if last is None or i > last][:limit]
        return ok({"limit": limit, "offset": 0, "count": len(rows), "results": rows})

    return FakeApi(handler=handler), seen


def test_query_all_pages_with_the_id_cursor_exactly_like_the_java_sdk() -> None:
    ids = [f"id-{n:03d}" for n in range(7)]
    api, seen = paged_store(ids)
    with api.client() as client:
        got = [
            doc["id"]
            for doc in client.query_all(
                "orders",
                where='orderState = "Confirmed"',
                variables={"since": "2024-05-01T00:00:00.000Z"},
                expand=["paymentInfo.payments[*]"],
                page_size=3,
            )
        ]
    assert got == ids
    assert seen == [
        {
            "where": ['orderState = "Confirmed"'],
            "var.since": ["2024-05-01T00:00:00.000Z"],
            "sort": ["id asc"],
            "limit": ["3"],
            "expand": ["paymentInfo.payments[*]"],
            "withTotal": ["false"],
        },
        {
            "where": ['orderState = "Confirmed"', "id > :lastId"],
            "var.since": ["2024-05-01T00:00:00.000Z"],
            "var.lastId": ["id-002"],
            "sort": ["id asc"],
            "limit": ["3"],
            "expand": ["paymentInfo.payments[*]"],
            "withTotal": ["false"],
        },
        {
            "where": ['orderState = "Confirmed"', "id > :lastId"],
            "var.since": ["2024-05-01T00:00:00.000Z"],
            "var.lastId": ["id-005"],
            "sort": ["id asc"],
            "limit": ["3"],
            "expand": ["paymentInfo.payments[*]"],
            "withTotal": ["false"],
        },
    ]
    assert all("offset" not in params for params in seen)
    assert all(r.url.path == f"/{PROJECT}/orders" for r in api.api_requests)


def test_query_all_keeps_several_caller_predicates_and_stops_on_an_empty_page() -> None:
    api, seen = paged_store([f"id-{n}" for n in range(4)])
    with api.client() as client:
        got = list(
            client.query_all(
                "inventory",
                where=["sku = :sku", "quantityOnStock > 0"],
                variables={"sku": "A"},
                page_size=2,
            )
        )
    assert len(got) == 4
    # Two full pages, then one empty page ends the iteration.
    assert len(seen) == 3
    assert seen[2]["where"] == ["sku = :sku", "quantityOnStock > 0", "id > :lastId"]
    assert seen[2]["var.lastId"] == ["id-3"]


def test_query_all_is_lazy_one_page_at_a_time() -> None:
    api, seen = paged_store([f"id-{n:02d}" for n in range(10)])
    with api.client() as client:
        stream = client.query_all("orders", page_size=4)
        assert seen == []  # nothing requested until iteration starts
        first = [next(stream) for _ in range(4)]
        assert [d["id"] for d in first] == ["id-00", "id-01", "id-02", "id-03"]
        assert len(seen) == 1
        next(stream)
        assert len(seen) == 2


@pytest.mark.parametrize("page_size", [0, 501, 1000])
def test_query_all_rejects_page_sizes_the_api_would_refuse(page_size: int) -> None:
    with FakeApi().client() as client, pytest.raises(ValueError):
        next(client.query_all("orders", page_size=page_size))


def test_query_all_reserves_the_cursor_variable() -> None:
    with FakeApi().client() as client, pytest.raises(ValueError):
        next(client.query_all("orders", variables={"lastId": "x"}))


def test_query_validates_limits_and_variable_names() -> None:
    with FakeApi().client() as client:
        with pytest.raises(ValueError):
            client.query("orders", limit=501)
        with pytest.raises(ValueError):
            client.query("orders", offset=10_001)
        with pytest.raises(ValueError):
            client.query("orders", where="sku = :a.b", variables={"a.b": "x"})


def test_query_repeats_list_variables_for_in_predicates() -> None:
    api, seen = paged_store([])
    with api.client() as client:
        client.query(
            "inventory",
            where="sku in :skus",
            variables={"skus": ["A", "B"]},
            limit=10,
            with_total=False,
        )
    assert seen[0]["var.skus"] == ["A", "B"]


def test_iter_orders_expands_payments_and_parses_models() -> None:
    order = {
        "id": "o1",
        "version": 2,
        "createdAt": "2024-05-01T10:00:00.000Z",
        "lastModifiedAt": "2024-05-01T10:05:00.000Z",
        "orderState": "Open",
        "totalPrice": {
            "type": "centPrecision",
            "currencyCode": "GBP",
            "centAmount": 1999,
            "fractionDigits": 2,
        },
        "lineItems": [],
        "customLineItems": [],
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok({"results": [order], "count": 1, "limit": 500, "offset": 0})

    with FakeApi(handler=handler).client() as client:
        (parsed,) = list(
            client.iter_orders(
                where="createdAt >= :from", variables={"from": "2024-05-01T00:00:00.000Z"}
            )
        )
    assert isinstance(parsed, Order)
    assert parsed.total_price.minor_units() == 1999
    assert seen[0].url.params.get_list("expand") == ["paymentInfo.payments[*]"]


def test_iter_product_projections_passes_staged() -> None:
    api, seen = paged_store([])
    with api.client() as client:
        list(client.iter_product_projections(staged=True))
    assert seen[0]["staged"] == ["true"]


# --- updates -----------------------------------------------------------------------------------


def versioned_resource(start_version: int = 1) -> tuple[FakeApi, list[dict[str, Any]]]:
    """A resource whose version goes up by one per accepted update; records POST bodies."""
    state = {"version": start_version}
    posts: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return ok({"id": "e1", "version": state["version"]})
        payload = body(request)
        posts.append(payload)
        if payload["version"] != state["version"]:
            return error(
                409,
                "ConcurrentModification",
                f"Object e1 has a different version than expected. Expected: {payload['version']} - Actual: {state['version']}.",
                currentVersion=state["version"],
            )
        if len(payload["actions"]) > 500:
            return error(
                413,
                "InvalidInput",
                f"The update actions count of {len(payload['actions'])} exceeds the limit of 500.",
            )
        state["version"] += 1
        return ok({"id": "e1", "version": state["version"]})

    return FakeApi(handler=handler), posts


def test_1200_actions_go_in_three_requests_each_with_the_previous_version() -> None:
    api, posts = versioned_resource(start_version=4)
    actions = [{"action": "setKey", "key": f"k{n}"} for n in range(1200)]
    with api.client() as client:
        result = client.update("inventory", "e1", 4, actions)
    assert [len(p["actions"]) for p in posts] == [500, 500, 200]
    assert [p["version"] for p in posts] == [4, 5, 6]
    assert [a for p in posts for a in p["actions"]] == actions  # order kept
    assert result["version"] == 7
    assert all(project_path(r) == "inventory/e1" for r in api.api_requests)


def test_409_rereads_and_reapplies_rebuilt_actions() -> None:
    api, posts = versioned_resource(start_version=9)
    rebuilt_from: list[dict[str, Any]] = []

    def rebuild(fresh: dict[str, Any]) -> list[dict[str, Any]]:
        rebuilt_from.append(fresh)
        return [{"action": "changeQuantity", "quantity": 40}]

    with api.client() as client:
        result = client.update(
            "inventory", "e1", 7, [{"action": "changeQuantity", "quantity": 41}], reread=rebuild
        )
    assert rebuilt_from == [{"id": "e1", "version": 9}]
    assert [(p["version"], p["actions"]) for p in posts] == [
        (7, [{"action": "changeQuantity", "quantity": 41}]),
        (9, [{"action": "changeQuantity", "quantity": 40}]),
    ]
    assert result["version"] == 10
    assert [r.method for r in api.api_requests] == ["POST", "GET", "POST"]


def test_409_default_rebuild_resends_remaining_actions_with_fresh_version() -> None:
    api, posts = versioned_resource(start_version=3)
    with api.client() as client:
        result = client.update("inventory", "e1", 2, [{"action": "changeQuantity", "quantity": 5}])
    assert [p["version"] for p in posts] == [2, 3]
    assert result["version"] == 4


def test_409_with_nothing_left_to_do_returns_fresh_resource() -> None:
    api, posts = versioned_resource(start_version=5)
    with api.client() as client:
        result = client.update(
            "inventory",
            "e1",
            1,
            [{"action": "changeQuantity", "quantity": 5}],
            reread=lambda fresh: [],
        )
    assert result == {"id": "e1", "version": 5}
    assert len(posts) == 1


def test_409_is_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return ok({"id": "e1", "version": 1})
        return error(409, "ConcurrentModification", "changed", currentVersion=99)

    api = FakeApi(handler=handler)
    with (
        api.client(conflict_retries=2) as client,
        pytest.raises(ConcurrentModificationError) as caught,
    ):
        client.update("inventory", "e1", 1, [{"action": "changeQuantity", "quantity": 5}])
    assert caught.value.current_version == 99
    assert [r.method for r in api.api_requests] == ["POST", "GET", "POST", "GET", "POST"]


def test_409_in_a_later_chunk_resends_only_what_is_left() -> None:
    state = {"version": 1, "posts": 0}
    posts: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return ok({"id": "e1", "version": state["version"]})
        payload = body(request)
        posts.append(payload)
        state["posts"] += 1
        if state["posts"] == 2:  # someone else writes between our first and second chunk
            state["version"] += 1
        if payload["version"] != state["version"]:
            return error(409, "ConcurrentModification", "changed", currentVersion=state["version"])
        state["version"] += 1
        return ok({"id": "e1", "version": state["version"]})

    actions = [{"action": "setKey", "key": f"k{n}"} for n in range(700)]
    with FakeApi(handler=handler).client() as client:
        client.update("inventory", "e1", 1, actions)
    assert [(p["version"], len(p["actions"])) for p in posts] == [(1, 500), (2, 200), (3, 200)]
    assert posts[2]["actions"] == actions[500:]


def test_delete_sends_version_as_query_parameter() -> None:
    api = FakeApi(handler=lambda r: ok({"id": "e 1", "version": 3}))
    with api.client() as client:
        client.delete("inventory", "e 1", 3)
    request = api.api_requests[0]
    assert request.method == "DELETE"
    assert request.url.raw_path == f"/{PROJECT}/inventory/e%201?version=3".encode()


# --- secrets -----------------------------------------------------------------------------------


def test_secret_and_tokens_never_in_logs_reprs_or_exceptions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={})
        # A misbehaving proxy echoing the request's credentials back.
        return error(400, "InvalidInput", f"bad request with {request.headers['Authorization']}")

    api = FakeApi(handler=handler)
    texts: list[str] = []
    with api.client() as client:
        api.rejected_tokens.add("token-1-Hq2Vb9Xy")  # the first token gets a 401, forcing a renewal
        with pytest.raises(BadRequestError) as caught:
            client.get("orders")
        texts += [
            str(caught.value),
            repr(caught.value),
            str(caught.value.errors),
            repr(client),
            repr(client.settings),
        ]
        texts += [
            str(client.settings),
            repr(client._auth),
            repr(client._auth._token),
            str(client.settings.model_dump()),
        ]
    texts.append(caplog.text)
    texts += [str(record.args) for record in caplog.records]
    assert api.issued, "the test must have issued tokens"
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    for text in texts:
        assert CLIENT_SECRET not in text
        assert basic not in text
        for token in api.issued:
            assert token not in text
    assert "***" in str(caught.value)
    assert len(api.issued) == 2
    assert "httpx" in {
        record.name for record in caplog.records
    }  # httpx's own request log was captured


def test_settings_error_names_missing_variables_without_values() -> None:
    from ct_pipelines.commercetools import CommercetoolsSettings

    with pytest.raises(ValueError) as caught:
        CommercetoolsSettings.from_env({"CTP_CLIENT_SECRET": CLIENT_SECRET})
    assert "CTP_PROJECT_KEY" in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)


# --- garbage collector around page decoding --------------------------------------------------


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_gc_pause_moves_the_page_to_the_oldest_generation_unscanned() -> None:
    assert gc.isenabled() and not gc.get_freeze_count()
    with _gc_paused():
        assert not gc.isenabled()
        page = [{"n": [i]} for i in range(5_000)]  # tracked containers, like decoded models
    assert gc.isenabled()
    assert gc.get_count()[0] == 0  # no young collection is due over the page
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(doc) in oldest for doc in page)
    assert gc.get_freeze_count() == 0  # nothing left frozen


def test_gc_pause_first_collects_the_young_cyclic_garbage_it_would_otherwise_carry_on() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # a cycle: reference counting alone cannot free it
    with _gc_paused():
        assert gone() is None


def test_gc_pause_leaves_frozen_objects_frozen() -> None:
    kept = [[i] for i in range(100)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with _gc_paused():
            page = [[i] for i in range(1_000)]
        assert gc.get_freeze_count() == frozen  # not thawed by the pause
        assert gc.isenabled() and len(page) == 1_000 and kept
    finally:
        gc.unfreeze()


def test_gc_pause_keeps_a_disabled_collector_disabled_and_promotes_nothing() -> None:
    gc.disable()
    try:
        with _gc_paused():
            page = [[i] for i in range(1_000)]
        assert not gc.isenabled()
        young = {id(o) for o in gc.get_objects(generation=0)}
        assert all(id(doc) in young for doc in page)  # left to the caller's own collections
    finally:
        gc.enable()
