"""OAuth2 client credentials for commercetools: one cached token, renewed before it expires."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ct_pipelines.commercetools.errors import (
    AuthError,
    ServiceUnavailableError,
    error_from_response,
)
from ct_pipelines.commercetools.settings import CommercetoolsSettings
from ct_pipelines.lib.retry import (
    DEFAULT_RETRY_POLICY,
    RetryEvent,
    RetryPolicy,
    send_with_retries,
)

logger = logging.getLogger(__name__)

DEFAULT_RENEW_MARGIN = 300.0  # seconds before expiry; tokens last 1 h to 7 days


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when to stop using it (on the provider's monotonic clock)."""

    value: str
    expires_at: float
    renew_at: float
    scope: str | None = None

    def __repr__(self) -> str:
        # The value is a credential: never show it.
        return f"AccessToken(value='***', expires_at={self.expires_at:.0f}, scope={self.scope!r})"

    __str__ = __repr__


class TokenProvider:
    """Fetches and caches the client-credentials token of one API client and scope set.

    The token is renewed ``renew_margin`` seconds before it expires (at most half its lifetime,
    so short-lived tokens are not renewed on every call) and on demand after a 401.
    Thread-safe: parallel steps in one process share one token.
    """

    def __init__(
        self,
        settings: CommercetoolsSettings,
        http: httpx.Client,
        *,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        renew_margin: float = DEFAULT_RENEW_MARGIN,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._renew_margin = renew_margin
        self._on_retry = on_retry
        self._token: AccessToken | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0  # observability and tests: how many tokens were requested

    def __repr__(self) -> str:
        return f"TokenProvider(client_id={self._settings.client_id!r}, token={'cached' if self._token else 'none'})"

    def token(self) -> str:
        """A valid access token, fetching a new one when none is cached or it is due for renewal."""
        with self._lock:
            current = self._token
            if current is None or self._clock() >= current.renew_at:
                current = self._fetch()
                self._token = current
            return current.value

    def granted_scopes(self) -> list[str]:
        """The scopes of the cached token, as the token response listed them."""
        current = self._token
        return (current.scope or "").split() if current else []

    def peek(self) -> str | None:
        """The cached token without fetching one (used to scrub it from error texts)."""
        current = self._token
        return current.value if current else None

    def invalidate(self, rejected: str | None = None) -> None:
        """Drop the cached token after the API rejected it (401).

        ``rejected`` is the token that was refused: when another thread already replaced it,
        the new token is kept rather than fetching yet another one.
        """
        with self._lock:
            if self._token is not None and (rejected is None or self._token.value == rejected):
                self._token = None

    def _fetch(self) -> AccessToken:
        settings = self._settings
        form = {"grant_type": "client_credentials"}
        if settings.scopes:
            form["scope"] = " ".join(settings.scopes)
        auth = httpx.BasicAuth(settings.client_id, settings.client_secret.get_secret_value())

        def build() -> httpx.Request:
            request = self._http.build_request("POST", settings.token_url, data=form)
            # BasicAuth is applied here rather than via client.send(auth=...) to keep send() plain.
            return next(auth.auth_flow(request))

        try:
            response = send_with_retries(
                self._http, build, self._retry, sleep=self._sleep, on_retry=self._on_retry
            )
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(
                0, f"token request failed: {type(exc).__name__}", method="POST", path="/oauth/token"
            ) from exc
        self.fetch_count += 1
        if response.status_code != 200:
            error = error_from_response(response, method="POST", path="/oauth/token")
            if isinstance(error, ServiceUnavailableError):
                raise error
            raise AuthError(
                error.status_code,
                error.message,
                error.errors,
                error.correlation_id,
                method="POST",
                path="/oauth/token",
            )
        try:
            body = response.json()
            value = str(body["access_token"])
            lifetime = float(body.get("expires_in", 172_800))
        except (ValueError, KeyError, TypeError):
            raise AuthError(
                response.status_code,
                "token response without access_token",
                method="POST",
                path="/oauth/token",
            ) from None
        now = self._clock()
        margin = min(self._renew_margin, lifetime / 2)
        logger.debug("obtained commercetools access token valid for %.0fs", lifetime)
        return AccessToken(
            value=value,
            expires_at=now + lifetime,
            renew_at=now + lifetime - margin,
            scope=body.get("scope"),
        )
