"""Transport-level faults (timeouts) and the threaded local HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ct_sandbox.commercetools import CommercetoolsSandboxApp
from ct_sandbox.faults import FaultConfig, load_faults, request_log, save_faults
from ct_sandbox.transport import sandbox_transport, start_server

PROJECT = "test-shop"
NOW = "2026-03-01T09:00:00.000Z"


@pytest.fixture
def world(tmp_path: Path) -> Path:
    return tmp_path / "world.db"


@pytest.fixture
def app(world: Path) -> CommercetoolsSandboxApp:
    app = CommercetoolsSandboxApp(world, PROJECT)
    app.store.insert_many(
        "inventory",
        [
            {
                "id": "i1",
                "version": 1,
                "createdAt": NOW,
                "lastModifiedAt": NOW,
                "sku": "TEA-1",
                "quantityOnStock": 5,
                "availableQuantity": 5,
            }
        ],
    )
    return app


def _authorise(client: httpx.Client) -> httpx.Client:
    response = client.post(
        "/oauth/token",
        auth=("client", "secret"),
        data={"grant_type": "client_credentials", "scope": f"manage_products:{PROJECT}"},
    )
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return client


@pytest.fixture
def client(app: CommercetoolsSandboxApp) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=sandbox_transport(app), base_url="http://commercetools.sandbox"
    ) as c:
        yield _authorise(c)


def _change(client: httpx.Client, version: int, quantity: int) -> httpx.Response:
    return client.post(
        f"/{PROJECT}/inventory/i1",
        json={"version": version, "actions": [{"action": "changeQuantity", "quantity": quantity}]},
    )


def test_connect_timeout_never_reaches_the_app(
    client: httpx.Client, app: CommercetoolsSandboxApp, world: Path
) -> None:
    save_faults(world, "commercetools", FaultConfig(rate_connect_timeout=1.0, max_faults=1))
    with pytest.raises(httpx.ConnectTimeout):
        _change(client, 1, 9)
    assert app.store.get("inventory", "i1")["version"] == 1  # type: ignore[index]
    last = request_log(world, "commercetools")[-1]
    assert (last.method, last.status, last.fault) == ("POST", None, "ConnectTimeout")
    # The budget of one fault is spent: the retry goes through.
    assert _change(client, 1, 9).status_code == 200


def test_read_timeout_before_the_write(
    client: httpx.Client, app: CommercetoolsSandboxApp, world: Path
) -> None:
    save_faults(world, "commercetools", FaultConfig(rate_read_timeout=1.0))
    with pytest.raises(httpx.ReadTimeout):
        _change(client, 1, 9)
    assert app.store.get("inventory", "i1")["quantityOnStock"] == 5  # type: ignore[index]


def test_read_timeout_after_the_write_was_applied(
    client: httpx.Client, app: CommercetoolsSandboxApp, world: Path
) -> None:
    save_faults(
        world,
        "commercetools",
        FaultConfig(rate_read_timeout=1.0, timeout_after_write=True, max_faults=1),
    )
    with pytest.raises(httpx.ReadTimeout):
        _change(client, 1, 9)
    entry = app.store.get("inventory", "i1")
    assert entry is not None
    assert (entry["quantityOnStock"], entry["version"]) == (9, 2)
    last = request_log(world, "commercetools")[-1]
    assert (last.status, last.fault) == (200, "ReadTimeoutAfterWrite")
    # A blind retry with the old version now meets the 409 a real client must handle.
    assert _change(client, 1, 9).status_code == 409


def test_reads_time_out_before_the_app_even_with_timeout_after_write(
    client: httpx.Client, world: Path
) -> None:
    save_faults(
        world, "commercetools", FaultConfig(rate_read_timeout=1.0, timeout_after_write=True)
    )
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"/{PROJECT}/inventory")
    assert request_log(world, "commercetools")[-1].status is None


def test_token_endpoint_and_other_paths_can_be_spared(
    app: CommercetoolsSandboxApp, world: Path
) -> None:
    save_faults(
        world, "commercetools", FaultConfig(rate_read_timeout=1.0, path_pattern="/inventory/")
    )
    with httpx.Client(
        transport=sandbox_transport(app), base_url="http://commercetools.sandbox"
    ) as client:
        _authorise(client)  # auth is exempt unless include_auth
        assert client.get(f"/{PROJECT}/inventory").status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"/{PROJECT}/inventory/i1")
    save_faults(world, "commercetools", FaultConfig(rate_connect_timeout=1.0, include_auth=True))
    with (
        httpx.Client(transport=sandbox_transport(app), base_url="http://x") as client,
        pytest.raises(httpx.ConnectTimeout),
    ):
        _authorise(client)


def test_seeded_timeouts_repeat(client: httpx.Client, world: Path) -> None:
    def run() -> list[str]:
        save_faults(
            world,
            "commercetools",
            FaultConfig(rate_read_timeout=0.3, rate_connect_timeout=0.2, seed=7),
        )
        outcomes = []
        for _ in range(25):
            try:
                client.get(f"/{PROJECT}/inventory")
                outcomes.append("ok")
            except httpx.TimeoutException as error:
                outcomes.append(type(error).__name__)
        return outcomes

    first = run()
    assert first == run()
    assert {"ok", "ReadTimeout", "ConnectTimeout"} == set(first)


def test_fault_config_validation_and_round_trip(world: Path) -> None:
    with pytest.raises(ValueError):
        FaultConfig(rate_429=0.6, rate_503=0.6)
    with pytest.raises(ValueError):
        FaultConfig(rate_502=1.5)
    with pytest.raises(ValueError):
        FaultConfig(path_pattern="(")
    with pytest.raises(ValueError, match="unknown sandbox side"):
        load_faults(world, "shopify")
    config = FaultConfig(rate_504=0.1, seed=3, latency_ms=5)
    save_faults(world, "erp", config)
    assert load_faults(world, "erp") == config
    assert load_faults(world, "commercetools") == FaultConfig()


def test_threaded_http_server(app: CommercetoolsSandboxApp) -> None:
    calls: list[str] = []

    def erp(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok":true}']

    with start_server(app, erp) as server:
        statuses: list[int] = []
        lock = threading.Lock()

        def work() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                _authorise(http)
                for quantity in range(5):
                    version = http.get(f"/{PROJECT}/inventory/i1").json()["version"]
                    response = _change(http, version, quantity)
                    with lock:
                        statuses.append(response.status_code)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/erp/items").json() == {"ok": True}
            assert http.get(f"/{PROJECT}/inventory").status_code == 401
    assert len(statuses) == 20
    assert set(statuses) <= {200, 409}
    assert 200 in statuses
    assert calls == ["/erp/items"]


def _read_response(stream: Any) -> tuple[bytes, dict[str, str], bytes]:
    status = stream.readline()
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, stream.read(int(headers.get("content-length", "0")))


def test_http_server_keeps_connections_open(app: CommercetoolsSandboxApp) -> None:
    import socket

    def erp(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"got":' + str(len(body)).encode() + b"}"]

    with start_server(app, erp) as server:
        host, port = server.server.server_address[:2]
        with socket.create_connection((str(host), int(port)), timeout=10) as sock:
            stream = sock.makefile("rb")
            # Two requests on one connection: the second is answered on it too, and a body the
            # first sent does not leak into the second.
            sock.sendall(
                b"PUT /erp/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
                b"GET /erp/y HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            first = _read_response(stream)
            second = _read_response(stream)
            assert first[0].startswith(b"HTTP/1.1 200") and first[2] == b'{"got":5}'
            assert second[0].startswith(b"HTTP/1.1 200") and second[2] == b'{"got":0}'
            # "Connection: close" is honoured: the server ends the connection after answering.
            sock.sendall(b"GET /erp/z HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            third = _read_response(stream)
            assert third[2] == b'{"got":0}'
            assert stream.read() == b""
