"""Tryton's JSON-RPC over httpx: login to a session, call ``model.<name>.<method>``, typed errors.

Wire format (trytond ``protocols/jsonrpc.py``): ``POST <url>/<database>/rpc/`` with
``{"id", "method", "params"}``; the answer holds ``result`` or ``error``. Decimals, dates and
datetimes travel as ``{"__class__": "Decimal", "decimal": "1.20"}`` and the like. A session is
``Authorization: Session base64(login:user_id:session)``.

Errors: a ``UserError`` (a business rule refused the record) is permanent and becomes
``ErpValidationError``; ``ConcurrencyException`` (someone else changed the record) becomes
``ErpConflictError``; a database lock or serialisation failure the server gave up retrying,
5xx, 429, timeouts and lost connections become ``ErpTransientError``; a refused login or a
403 is ``ErpAuthError``. Messages never carry the password or the session; the ones an operator
acts on (no connection, no answer in time, a refused login, an unknown database) name the host
and the setting to check (``CT_PIPELINES_TRYTON_URL``, ``_DATABASE``, ``_USER``, ``_PASSWORD``).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from ct_pipelines.erp.errors import (
    ErpAuthError,
    ErpConflictError,
    ErpError,
    ErpNotFoundError,
    ErpRecordLockedError,
    ErpTransientError,
    ErpValidationError,
)
from ct_pipelines.lib.retry import RetryEvent, RetryPolicy, send_with_retries

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
# Reads are safe to replay. Writes are not retried here (a lost answer could hide an applied
# create); the port methods look the record up again before writing, so a retry is theirs.
READ_RETRY = RetryPolicy(retry_statuses=frozenset({429, 502, 503, 504}))
WRITE_RETRY = RetryPolicy(max_attempts=1)
# Method names that only read: ``search``, ``search_read``, ``read``, ``search_count``, ...
_READ_METHODS = frozenset(
    {"search", "search_read", "read", "search_count", "fields_get", "get_preferences"}
)
# The settings an operator checks when the server cannot be reached or refuses us.
URL_VARIABLE = "CT_PIPELINES_TRYTON_URL"
DATABASE_VARIABLE = "CT_PIPELINES_TRYTON_DATABASE"
CREDENTIAL_VARIABLES = "CT_PIPELINES_TRYTON_USER and CT_PIPELINES_TRYTON_PASSWORD"


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "datetime":
        return dt.datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj.get("hour", 0),
            obj.get("minute", 0),
            obj.get("second", 0),
            obj.get("microsecond", 0),
        )
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


class TrytonRpc:
    """One logged-in Tryton session; thread-safe (httpx.Client is, login is locked)."""

    def __init__(
        self,
        url: str,
        database: str,
        user: str,
        password: SecretStr,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self._endpoint = f"{url.rstrip('/')}/{database}/rpc/"
        # For messages: host and port only, never user info or a query string.
        parsed = httpx.URL(url)
        self.host = (
            f"{parsed.host}:{parsed.port}" if parsed.host and parsed.port else parsed.host or url
        )
        self._database = database
        self._user = user
        self._password = password
        self._sleep = sleep
        self._on_retry = on_retry
        self._http = httpx.Client(transport=transport, timeout=timeout)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._auth: str | None = None
        self._context: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"TrytonRpc(host={self.host!r}, database={self._database!r}, user={self._user!r})"

    def close(self) -> None:
        self._http.close()

    @property
    def context(self) -> dict[str, Any]:
        self._ensure_session()
        return dict(self._context)

    # -- session -------------------------------------------------------------------------------

    def _ensure_session(self) -> str:
        with self._lock:
            if self._auth is None:
                result = self._post(
                    "common.db.login",
                    [self._user, {"password": self._password.get_secret_value()}, "en"],
                    auth=None,
                    retry=READ_RETRY,
                )
                if not result:
                    raise ErpAuthError(
                        None,
                        "LoginFailed",
                        f"Tryton at {self.host} (database {self._database!r}) refused the login "
                        f"of user {self._user!r}: check {CREDENTIAL_VARIABLES}",
                    )
                user_id, session = result[0], result[1]
                token = f"{self._user}:{user_id}:{session}".encode()
                self._auth = "Session " + base64.b64encode(token).decode()
                preferences = self._post(
                    "model.res.user.get_preferences", [True, {}], auth=self._auth, retry=READ_RETRY
                )
                self._context = dict(preferences or {})
            return self._auth

    def call(self, method: str, *params: Any, context: Mapping[str, Any] | None = None) -> Any:
        """``method(*params, context)``; the user's preferences are the base of the context."""
        auth = self._ensure_session()
        full_context = {**self._context, **(context or {})}
        name = method.rsplit(".", 1)[-1]
        retry = READ_RETRY if name in _READ_METHODS else WRITE_RETRY
        try:
            return self._post(method, [*params, full_context], auth=auth, retry=retry)
        except ErpAuthError:
            # An expired session: log in again once, then give up.
            with self._lock:
                self._auth = None
            auth = self._ensure_session()
            return self._post(method, [*params, full_context], auth=auth, retry=retry)

    def model(
        self, model: str, method: str, *params: Any, context: Mapping[str, Any] | None = None
    ) -> Any:
        return self.call(f"model.{model}.{method}", *params, context=context)

    def search_read(
        self,
        model: str,
        domain: Sequence[Any],
        fields: Sequence[str],
        *,
        offset: int = 0,
        limit: int | None = None,
        order: Sequence[tuple[str, str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        order_param = [list(o) for o in order] if order else None
        return list(
            self.model(
                model,
                "search_read",
                list(domain),
                offset,
                limit,
                order_param,
                list(fields),
                context=context,
            )
        )

    # -- HTTP ----------------------------------------------------------------------------------

    def _post(self, method: str, params: list[Any], *, auth: str | None, retry: RetryPolicy) -> Any:
        body = json.dumps(
            {"id": next(self._ids), "method": method, "params": _encode(params)}
        ).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth

        def build() -> httpx.Request:
            return self._http.build_request("POST", self._endpoint, content=body, headers=headers)

        where = f"Tryton {method}"
        attempts = f"{retry.max_attempts} attempt" + ("s" if retry.max_attempts != 1 else "")
        try:
            response = send_with_retries(
                self._http, build, retry, sleep=self._sleep, on_retry=self._on_retry
            )
        except httpx.TimeoutException as exc:
            raise ErpTransientError(
                None,
                type(exc).__name__,
                f"{where}: no answer from {self.host} in time after {attempts}: "
                f"is trytond up and {URL_VARIABLE} right?",
            ) from None
        except httpx.TransportError as exc:
            raise ErpTransientError(
                None,
                type(exc).__name__,
                f"{where}: could not reach {self.host} after {attempts}: "
                f"is {URL_VARIABLE} right and trytond serving there?",
            ) from None
        status = response.status_code
        if status >= 400:
            raise _http_error(where, status, self._scrub(response.text[:300]), self)
        payload = json.loads(response.content, object_hook=_decode)
        if "error" in payload and payload["error"] is not None:
            error = _rpc_error(where, payload["error"])
            if isinstance(error, ErpAuthError):
                raise ErpAuthError(
                    error.status,
                    error.code or "Unauthorized",
                    f"{error.message} (Tryton at {self.host}, database {self._database!r}, "
                    f"user {self._user!r}: check {CREDENTIAL_VARIABLES})",
                )
            raise error
        return payload.get("result")

    def _scrub(self, text: str) -> str:
        """The server's text without our password or session token, should it quote them."""
        for secret in (self._password.get_secret_value(), self._auth or ""):
            if secret:
                text = text.replace(secret, "***")
        return text


def _http_error(where: str, status: int, text: str, rpc: TrytonRpc) -> ErpError:
    if status in (401, 403):
        what = "the login" if where.endswith("common.db.login") else "the session"
        return ErpAuthError(
            status,
            "Unauthorized",
            f"{where}: Tryton at {rpc.host} refused {what} of user {rpc._user!r} "
            f"(HTTP {status}, database {rpc._database!r}): check {CREDENTIAL_VARIABLES}",
        )
    if status == 404:
        return ErpNotFoundError(
            status,
            "NotFound",
            f"{where}: Tryton at {rpc.host} has no database {rpc._database!r} (HTTP 404): "
            f"check {DATABASE_VARIABLE} and {URL_VARIABLE}",
        )
    if status == 423:
        return ErpRecordLockedError(status, "RecordLocked", f"{where}: record locked")
    if status == 409:
        return ErpConflictError(status, "Conflict", f"{where}: {text}")
    if status == 429 or status >= 500:
        return ErpTransientError(status, f"HTTP{status}", f"{where}: server busy or failing")
    return ErpValidationError(status, f"HTTP{status}", f"{where}: {text}")


def _rpc_error(where: str, error: Any) -> ErpError:
    """Map trytond's ``error`` member: ``[name, args]`` for its exceptions, else ``[text, tb]``."""
    name = error[0] if isinstance(error, list | tuple) and error else str(error)
    args = error[1] if isinstance(error, list | tuple) and len(error) > 1 else None
    if name in ("UserError", "UserWarning"):
        parts = args if isinstance(args, list | tuple) else [args]
        message = " ".join(str(p) for p in parts[:2] if p)
        if name == "UserWarning":
            return ErpValidationError(None, "UserWarning", f"{where}: {message}")
        return ErpValidationError(None, "UserError", f"{where}: {message}")
    if name == "ConcurrencyException":
        return ErpConflictError(None, "ConcurrencyException", f"{where}: {args}")
    if name == "LoginException":
        return ErpAuthError(None, "LoginException", f"{where}: login needs more")
    if name == "RateLimitException":
        return ErpTransientError(429, "RateLimit", f"{where}: too many logins")
    text = str(name)
    lowered = text.lower()
    # A lock wait or serialisation failure the server already retried: worth trying later.
    if any(
        hint in lowered
        for hint in ("could not serialize", "deadlock", "lock", "timeout", "database is locked")
    ):
        return ErpRecordLockedError(None, "DatabaseOperationalError", f"{where}: {text[:200]}")
    # Anything else is a server-side fault (a bug, a missing module): not the document's fault.
    return ErpTransientError(500, "ServerError", f"{where}: {text[:200]}")


__all__ = ["TrytonRpc"]
