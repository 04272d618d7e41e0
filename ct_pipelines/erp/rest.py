"""``ErpPort`` over the ERP/WMS REST API (the sandbox ERP is the reference implementation).

Routes (relative to ``base_url``):
  GET  /items?cursor&limit                    keyset pages of items (by item_no)
  GET  /stock?location=..&cursor&limit        stock by location
  GET  /stock-movements?cursor&limit          movements after a cursor
  GET  /sales-orders?order_date=..&cursor&limit  a day's sales orders (by sales_order_no)
  GET  /sales-orders?external_document_number=..(repeated)  bulk lookup, up to 100 a request
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
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from ct_pipelines.erp.errors import (
    ErpAuthError,
    ErpConflictError,
    ErpError,
    ErpIncompleteResponseError,
    ErpInvalidResponseError,
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
from ct_pipelines.kernel.scrub import scrub, scrub_value
from ct_pipelines.lib.retry import RetryEvent, RetryPolicy, send_with_retries

logger = logging.getLogger(__name__)
ModelT = TypeVar("ModelT", bound=BaseModel)
# Header values must be visible ASCII; longer keys than this are hashed as well.
_MAX_IDEMPOTENCY_KEY = 200

# 423 is record locking (or too many concurrent writes): it clears by itself, like a 503.
# 500 is retried too: every write is idempotency-keyed, so replaying one cannot duplicate it.
ERP_RETRY_POLICY = RetryPolicy(retry_statuses=frozenset({423, 429, 500, 502, 503, 504}))
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
PAGE_SIZE = 500
# Document numbers per bulk lookup request (the sandbox ERP takes up to 100).
LOOKUP_CHUNK = 100


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
        self._on_retry = on_retry or self._log_retry
        self._page_size = page_size
        self._http = httpx.Client(transport=transport, timeout=timeout)

    def __repr__(self) -> str:
        return (
            f"RestErpClient(base_url={self._base_url!r}, token={'set' if self._token else 'none'})"
        )

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _log_retry(event: RetryEvent) -> None:
        # A warning, so a running step shows it in the run's event log (defs/step_log.py).
        logger.warning(
            "ERP: transient %s on attempt %d, retrying in %.2fs",
            event.reason,
            event.attempt,
            event.delay,
        )

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
            headers["Idempotency-Key"] = idempotency_header(idempotency_key)
        return headers

    @property
    def host(self) -> str:
        """The ERP's host, for messages: never the token, never a query string."""
        return httpx.URL(self._base_url).host or self._base_url

    def _secrets(self) -> list[str]:
        return [self._token.get_secret_value()] if self._token is not None else []

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
        response = self._send(
            method,
            path,
            params=params,
            json=json,
            idempotency_key=idempotency_key,
            allow_404=allow_404,
        )
        if response is None or response.status_code == 404:
            return None
        return _json_body(f"{method} {path}", response)

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        idempotency_key: str | None = None,
        allow_404: bool = False,
    ) -> httpx.Response | None:
        """The answer to a request after retries: a typed error for 4xx/5xx (a 404 is returned
        when allowed), None for 204; the caller reads the body."""
        url = self._base_url + path

        def build() -> httpx.Request:
            headers = self._headers(idempotency_key)
            if content is not None:
                headers["Content-Type"] = "application/json"
            return self._http.build_request(
                method, url, params=params, json=json, content=content, headers=headers
            )

        where = f"{method} {path}"
        try:
            response = send_with_retries(
                self._http, build, self._retry, sleep=self._sleep, on_retry=self._on_retry
            )
        except httpx.TimeoutException as exc:
            raise ErpTransientError(
                None,
                type(exc).__name__,
                f"{where}: no answer from {self.host} in time after {self._retry.max_attempts} "
                "attempts: is the ERP up (CT_PIPELINES_ERP_URL)?",
            ) from None
        except httpx.TransportError as exc:
            raise ErpTransientError(
                None,
                type(exc).__name__,
                f"{where}: could not reach {self.host} after {self._retry.max_attempts} "
                "attempts: is CT_PIPELINES_ERP_URL right and the host reachable?",
            ) from None
        if allow_404 and response.status_code == 404:
            return response
        if response.status_code >= 400:
            raise _error_for(where, response, host=self.host, secrets=self._secrets())
        if response.status_code == 204:
            return None
        return response

    def _request_model(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        idempotency_key: str | None = None,
    ) -> ModelT | None:
        """A request whose answer is one ``model``, decoded straight from the body's bytes (one
        pydantic-core pass, no intermediate dicts); None for 204."""
        where = f"{method} {path}"
        response = self._send(method, path, content=content, idempotency_key=idempotency_key)
        if response is None:
            return None
        _check_json_answer(where, response)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise ErpIncompleteResponseError(
                    response.status_code,
                    "InvalidJson",
                    f"{where}: the answer is not valid JSON "
                    f"({len(response.content)} bytes, truncated?)",
                ) from None
            raise _shape_error(model, exc, where) from None

    def _model(self, model: type[ModelT], body: Any, where: str) -> ModelT:
        """``body`` as ``model``, or a typed error naming what is wrong (never a raw crash)."""
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise _shape_error(model, exc, where) from None

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Follow ``next_cursor`` until the ERP reports no more; one page in memory at a time."""
        cursor: str | None = None
        while True:
            page_params = {**params, "limit": self._page_size}
            if cursor is not None:
                page_params["cursor"] = cursor
            body = self._request("GET", path, params=page_params)
            if not isinstance(body, dict) or not isinstance(body.get(key), list):
                raise ErpInvalidResponseError(
                    None, "UnexpectedShape", f"GET {path}: the answer has no {key!r} list"
                )
            yield from body[key]
            cursor = body.get("next_cursor")
            if not body.get("has_more") or cursor is None:
                return

    # -- ErpPort -------------------------------------------------------------------------------

    def iter_items(self) -> Iterator[ErpItem]:
        for raw in self._pages("/items", "items", {}):
            yield self._model(ErpItem, raw, "GET /items")

    def iter_stock(self, locations: Sequence[str] | None = None) -> Iterator[StockLevel]:
        params: dict[str, Any] = {"location": list(locations)} if locations else {}
        for raw in self._pages("/stock", "stock", params):
            yield self._model(StockLevel, raw, "GET /stock")

    def stock_movements_since(self, cursor: str | None, limit: int = 1000) -> StockMovementPage:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return self._model(
            StockMovementPage,
            self._request("GET", "/stock-movements", params=params),
            "GET /stock-movements",
        )

    def find_sales_order(self, external_document_number: str) -> ErpSalesOrder | None:
        path = f"/sales-orders/{_segment(external_document_number)}"
        body = self._request("GET", path, allow_404=True)
        return None if body is None else self._model(ErpSalesOrder, body, f"GET {path}")

    def find_sales_orders(
        self, external_document_numbers: Sequence[str]
    ) -> dict[str, ErpSalesOrder]:
        """The ERP's sales orders for those document numbers that exist, by document number:
        one request per ``LOOKUP_CHUNK`` numbers instead of one per order."""
        wanted = list(dict.fromkeys(external_document_numbers))
        found: dict[str, ErpSalesOrder] = {}
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            body = self._request("GET", "/sales-orders", params={"external_document_number": chunk})
            if not isinstance(body, dict) or not isinstance(body.get("sales_orders"), list):
                raise ErpInvalidResponseError(
                    None,
                    "UnexpectedShape",
                    "GET /sales-orders: the answer has no 'sales_orders' list",
                )
            asked = set(chunk)
            for raw in body["sales_orders"]:
                order = self._model(ErpSalesOrder, raw, "GET /sales-orders")
                # Only what was asked for: an ERP that ignored the filter must not look like a hit.
                if order.external_document_number in asked:
                    found[order.external_document_number] = order
        return found

    def upsert_sales_order(self, order: SalesOrderDraft, *, idempotency_key: str) -> ErpSalesOrder:
        if not idempotency_key:
            raise ValueError("idempotency_key is required for a sales order write")
        path = f"/sales-orders/{_segment(order.external_document_number)}"
        # The body straight from pydantic-core (the same JSON as model_dump(mode="json") through
        # the json module) and the answer straight into the model: this is the export's hot path.
        created = self._request_model(
            ErpSalesOrder,
            "PUT",
            path,
            content=order.model_dump_json().encode(),
            idempotency_key=idempotency_key,
        )
        if created is None:
            raise ErpIncompleteResponseError(
                204, "EmptyBody", f"PUT {path}: no sales order in the answer"
            )
        return created

    def shipments_since(self, cursor: str | None, limit: int = 500) -> ShipmentPage:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return self._model(
            ShipmentPage, self._request("GET", "/shipments", params=params), "GET /shipments"
        )

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
        return self._model(JournalPosting, body, "POST /journal-batches")

    def find_journal_batch(self, batch_id: str) -> JournalPosting | None:
        path = f"/journal-batches/{_segment(batch_id)}"
        body = self._request("GET", path, allow_404=True)
        return None if body is None else self._model(JournalPosting, body, f"GET {path}")

    def iter_sales_orders(self, order_date: date) -> Iterator[ErpSalesOrder]:
        params = {"order_date": order_date.isoformat()}
        for raw in self._pages("/sales-orders", "sales_orders", params):
            yield self._model(ErpSalesOrder, raw, "GET /sales-orders")

    def iter_journal_batches(self, posting_date: date) -> Iterator[PostedJournalBatch]:
        params = {"posting_date": posting_date.isoformat()}
        for raw in self._pages("/journal-batches", "journal_batches", params):
            yield self._model(PostedJournalBatch, raw, "GET /journal-batches")

    # -- sandbox extras (not part of the port) -------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """The sandbox ERP's write counters (GET /_admin/metrics)."""
        return self._request("GET", "/_admin/metrics")


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def _segment(value: str) -> str:
    # Document numbers may hold '/', '#' or spaces; they must stay one path segment.
    return quote(value, safe="")


