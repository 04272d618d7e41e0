"""The client against the commercetools sandbox app: the API rules enforced, not mocked away.

Paging past the 10,000 offset cap, riding out injected 429/503, a real 409 from a concurrent
writer, 1,200 actions in three requests, and token expiry, all through the sandbox's own
transport, with the sandbox's request log as the witness.
"""

from __future__ import annotations

import json
import logging
import random
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from ct_pipelines.commercetools import CommercetoolsClient, CommercetoolsSettings
from ct_pipelines.commercetools.models import OrderState
from ct_pipelines.lib.retry import RetryPolicy
from ct_sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_CT_URL,
    SANDBOX_PROJECT_KEY,
)
from ct_sandbox.commercetools import CommercetoolsSandboxApp
from ct_sandbox.documents import DocumentStore
from ct_sandbox.faults import FaultConfig, RequestRecord, request_log, save_faults
from ct_sandbox.transport import sandbox_transport

PROJECT = SANDBOX_PROJECT_KEY
START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def sandbox_settings() -> CommercetoolsSettings:
    return CommercetoolsSettings(
        project_key=PROJECT,
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SecretStr(SANDBOX_CLIENT_SECRET),
        auth_url=SANDBOX_CT_URL,
        api_url=SANDBOX_CT_URL,
        scopes=[
            f"manage_orders:{PROJECT}",
            f"manage_products:{PROJECT}",
            f"manage_channels:{PROJECT}",
        ],
    )


@dataclass
class Recorder(httpx.BaseTransport):
    """Wraps the sandbox transport to keep what the request log does not: query strings,
    update bodies and the tokens handed out (so tests can prove those never leak)."""

    inner: httpx.BaseTransport
    requests: list[httpx.Request] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if request.url.path == "/oauth/token":
            response.read()
            if response.status_code == 200:
                self.tokens.append(json.loads(response.content)["access_token"])
        return response

    def posts_to(self, path: str) -> list[dict[str, Any]]:
        return [
            json.loads(r.content)
            for r in self.requests
            if r.method == "POST" and r.url.path == path
        ]


@dataclass
class Sandbox:
    db_path: Path
    app: CommercetoolsSandboxApp
    now: list[float]  # seconds since START, shared by the sandbox clock and the client clock

    def client(self, recorder: Recorder | None = None, **kwargs: Any) -> CommercetoolsClient:
        kwargs.setdefault("retry", RetryPolicy(base_delay=0.0))
        kwargs.setdefault("sleep", lambda _: None)
        kwargs.setdefault("clock", lambda: self.now[0])
        transport = recorder if recorder is not None else sandbox_transport(self.app)
        return CommercetoolsClient(sandbox_settings(), transport=transport, **kwargs)

    def recorder(self) -> Recorder:
        return Recorder(sandbox_transport(self.app))

    def log(self) -> list[RequestRecord]:
        return request_log(self.db_path, "commercetools")

    def api_log(self) -> list[tuple[str, str, int | None]]:
        """(method, path below the project, status) of every request, token requests as 'oauth'."""
        rows = []
        for record in self.log():
            path = (
                record.path.removeprefix(f"/{PROJECT}/")
                if record.path != "/oauth/token"
                else "oauth"
            )
            rows.append((record.method, path, record.status))
        return rows


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    now = [0.0]
    app = CommercetoolsSandboxApp(
        tmp_path / "world.db",
        PROJECT,
        token_ttl_seconds=3600,
        clock=lambda: START + timedelta(seconds=now[0]),
    )
    return Sandbox(tmp_path / "world.db", app, now)


