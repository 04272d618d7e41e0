"""``ErpPort`` over the ERP/WMS REST API (the sandbox ERP is the reference implementation).

Routes (relative to ``base_url``):
  GET  /items?cursor&limit                    keyset pages of items (by item_no)
  GET  /stock?location=..&cursor&limit        stock by location
  GET  /stock-movements?cursor&limit          movements after a cursor
  GET  /sales-orders?order_date=..&cursor&limit  a day's sales orders (by sales_order_no)
  GET  /sales-orders/{external_document_number}
  PUT  /sales-orders/{external_document_number}   upsert, header Idempotency-Key
  GET  /shipments?cursor&limit                shipments after a cursor
  POST /journal-batches                       idempotent by batch_id
  GET  /journal-batches?posting_date=..&cursor&limit  a day's batches with lines (by batch_id)
  GET  /journal-batches/{batch_id}

Writes carry an ``Idempotency-Key``; retries reuse it, so a write whose answer was lost (timeout
after the ERP applied it) replays to the same result instead of creating a duplicate.
"""

from __future__ import annotations

import hashlib
import json as json_module
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any
from urllib.parse import quote

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
from ct_pipelines.erp.port import (
    ErpItem,
    ErpSalesOrder,
    JournalBatch,
    JournalPosting,
    PostedJournalBatch,
    SalesOrderDraft,
    ShipmentPage,
    StockLevel,
    StockMovementPage,
)
from ct_pipelines.lib.retry import RetryEvent, RetryPolicy, send_with_retries

# 423 is record locking (or too many concurrent writes): it clears by itself, like a 503.
# 500 is retried too: every write is idempotency-keyed, so replaying one cannot duplicate it.
ERP_RETRY_POLICY = RetryPolicy(retry_statuses=frozenset({423, 429, 500, 502, 503, 504}))
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
PAGE_SIZE = 500