def idempotency_header(key: str) -> str:
    """``key`` as a valid header value: unchanged when it is short visible ASCII, else a stable
    hash (httpx refuses non-ASCII header values; the same key always gives the same header)."""
    if len(key) <= _MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable():
        return key
    return "sha256-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _shape_error(model: type[BaseModel], exc: ValidationError, where: str) -> ErpError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()[:3]
    )
    return ErpInvalidResponseError(
        None, "UnexpectedShape", f"{where}: the answer is not a {model.__name__} ({problems})"
    )


def _json_body(where: str, response: httpx.Response) -> Any:
    """The JSON of a 2xx (or unexpected 1xx/3xx) answer, validated before anyone reads it."""
    _check_json_answer(where, response)
    try:
        return response.json()
    except ValueError:
        raise ErpIncompleteResponseError(
            response.status_code,
            "InvalidJson",
            f"{where}: the answer is not valid JSON ({len(response.content)} bytes, truncated?)",
        ) from None


def _check_json_answer(where: str, response: httpx.Response) -> None:
    """A 2xx answer with a JSON body, or the typed error saying what it is instead."""
    status = response.status_code
    if not 200 <= status < 300:
        location = httpx.URL(response.headers.get("location", "")).host or "elsewhere"
        raise ErpInvalidResponseError(
            status,
            f"HTTP{status}",
            f"{where}: unexpected HTTP {status} (redirect to {location}?), not an API answer",
        )
    if not response.content.strip():
        raise ErpIncompleteResponseError(status, "EmptyBody", f"{where}: the answer is empty")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and not (content_type == "application/json" or content_type.endswith("+json")):
        raise ErpInvalidResponseError(
            status,
            "UnexpectedContentType",
            f"{where}: answered {content_type}, not JSON (a login page or a proxy in between?)",
        )


