"""The one base of every error from an external system (commercetools, the ERP/WMS).

Callers branch on the class and on these attributes, never on message text:

- ``status``: the HTTP status (``None``, or 0 for commercetools, when no response came back);
  ``status_code`` is the same value under the name commercetools code uses.
- ``code``: the system's own error code (commercetools: the first ``errors[].code``), or None.
- ``message``: what the system said; never a token, a secret or a header.
- ``retryable``: the same request may succeed later unchanged (after backing off);
  ``transient`` is the same flag under the name commercetools code uses.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """Any failure talking to an external system."""

    retryable: bool = False
    status: int | None = None
    code: str | None = None
    message: str = ""

    @property
    def status_code(self) -> int | None:
        return self.status

    @property
    def transient(self) -> bool:
        return self.retryable