class RestErpClient:
    """Synchronous ERP client; thread-safe (httpx.Client is), close it when done."""

    def __init__(
        self,
        base_url: str,
        api_token: SecretStr | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = ERP_RETRY_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[RetryEvent], None] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = api_token
        self._retry = retry
        self._sleep = sleep
        self._on_retry = on_retry
        self._page_size = page_size
        self._http = httpx.Client(transport=transport, timeout=timeout)

    def __repr__(self) -> str:
        return (
            f"RestErpClient(base_url={self._base_url!r}, token={'set' if self._token else 'none'})"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RestErpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP plumbing -------------------------------------------------------------------------

    def _headers(self, idempotency_key: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        idempotency_key: str | None = None,
        allow_404: bool = False,
    ) -> Any:
        url = self._base_url + path

        def build() -> httpx.Request:
            return self._http.build_request(
                method, url, params=params, json=json, headers=self._headers(idempotency_key)
            )

        where = f"{method} {path}"
        try:
            response = send_with_retries(
                self._http, build, self._retry, sleep=self._sleep, on_retry=self._on_retry
            )
        except httpx.TimeoutException as exc:
            raise ErpTransientError(
                None, type(exc).__name__, f"{where}: no answer in time"
            ) from None
        except httpx.TransportError as exc:
            raise ErpTransientError(
                None, type(exc).__name__, f"{where}: connection failed"
            ) from None
        if allow_404 and response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _error_for(where, response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Follow ``next_cursor`` until the ERP reports no more; one page in memory at a time."""
        cursor: str | None = None
        while True:
            page_params = {**params, "limit": self._page_size}
            if cursor is not None:
                page_params["cursor"] = cursor
            body = self._request("GET", path, params=page_params)
            yield from body[key]
            cursor = body.get("next_cursor")
            if not body.get("has_more") or cursor is None:
                return

    # -- ErpPort -------------------------------------------------------------------------------

    def iter_items(self) -> Iterator[ErpItem]:
        for raw in self._pages("/items", "items", {}):
            yield ErpItem.model_validate(raw)

    def iter_stock(self, locations: Sequence[str] | None = None) -> Iterator[StockLevel]:
        params: dict[str, Any] = {"location": list(locations)} if locations else {}
        for raw in self._pages("/stock", "stock", params):
            yield StockLevel.model_validate(raw)

    def stock_movements_since(self, cursor: str | None, limit: int = 1000) -> StockMovementPage:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return StockMovementPage.model_validate(
            self._request("GET", "/stock-movements", params=params)
        )

    def find_sales_order(self, external_document_number: str) -> ErpSalesOrder | None:
        body = self._request(
            "GET", f"/sales-orders/{_segment(external_document_number)}", allow_404=True
        )
        return None if body is None else ErpSalesOrder.model_validate(body)

    def upsert_sales_order(self, order: SalesOrderDraft, *, idempotency_key: str) -> ErpSalesOrder:
        if not idempotency_key:
            raise ValueError("idempotency_key is required for a sales order write")
        body = self._request(
            "PUT",
            f"/sales-orders/{_segment(order.external_document_number)}",
            json=order.model_dump(mode="json"),
            idempotency_key=idempotency_key,
        )
        return ErpSalesOrder.model_validate(body)

    def shipments_since(self, cursor: str | None, limit: int = 500) -> ShipmentPage:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return ShipmentPage.model_validate(self._request("GET", "/shipments", params=params))

    def post_journal_batch(self, batch: JournalBatch) -> JournalPosting:
        payload = batch.model_dump(mode="json")
        # Same batch, same key (a replay); a batch id reused for other lines gets a new key, so
        # the ERP answers with its own "batch already posted" conflict.
        digest = hashlib.sha256(json_module.dumps(payload, sort_keys=True).encode()).hexdigest()[
            :16
        ]
        body = self._request(
            "POST",
            "/journal-batches",
            json=payload,
            idempotency_key=f"journal-{batch.batch_id}-{digest}",
        )
        return JournalPosting.model_validate(body)

    def find_journal_batch(self, batch_id: str) -> JournalPosting | None:
        body = self._request("GET", f"/journal-batches/{_segment(batch_id)}", allow_404=True)
        return None if body is None else JournalPosting.model_validate(body)

    def iter_sales_orders(self, order_date: date) -> Iterator[ErpSalesOrder]:
        params = {"order_date": order_date.isoformat()}
        for raw in self._pages("/sales-orders", "sales_orders", params):
            yield ErpSalesOrder.model_validate(raw)

    def iter_journal_batches(self, posting_date: date) -> Iterator[PostedJournalBatch]:
        params = {"posting_date": posting_date.isoformat()}
        for raw in self._pages("/journal-batches", "journal_batches", params):
            yield PostedJournalBatch.model_validate(raw)

    # -- sandbox extras (not part of the port) -------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """The sandbox ERP's write counters (GET /_admin/metrics)."""
        return self._request("GET", "/_admin/metrics")


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def _segment(value: str) -> str:
    # Document numbers may hold '/', '#' or spaces; they must stay one path segment.
    return quote(value, safe="")


def _error_for(where: str, response: httpx.Response) -> ErpError:
    status = response.status_code
    code, message, details = _parse_error(response)
    text = f"{where}: {message}"
    if status == 423:
        return ErpRecordLockedError(status, code or "RecordLocked", text, details=details)
    if status in (400, 422):
        return ErpValidationError(status, code or "ValidationFailed", text, details=details)
    if status in (401, 403):
        return ErpAuthError(status, code or "Unauthorized", f"{where}: not authorised")
    if status == 404:
        return ErpNotFoundError(status, code or "NotFound", text, details=details)
    if status == 409:
        return ErpConflictError(status, code or "Conflict", text, details=details)
    if status == 429 or status >= 500:
        return ErpTransientError(status, code or f"HTTP{status}", text, details=details)
    return ErpError(status, code or f"HTTP{status}", text, details=details)


def _parse_error(response: httpx.Response) -> tuple[str | None, str, list[dict[str, Any]]]:
    try:
        body = response.json()
    except ValueError:
        return None, response.reason_phrase or f"HTTP {response.status_code}", []
    if not isinstance(body, dict):
        return None, f"HTTP {response.status_code}", []
    errors: list[dict[str, Any]] = body["errors"] if isinstance(body.get("errors"), list) else []
    message = str(body.get("message") or response.reason_phrase or f"HTTP {response.status_code}")
    code = body.get("code")
    return (str(code) if code else None), message, errors


__all__ = ["ERP_RETRY_POLICY", "RestErpClient", "new_idempotency_key"]