def _error_for(
    where: str, response: httpx.Response, *, host: str = "the ERP", secrets: Sequence[str] = ()
) -> ErpError:
    status = response.status_code
    code, message, details = _parse_error(response)
    # The ERP's (or a gateway's) own text may quote our request, Authorization header included.
    message = scrub(message, secrets, limit=2000)
    details = scrub_value(details, secrets)
    code = scrub(code, secrets, limit=100) if code else None
    text = f"{where}: {message}"
    if status == 423:
        return ErpRecordLockedError(status, code or "RecordLocked", text, details=details)
    if status in (400, 422):
        return ErpValidationError(status, code or "ValidationFailed", text, details=details)
    if status in (401, 403):
        return ErpAuthError(
            status,
            code or ("Unauthorized" if status == 401 else "Forbidden"),
            f"{where}: the ERP at {host} refused the credentials (HTTP {status}); "
            "check CT_PIPELINES_ERP_TOKEN and its permissions",
        )
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
    raw_errors = body.get("errors")
    errors = [e for e in raw_errors if isinstance(e, dict)] if isinstance(raw_errors, list) else []
    message = str(body.get("message") or response.reason_phrase or f"HTTP {response.status_code}")
    code = body.get("code")
    return (str(code) if code else None), message, errors


__all__ = ["ERP_RETRY_POLICY", "RestErpClient", "idempotency_header", "new_idempotency_key"]
