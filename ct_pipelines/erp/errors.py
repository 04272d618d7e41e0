"""Typed ERP errors: callers branch on the class (retry later or park the record), not on text.

Messages carry the HTTP method, the path and the ERP's own reason. They never carry headers, so
the API token cannot leak through an exception or a log line.
"""

from __future__ import annotations

from typing import Any

from ct_pipelines.kernel.errors import IntegrationError


class ErpError(IntegrationError):
    """Any failure talking to the ERP/WMS."""

    retryable = False

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


class ErpTransientError(ErpError):
    """Worth retrying later: 5xx, 429, timeouts, lost connections (retries already exhausted)."""

    retryable = True


class ErpRecordLockedError(ErpTransientError):
    """The ERP holds a lock on the record or refuses more concurrent writes (423 RecordLocked)."""


class ErpValidationError(ErpError):
    """The ERP rejected the document (400/422); permanent until the document changes."""

    @property
    def reason(self) -> str:
        return self.message


class ErpConflictError(ErpError):
    """The request conflicts with what the ERP holds, e.g. a journal batch id reused for other lines."""


class ErpNotFoundError(ErpError):
    """The record or route does not exist."""


class ErpInvalidResponseError(ErpError):
    """A 2xx (or 3xx) answer that is not what the API promises: an HTML login page, another
    content type, JSON of the wrong shape. Permanent: retrying gets the same page."""


class ErpIncompleteResponseError(ErpTransientError):
    """An answer cut short: an empty body where one is due, or JSON that does not parse
    (truncated). Worth retrying: writes are idempotency-keyed, so a replay cannot duplicate."""


class ErpAuthError(ErpError):
    """401/403: the token is missing, wrong or lacks a permission; a configuration problem."""


__all__ = [
    "ErpAuthError",
    "ErpConflictError",
    "ErpError",
    "ErpIncompleteResponseError",
    "ErpInvalidResponseError",
    "ErpNotFoundError",
    "ErpRecordLockedError",
    "ErpTransientError",
    "ErpValidationError",
]
