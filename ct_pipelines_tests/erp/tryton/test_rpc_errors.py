"""What an operator reads when Tryton cannot be reached or refuses us: the host and the setting
to check, never the password or the session (no trytond needed: httpx's MockTransport)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from ct_pipelines.erp.errors import (
    ErpAuthError,
    ErpError,
    ErpNotFoundError,
    ErpTransientError,
    ErpValidationError,
)
from ct_pipelines.erp.tryton.rpc import READ_RETRY, TrytonRpc

PASSWORD = "s3cret-Pa55word"
SESSION = "0123456789abcdef-session-token"
URL = "http://tryton.example.invalid:8123"


def _rpc(handler: Callable[[httpx.Request], httpx.Response], url: str = URL) -> TrytonRpc:
    return TrytonRpc(
        url,
        "shop",
        "ops",
        SecretStr(PASSWORD),
        transport=httpx.MockTransport(handler),
        sleep=lambda _s: None,
    )


def _logged_in(
    then: Callable[[httpx.Request, str], httpx.Response],
) -> Callable[..., httpx.Response]:
    """A server that logs ``ops`` in, then answers every other call with ``then``."""

    def handle(request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        if method == "common.db.login":
            return httpx.Response(200, json={"id": 1, "result": [7, SESSION, None]})
        if method == "model.res.user.get_preferences":
            return httpx.Response(200, json={"id": 2, "result": {"language": "en"}})
        return then(request, method)

    return handle


def _assert_clean(error: ErpError) -> str:
    message = str(error)
    token = base64.b64encode(f"ops:7:{SESSION}".encode()).decode()
    for secret in (PASSWORD, SESSION, token):
        assert secret not in message
    return message


def test_connection_refused_names_the_host_and_the_url_variable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(ErpTransientError) as raised:
        _rpc(refuse).search_read("sale.sale", [], ["id"])
    message = _assert_clean(raised.value)
    assert "tryton.example.invalid:8123" in message
    assert "CT_PIPELINES_TRYTON_URL" in message
    assert f"after {READ_RETRY.max_attempts} attempts" in message


def test_a_timeout_names_the_host_and_the_url_variable() -> None:
    def slow(request: httpx.Request, method: str) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ErpTransientError) as raised:
        _rpc(_logged_in(slow)).model("sale.sale", "quote", [1])
    message = _assert_clean(raised.value)
    assert "no answer from tryton.example.invalid:8123 in time" in message
    assert "CT_PIPELINES_TRYTON_URL" in message
    # Writes are not replayed (a lost answer could hide an applied write).
    assert "after 1 attempt:" in message


def test_a_refused_login_names_host_database_user_and_credential_variables() -> None:
    def refuse_login(request: httpx.Request) -> httpx.Response:
        # trytond answers a wrong password with 401 and no body worth showing.
        return httpx.Response(401, text=f"Unauthorized {request.content.decode()}")

    with pytest.raises(ErpAuthError) as raised:
        _rpc(refuse_login).search_read("sale.sale", [], ["id"])
    message = _assert_clean(raised.value)
    assert "tryton.example.invalid:8123" in message and "'shop'" in message
    assert "refused the login of user 'ops'" in message
    assert "CT_PIPELINES_TRYTON_USER" in message and "CT_PIPELINES_TRYTON_PASSWORD" in message


def test_a_session_refused_twice_is_an_auth_error_naming_the_credentials() -> None:
    def forbid(request: httpx.Request, method: str) -> httpx.Response:
        return httpx.Response(403)

    with pytest.raises(ErpAuthError) as raised:
        _rpc(_logged_in(forbid)).search_read("sale.sale", [], ["id"])
    message = _assert_clean(raised.value)
    assert "refused the session of user 'ops'" in message
    assert "CT_PIPELINES_TRYTON_PASSWORD" in message


def test_an_unknown_database_names_the_database_variable() -> None:
    def no_database(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    with pytest.raises(ErpNotFoundError) as raised:
        _rpc(no_database).search_read("sale.sale", [], ["id"])
    message = _assert_clean(raised.value)
    assert "has no database 'shop'" in message
    assert "CT_PIPELINES_TRYTON_DATABASE" in message and "tryton.example.invalid" in message


def test_a_server_echoing_the_request_does_not_leak_the_password() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        # A proxy that quotes the request body (the login parameters hold the password).
        return httpx.Response(400, text=f"bad request: {request.content.decode()}")

    with pytest.raises(ErpValidationError) as raised:
        _rpc(echo).search_read("sale.sale", [], ["id"])
    message = _assert_clean(raised.value)
    assert "bad request" in message and "***" in message


def test_user_info_in_the_url_stays_out_of_messages() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    rpc = _rpc(refuse, url=f"http://ops:{PASSWORD}@tryton.example.invalid:8123")
    with pytest.raises(ErpTransientError) as raised:
        rpc.search_read("sale.sale", [], ["id"])
    message = _assert_clean(raised.value)
    assert "tryton.example.invalid:8123" in message
    assert PASSWORD not in repr(rpc)
