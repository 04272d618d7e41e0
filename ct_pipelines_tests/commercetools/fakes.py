"""A scripted commercetools stand-in on ``httpx.MockTransport`` for the client's unit tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from ct_pipelines.commercetools import CommercetoolsClient, CommercetoolsSettings
from ct_pipelines.lib.retry import RetryPolicy

PROJECT = "test-shop"
AUTH_URL = "https://auth.europe-west1.gcp.commercetools.com"
API_URL = "https://api.europe-west1.gcp.commercetools.com"
CLIENT_ID = "integration-client"
# Looks like a real secret so a leak would be recognisable in any output.
CLIENT_SECRET = "s3cr3t-Zq8xW1vB7nM4kL0pR2tY6uI9oP"

Handler = Callable[[httpx.Request], httpx.Response]


def settings(**overrides: Any) -> CommercetoolsSettings:
    values: dict[str, Any] = {
        "project_key": PROJECT,
        "client_id": CLIENT_ID,
        "client_secret": SecretStr(CLIENT_SECRET),
        "auth_url": AUTH_URL,
        "api_url": API_URL,
        "scopes": [f"manage_orders:{PROJECT}", f"manage_products:{PROJECT}"],
    }
    values.update(overrides)
    return CommercetoolsSettings(**values)


def error(status: int, code: str, message: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "statusCode": status,
            "message": message,
            "errors": [{"code": code, "message": message, **extra}],
        },
    )


@dataclass
class FakeApi:
    """Issues tokens ``token-1``, ``token-2`` ... and routes API calls to ``handler``.

    ``rejected_tokens`` answer 401 invalid_token; every request is recorded.
    """

    handler: Handler = field(default=lambda request: httpx.Response(200, json={}))
    token_lifetime: int = 3600
    rejected_tokens: set[str] = field(default_factory=set)
    token_requests: list[httpx.Request] = field(default_factory=list)
    api_requests: list[httpx.Request] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.token_requests.append(request)
            token = f"token-{len(self.issued) + 1}-Hq2Vb9Xy"
            self.issued.append(token)
            return httpx.Response(
                200,
                json={
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime,
                    "scope": f"manage_orders:{PROJECT}",
                },
            )
        self.api_requests.append(request)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued or bearer in self.rejected_tokens:
            return httpx.Response(
                401,
                json={
                    "statusCode": 401,
                    "message": "invalid_token",
                    "errors": [{"code": "invalid_token", "message": "invalid_token"}],
                    "error": "invalid_token",
                },
            )
        return self.handler(request)

    def client(self, **kwargs: Any) -> CommercetoolsClient:
        kwargs.setdefault("retry", RetryPolicy(base_delay=0.0))
        kwargs.setdefault("sleep", lambda _: None)
        return CommercetoolsClient(settings(), transport=httpx.MockTransport(self), **kwargs)


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def project_path(request: httpx.Request) -> str:
    """The path below /{projectKey}/."""
    return request.url.path.removeprefix(f"/{PROJECT}/")