def bulk_orders(count: int, *, seed: int = 7) -> Iterator[dict[str, Any]]:
    """Minimal valid orders with random v4 ids, so id order differs from insertion order.

    Kept small on purpose: paging cost grows with document size, and these tests are about paging.
    """
    rng = random.Random(seed)
    for n in range(count):
        cents = 500 + n % 9500
        money = {
            "type": "centPrecision",
            "currencyCode": "GBP",
            "centAmount": cents,
            "fractionDigits": 2,
        }
        created = (START + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        yield {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "version": 1,
            "createdAt": created,
            "lastModifiedAt": created,
            "orderNumber": f"UK-{n:06d}",
            "orderState": "Open",
            "paymentState": "Paid",
            "totalPrice": money,
            "lineItems": [],
            "customLineItems": [],
        }


def create_entry(
    client: CommercetoolsClient, sku: str = "TEE-001", quantity: int = 10
) -> dict[str, Any]:
    channel = client.create("channels", {"key": f"wh-{sku.lower()}", "roles": ["InventorySupply"]})
    return client.create(
        "inventory",
        {
            "sku": sku,
            "quantityOnStock": quantity,
            "supplyChannel": {"typeId": "channel", "id": channel["id"]},
        },
    )


# --- paging ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pages_25000_orders_past_the_offset_cap_each_once_with_flat_memory(
    sandbox: Sandbox,
) -> None:
    total, page_size = 25_000, 500
    orders = list(bulk_orders(total))
    DocumentStore(sandbox.db_path).insert_many("orders", orders)
    # Built before tracing starts: lets the test count sightings in a 25 kB bytearray instead
    # of a set of ids that would outweigh the one page the client is supposed to hold.
    index_of = {order["id"]: n for n, order in enumerate(orders)}
    del orders
    recorder = sandbox.recorder()
    with sandbox.client(recorder) as client:
        # Offset paging cannot get there: the API refuses offsets beyond 10,000.
        with pytest.raises(ValueError):
            client.query("orders", offset=10_500, limit=page_size)

        sightings = bytearray(total)
        tracemalloc.start()
        try:
            # What holding the whole result set would cost: one page's documents, times 50.
            baseline = tracemalloc.get_traced_memory()[0]
            one_page = client.query("orders", sort="id asc", limit=page_size)["results"]
            materialised = (tracemalloc.get_traced_memory()[0] - baseline) * (total // page_size)
            del one_page

            tracemalloc.reset_peak()
            baseline = tracemalloc.get_traced_memory()[0]
            for doc in client.query_all(
                "orders", where="orderState = :state", variables={"state": "Open"}
            ):
                sightings[index_of[doc["id"]]] += 1
            streaming_peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()

    assert sightings == bytearray([1]) * total  # every order exactly once
    # One page in memory at a time: the peak while streaming 25,000 orders (the page, its raw
    # response on both sides of the in-process transport, the next page arriving) stays under
    # ten pages' worth of the fifty that materialising the result set takes.
    assert streaming_peak < materialised / 5, (streaming_peak, materialised)

    streamed = [r for r in recorder.requests if r.url.path == f"/{PROJECT}/orders"][1:]
    assert len(streamed) == 51  # 50 full pages and the empty page that ends the stream
    assert all("offset" not in r.url.params for r in streamed)
    assert all(
        r.url.params["withTotal"] == "false" and r.url.params["sort"] == "id asc" for r in streamed
    )
    assert all(r.url.params["limit"] == "500" for r in streamed)
    assert streamed[0].url.params.get_list("where") == ["orderState = :state"]
    assert streamed[-1].url.params.get_list("where") == ["orderState = :state", "id > :lastId"]
    assert all(status == 200 for _, _, status in sandbox.api_log())


def test_query_all_combines_caller_predicates_with_the_cursor(sandbox: Sandbox) -> None:
    DocumentStore(sandbox.db_path).insert_many("orders", bulk_orders(1_234))
    with sandbox.client() as client:
        window = list(
            client.iter_orders(
                where=["createdAt >= :from", "createdAt < :to"],
                variables={"from": "2024-05-01T09:05:00.000Z", "to": "2024-05-01T09:15:00.000Z"},
                page_size=100,
            )
        )
    # Orders are one second apart: 600 in the ten-minute window, across seven pages.
    assert len(window) == 600
    assert len({o.id for o in window}) == 600
    assert [o.id for o in window] == sorted(o.id for o in window)
    assert {o.order_number for o in window} == {f"UK-{n:06d}" for n in range(300, 900)}
    assert all(o.order_state is OrderState.OPEN and o.taxed_price is None for o in window)


# --- retries -----------------------------------------------------------------------------------


def test_rides_out_injected_429_and_503_honouring_retry_after(sandbox: Sandbox) -> None:
    DocumentStore(sandbox.db_path).insert_many("orders", bulk_orders(30))
    save_faults(
        sandbox.db_path,
        "commercetools",
        FaultConfig(rate_429=0.5, rate_503=0.5, retry_after_seconds=3, max_faults=4, seed=11),
    )
    sleeps: list[float] = []
    with sandbox.client(
        sleep=sleeps.append, retry=RetryPolicy(max_attempts=6, base_delay=30.0)
    ) as client:
        orders = list(client.iter_orders(page_size=20))
    assert len(orders) == 30
    statuses = [status for _, _, status in sandbox.api_log()]
    assert sorted(set(statuses)) == [200, 429, 503]
    assert statuses.count(429) + statuses.count(503) == 4
    assert sleeps == [3.0] * 4  # the server's Retry-After, not the 30 s backoff


def test_gives_up_with_a_typed_error_when_faults_persist(sandbox: Sandbox) -> None:
    from ct_pipelines.commercetools import ServiceUnavailableError

    save_faults(sandbox.db_path, "commercetools", FaultConfig(rate_503=1.0, retry_after_seconds=0))
    client = sandbox.client(retry=RetryPolicy(max_attempts=3, base_delay=0))
    with client, pytest.raises(ServiceUnavailableError) as caught:
        client.get("orders")
    assert caught.value.codes == ["OverCapacity"]
    assert [status for _, _, status in sandbox.api_log()] == [200, 503, 503, 503]


def test_injected_timeouts_are_retried(sandbox: Sandbox) -> None:
    save_faults(
        sandbox.db_path,
        "commercetools",
        FaultConfig(rate_read_timeout=0.5, rate_connect_timeout=0.5, max_faults=2),
    )
    with sandbox.client() as client:
        assert client.query("orders", limit=1)["results"] == []
    assert [r.fault for r in sandbox.log() if r.fault] == [
        r.fault for r in sandbox.log() if r.status is None
    ]
    assert len([r for r in sandbox.log() if r.status is None]) == 2


# --- version conflicts and chunked updates -----------------------------------------------------


def test_reapplies_after_a_real_409_from_a_concurrent_writer(sandbox: Sandbox) -> None:
    with sandbox.client() as ours, sandbox.client() as theirs:
        entry = create_entry(ours, quantity=10)
        # Someone else sells five between our read and our write.
        theirs.update(
            "inventory",
            entry["id"],
            entry["version"],
            [{"action": "removeQuantity", "quantity": 5}],
        )

        target = 100
        rebuilt_from: list[int] = []

        def rebuild(fresh: dict[str, Any]) -> list[dict[str, Any]]:
            # addQuantity is relative: recompute it from the stock we now see.
            rebuilt_from.append(fresh["quantityOnStock"])
            return [{"action": "addQuantity", "quantity": target - fresh["quantityOnStock"]}]

        sandbox_log_start = len(sandbox.log())
        result = ours.update(
            "inventory",
            entry["id"],
            entry["version"],
            [{"action": "addQuantity", "quantity": target - entry["quantityOnStock"]}],
            reread=rebuild,
        )
    assert rebuilt_from == [5]
    assert result["quantityOnStock"] == target
    assert result["version"] == entry["version"] + 2
    assert sandbox.api_log()[sandbox_log_start:] == [
        ("POST", f"inventory/{entry['id']}", 409),
        ("GET", f"inventory/{entry['id']}", 200),
        ("POST", f"inventory/{entry['id']}", 200),
    ]


def test_injected_409_is_reapplied_with_default_rebuild_for_absolute_setters(
    sandbox: Sandbox,
) -> None:
    with sandbox.client() as client:
        entry = create_entry(client, quantity=10)
        save_faults(sandbox.db_path, "commercetools", FaultConfig(rate_409=1.0, max_faults=2))
        result = client.update(
            "inventory",
            entry["id"],
            entry["version"],
            [{"action": "changeQuantity", "quantity": 42}],
        )
    assert result["quantityOnStock"] == 42
    statuses = [status for method, _, status in sandbox.api_log() if method == "POST"][-3:]
    assert statuses == [409, 409, 200]


def test_1200_inventory_actions_go_in_three_requests(sandbox: Sandbox) -> None:
    recorder = sandbox.recorder()
    with sandbox.client(recorder) as client:
        entry = create_entry(client, quantity=0)
        actions = [{"action": "addQuantity", "quantity": 1} for _ in range(1_200)]
        result = client.update("inventory", entry["id"], entry["version"], actions)
        stored = client.get(f"inventory/{entry['id']}")
    path = f"/{PROJECT}/inventory/{entry['id']}"
    assert [
        (r.method, r.status) for r in sandbox.log() if r.path == path and r.method == "POST"
    ] == [("POST", 200)] * 3
    bodies = recorder.posts_to(path)
    assert [len(b["actions"]) for b in bodies] == [500, 500, 200]
    assert [b["version"] for b in bodies] == [
        entry["version"],
        entry["version"] + 1,
        entry["version"] + 2,
    ]
    assert result["quantityOnStock"] == stored["quantityOnStock"] == 1_200
    assert 413 not in [r.status for r in sandbox.log()]


def test_1200_product_actions_go_in_three_requests(sandbox: Sandbox) -> None:
    recorder = sandbox.recorder()
    with sandbox.client(recorder) as client:
        product = client.create(
            "products",
            {
                "productType": {"typeId": "product-type", "key": "apparel"},
                "name": {"en-GB": "Tee"},
                "slug": {"en-GB": "tee"},
                "masterVariant": {"sku": "TEE-MASTER", "attributes": []},
            },
        )
        actions = [
            {
                "action": "setAttributeInAllVariants",
                "name": "batch",
                "value": f"v{n}",
                "staged": False,
            }
            for n in range(1_200)
        ]
        result = client.update("products", product["id"], product["version"], actions)
    bodies = recorder.posts_to(f"/{PROJECT}/products/{product['id']}")
    assert [len(b["actions"]) for b in bodies] == [500, 500, 200]
    assert [b["version"] for b in bodies] == [product["version"] + n for n in range(3)]
    current = result["masterData"]["current"]["masterVariant"]["attributes"]
    assert {"name": "batch", "value": "v1199"} in current


# --- tokens ------------------------------------------------------------------------------------


def test_token_renewed_before_it_expires_without_a_single_401(sandbox: Sandbox) -> None:
    with sandbox.client(renew_margin=300) as client:
        client.get("orders")
        sandbox.now[0] += 3600 - 300  # both clocks move: the token has 5 minutes left
        client.get("orders")
        sandbox.now[0] += 3600 - 300
        client.get("orders")
    assert sandbox.api_log() == [
        ("POST", "oauth", 200),
        ("GET", "orders", 200),
        ("POST", "oauth", 200),
        ("GET", "orders", 200),
        ("POST", "oauth", 200),
        ("GET", "orders", 200),
    ]


def test_expired_token_renewed_once_on_401(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        client.get("orders")
        sandbox.app.expire_tokens()  # revoked behind the client's back
        client.get("orders")
        assert client.token_fetch_count == 2
    assert sandbox.api_log() == [
        ("POST", "oauth", 200),
        ("GET", "orders", 200),
        ("GET", "orders", 401),
        ("POST", "oauth", 200),
        ("GET", "orders", 200),
    ]


def test_wrong_secret_is_an_auth_error_that_does_not_repeat_the_secret(sandbox: Sandbox) -> None:
    from ct_pipelines.commercetools import AuthError
    from ct_sandbox.commercetools import register_api_client

    register_api_client(
        sandbox.db_path, SANDBOX_CLIENT_ID, "the-real-one", [f"manage_project:{PROJECT}"]
    )
    with sandbox.client() as client, pytest.raises(AuthError) as caught:
        client.get("orders")
    assert caught.value.codes == ["invalid_client"]
    assert SANDBOX_CLIENT_SECRET not in str(caught.value)


def test_no_secret_or_token_in_logs_or_errors(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    from ct_pipelines.commercetools import CommercetoolsError

    caplog.set_level(logging.DEBUG)
    recorder = sandbox.recorder()
    errors: list[str] = []
    save_faults(
        sandbox.db_path,
        "commercetools",
        FaultConfig(rate_503=1.0, retry_after_seconds=0, max_faults=2),
    )
    with sandbox.client(recorder) as client:
        entry = create_entry(client)
        sandbox.app.expire_tokens()
        try:
            client.update("inventory", entry["id"], entry["version"], [{"action": "noSuchAction"}])
        except CommercetoolsError as exc:
            errors += [str(exc), repr(exc), str(exc.errors)]
        errors.append(repr(client))
    assert len(recorder.tokens) == 2 and errors
    basic = httpx.BasicAuth(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET)
    basic_header = next(basic.auth_flow(httpx.Request("GET", "http://x"))).headers["Authorization"]
    for text in [caplog.text, *errors]:
        assert SANDBOX_CLIENT_SECRET not in text
        assert basic_header.removeprefix("Basic ") not in text
        for token in recorder.tokens:
            assert token not in text
