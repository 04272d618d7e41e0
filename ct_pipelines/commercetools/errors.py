"""Typed errors carrying the API's error JSON (statusCode, message, errors[].code).

Branch on ``codes`` (the API's ``errors[*].code``), never on the message text.
Messages hold the method, the path and what the API said: never a token or the client secret.
"""

from __future__ import annotations

from typing import Any

import httpx

from ct_pipelines.kernel.errors import IntegrationError


class CommercetoolsError(IntegrationError):
    """An error response from commercetools (or the auth service).

    ``retryable`` (alias ``transient``) is True when the same request may succeed later
    unchanged (after backing off); ``status_code`` (alias ``status``) is 0 when no response came.
    """

    status: int  # never None here: 0 stands for "no response"

    def __init__(
        self,
        status_code: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        correlation_id: str | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status_code
        self.message = message
        self.errors = list(errors or [])
        self.code = self.codes[0] if self.codes else None
        self.correlation_id = correlation_id
        self.method = method
        self.path = path
        super().__init__(str(self))

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def codes(self) -> list[str]:
        return [str(e["code"]) for e in self.errors if isinstance(e, dict) and e.get("code")]

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        codes = f" [{', '.join(self.codes)}]" if self.codes else ""
        correlation = f" (correlation id {self.correlation_id})" if self.correlation_id else ""
        return f"{where}HTTP {self.status} {self.message}{codes}{correlation}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self})"


class BadRequestError(CommercetoolsError):
    """400: InvalidInput, InvalidOperation, DuplicateField, ... Permanent until the request changes."""


class AuthError(CommercetoolsError):
    """401/403 or a failed token request: wrong credentials, expired token, insufficient_scope."""


class NotFoundError(CommercetoolsError):
    """404 ResourceNotFound."""


class ConcurrentModificationError(CommercetoolsError):
    """409: the resource changed since it was read; re-read, re-check and rebuild the actions."""

    @property
    def current_version(self) -> int | None:
        for error in self.errors:
            if isinstance(error, dict) and error.get("code") == "ConcurrentModification":
                version = error.get("currentVersion")
                if isinstance(version, int):
                    return version
        return None


class TooManyActionsError(CommercetoolsError):
    """413: more than 500 update actions in one request."""


class RateLimitedError(CommercetoolsError):
    """429 still returned after every retry."""

    retryable = True


class ServiceUnavailableError(CommercetoolsError):
    """502/503/504 after every retry, or the connection kept failing (status_code 0)."""

    retryable = True


_BY_STATUS: dict[int, type[CommercetoolsError]] = {
    400: BadRequestError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConcurrentModificationError,
    413: TooManyActionsError,
    429: RateLimitedError,
    502: ServiceUnavailableError,
    503: ServiceUnavailableError,
    504: ServiceUnavailableError,
}


def error_from_response(
    response: httpx.Response, *, method: str | None = None, path: str | None = None
) -> CommercetoolsError:
    """Map an error response to its typed exception, keeping the API's error JSON."""
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = None
    errors: list[dict[str, Any]] = []
    message = response.reason_phrase or "error"
    if isinstance(body, dict):
        raw_errors = body.get("errors")
        if isinstance(raw_errors, list):
            errors = [e for e in raw_errors if isinstance(e, dict)]
        # OAuth errors (RFC 6749) carry error/error_description instead of, or as well as, message.
        message = str(
            body.get("message") or body.get("error_description") or body.get("error") or message
        )
        if not errors and body.get("error"):
            errors = [{"code": str(body["error"]), "message": message}]
    status = response.status_code
    cls = _BY_STATUS.get(status, CommercetoolsError)
    if status == 400 and "insufficient_scope" in [e.get("code") for e in errors]:
        cls = AuthError
    return cls(
        status,
        message,
        errors,
        response.headers.get("X-Correlation-ID"),
        method=method,
        path=path,
    )
