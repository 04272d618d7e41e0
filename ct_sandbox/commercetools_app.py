"""A strict, stateful stand-in for the commercetools HTTP API, as a plain WSGI app.

The real client talks to it unchanged, in-process through ``sandbox_transport(app)`` or over HTTP
through ``transport.serve``. State lives in the world DB (``DocumentStore``), so several threads
and processes see one world. The API rules in docs/reference are enforced, not approximated: limit
1..500 and offset <= 10,000 (400 InvalidInput beyond), ``total`` capped at 10,000 with a predicate,
``where`` compiled to SQL (unsupported syntax is a 400, never ignored), version checks (409
ConcurrentModification with ``currentVersion``), at most 500 update actions (413), unknown actions
(400 InvalidInput), bearer tokens that expire (401 invalid_token), scopes (403
insufficient_scope), product changes staged by default until ``publish``.

Contract: ``CommercetoolsSandboxApp(db_path, project_key)``.

Additions beyond the contract:

- keyword arguments ``token_ttl_seconds`` (default 172,800 like the API), ``clock`` (a
  ``() -> datetime``, default the world clock) and ``enforce_scopes`` (default True);
  attributes ``db_path``, ``side`` ("commercetools", read by ``sandbox_transport``),
  ``project_key``, ``store`` (the ``DocumentStore``).
- ``register_api_client(db_path, client_id, client_secret, scopes, token_ttl_seconds=None)``: API
  clients allowed to get tokens (secret stored hashed). While none is registered any non-empty
  client id and secret are accepted, and get ``manage_project:{projectKey}`` when no scope is
  asked for.
- ``app.expire_tokens()`` makes every issued token invalid (tests of renewal after 401).
- ``GET|POST|DELETE /{resource}/key={key}``; ``POST|DELETE /orders/order-number={n}``;
  ``POST /orders/import`` (201); order actions ``addPayment`` and ``setOrderNumber``; inventory
  actions ``setRestockableInDays``, ``setExpectedDelivery``, ``setKey``, ``setSupplyChannel``,
  ``setCustomType``, ``setCustomField``; channel actions ``changeKey``, ``changeName``,
  ``addRoles``, ``removeRoles``, ``setRoles``, ``setAddress``; product actions ``setKey``,
  ``changeSlug``, ``setDescription``; DELETE for orders, payments, inventory, channels,
  products and tax categories.
- Responses carry ``X-Correlation-ID`` and ``X-Sandbox-Request-Seq`` (the request log row).
- ``expand`` resolves any reference path (``paymentInfo.payments[*]``,
  ``syncInfo[*].channel``, ``supplyChannel``, ``taxCategory``...) to stored payments, channels,
  tax categories, products and orders; other reference types stay unexpanded.

Simplifications, on purpose: no carts, customers, product types, custom types (references to them
are kept as given, a key becomes a stable synthetic id), stores or messages; slugs are not
checked for uniqueness; ``total`` is exact (the real one is an estimate).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import parse_qs

from ct_sandbox import db
from ct_sandbox.documents import (
    DocumentNotFound,
    DocumentStore,
    DuplicateDocument,
    VersionConflict,
)
from ct_sandbox.faults import FaultConfig, draw_fault, load_faults, log_request
from ct_sandbox.predicates import (
    CompiledPredicate,
    PredicateError,
    RootMapping,
    compile_sort,
    compile_where,
    mapping_for,
    projection_mapping,
)

logger = logging.getLogger(__name__)

SIDE = "commercetools"
DEFAULT_TOKEN_TTL = 172_800
MAX_LIMIT = 500
MAX_OFFSET = 10_000
MAX_ACTIONS = 500
MAX_TAX_CATEGORIES = 100
MAX_VARIANTS = 100
MAX_PRICES = 100
INT64_MAX = 2**63 - 1

Json = dict[str, Any]

# (read scope, write scope) per resource; manage_X implies view_X, manage_project implies all.
RESOURCE_SCOPES: dict[str, tuple[str, str | None]] = {
    "orders": ("view_orders", "manage_orders"),
    "payments": ("view_payments", "manage_payments"),
    "inventory": ("view_products", "manage_products"),
    "channels": ("view_channels", "manage_channels"),
    "products": ("view_products", "manage_products"),
    "product-projections": ("view_published_products", None),
    "tax-categories": ("view_tax_categories", "manage_tax_categories"),
}
TYPE_ID_RESOURCES = {
    "order": "orders",
    "payment": "payments",
    "channel": "channels",
    "product": "products",
    "tax-category": "tax-categories",
}
ORDER_STATES = frozenset({"Open", "Confirmed", "Complete", "Cancelled"})
SHIPMENT_STATES = frozenset(
    {"Shipped", "Delivered", "Ready", "Pending", "Delayed", "Partial", "Backorder", "Canceled"}
)
PAYMENT_STATES = frozenset({"BalanceDue", "Failed", "Pending", "CreditOwed", "Paid"})
CHANNEL_ROLES = frozenset(
    {"InventorySupply", "ProductDistribution", "OrderExport", "OrderImport", "Primary"}
)
# ISO 4217 default fraction digits for the currencies a UK shop meets.
FRACTION_DIGITS = {
    "GBP": 2, "EUR": 2, "USD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "AUD": 2, "CAD": 2, "NZD": 2, "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "KWD": 3,
    "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{2,256}$")
_EXPAND = re.compile(r"^[A-Za-z_][\w-]*(\[\*\])?(\.[A-Za-z_][\w-]*(\[\*\])?)*$")
_VAR = re.compile(r"^var\.[a-zA-Z0-9]+$")
_SYNTHETIC = uuid.UUID("6f1c8f36-8e1e-4f55-9a36-0c3d1d4b2a10")


class ApiError(Exception):
    """An error response in the commercetools shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        oauth: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)
        self.oauth = oauth
        self.extra = extra

    def body(self) -> Json:
        error: Json = {"code": self.code, "message": self.message, **self.extra}
        body: Json = {"statusCode": self.status, "message": self.message, "errors": [error]}
        if self.oauth:
            # OAuth errors (AuthErrorResponse) add the RFC 6749 fields.
            body["message"] = self.code if self.status == 401 else self.message
            body["error"] = self.code
            body["error_description"] = self.message
        return body


def invalid_input(message: str, **extra: Any) -> ApiError:
    return ApiError(400, "InvalidInput", message, **extra)


def invalid_json(detail: str) -> ApiError:
    return ApiError(
        400,
        "InvalidJsonInput",
        "Request body does not contain valid JSON.",
        detailedErrorMessage=detail,
    )


def invalid_operation(message: str) -> ApiError:
    return ApiError(400, "InvalidOperation", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "ResourceNotFound", message)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    environ: dict[str, Any]
    _body: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        raw = environ.get("PATH_INFO", "") or "/"
        try:
            path = raw.encode("latin-1").decode("utf-8")
        except UnicodeError:
            path = raw
        return cls(
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=path,
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            environ=environ,
        )

    def header(self, name: str) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    @property
    def body(self) -> bytes:
        if self._body is None:
            try:
                length = int(self.environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            stream = self.environ.get("wsgi.input")
            self._body = stream.read(length) if stream is not None and length > 0 else b""
        return self._body

    def json(self) -> Json:
        try:
            value = json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise invalid_json("The body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise invalid_json("The body must be a JSON object.")
        return value

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Response:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, body, list(headers))


_REASONS = {
    200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}  # fmt: skip


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def register_api_client(
    db_path: str | os.PathLike[str],
    client_id: str,
    client_secret: str,
    scopes: Iterable[str],
    token_ttl_seconds: int | None = None,
) -> None:
    """Allow an API client (id, secret, scopes like ``manage_orders:uk-shop``) to get tokens."""
    conn = db.connect(db_path)
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO ct_api_clients (client_id, secret_hash, scopes, token_ttl_seconds) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET "
            "secret_hash = excluded.secret_hash, scopes = excluded.scopes, "
            "token_ttl_seconds = excluded.token_ttl_seconds",
            (client_id, _hash(client_secret), " ".join(scopes), token_ttl_seconds),
        )


# ---------------------------------------------------------------------------------------------
# Small validation helpers


def _require(obj: Json, name: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if name not in obj or obj[name] is None:
        raise ApiError(400, "RequiredField", f"A value is required for field {name}.", field=name)
    value = obj[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise invalid_json(f"{where} -> {name}: unexpected type {type(value).__name__}")
    return value


def _optional(obj: Json, name: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if obj.get(name) is None:
        return None
    return _require(obj, name, kinds, where)


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _enum(obj: Json, name: str, allowed: frozenset[str], where: str, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise ApiError(
                400, "RequiredField", f"A value is required for field {name}.", field=name
            )
        return None
    if value not in allowed:
        raise invalid_json(
            f"{where} -> {name}: Invalid enum value: {json.dumps(value)}. "
            f"Expected one of: {', '.join(sorted(allowed))}"
        )
    return str(value)


def _check_key(value: Any, what: str) -> str:
    if not isinstance(value, str) or not KEY_PATTERN.match(value):
        raise ApiError(
            400,
            "InvalidField",
            f"The value {json.dumps(value)} is not valid for field {what}. "
            "Keys must match [a-zA-Z0-9_-] and be 2 to 256 characters long.",
            field=what,
            invalidValue=value,
        )
    return value


def typed_money(draft: Any, where: str, *, cent_only: bool = False) -> Json:
    """A Money / HighPrecisionMoney draft as the API returns it (TypedMoney)."""
    if not isinstance(draft, dict):
        raise invalid_json(f"{where}: expected a money object")
    currency = draft.get("currencyCode")
    if currency not in FRACTION_DIGITS:
        raise ApiError(
            400,
            "InvalidField",
            f"The value {json.dumps(currency)} is not valid for field currencyCode.",
            field="currencyCode",
            invalidValue=currency,
        )
    default_digits = FRACTION_DIGITS[currency]
    kind = draft.get("type", "centPrecision")
    if kind == "centPrecision" or (cent_only and kind != "highPrecision"):
        cents = _require(draft, "centAmount", int, where)
        digits = draft.get("fractionDigits", default_digits)
        if digits != default_digits:
            raise invalid_input(
                f"{where}: fractionDigits {digits} does not match {currency} ({default_digits})."
            )
        if abs(cents) > INT64_MAX:
            raise ApiError(400, "MoneyOverflow", "A money amount is too large.")
        return {
            "type": "centPrecision",
            "currencyCode": currency,
            "centAmount": cents,
            "fractionDigits": default_digits,
        }
    if kind != "highPrecision" or cent_only:
        raise invalid_json(f"{where} -> type: Invalid money type {json.dumps(kind)}")
    digits = _require(draft, "fractionDigits", int, where)
    precise = _require(draft, "preciseAmount", int, where)
    if not default_digits < digits <= 20:
        raise invalid_input(
            f"{where}: fractionDigits of a high precision {currency} amount must be between "
            f"{default_digits + 1} and 20."
        )
    if abs(precise) > INT64_MAX:
        raise ApiError(400, "MoneyOverflow", "A money amount is too large.")
    exact = Decimal(precise).scaleb(-(digits - default_digits))
    rounded = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    cents = draft.get("centAmount")
    if cents is None:
        cents = rounded
    elif not isinstance(cents, int) or cents not in (
        int(exact.to_integral_value("ROUND_FLOOR")),
        int(exact.to_integral_value("ROUND_CEILING")),
    ):
        raise invalid_input(f"{where}: centAmount {cents} is not a rounding of preciseAmount.")
    return {
        "type": "highPrecision",
        "currencyCode": currency,
        "centAmount": cents,
        "preciseAmount": precise,
        "fractionDigits": digits,
    }


def _line_total(money: Json, quantity: int) -> Json:
    """Cent-precision total of quantity x unit price, rounded half even like the platform."""
    default = FRACTION_DIGITS[money["currencyCode"]]
    if money["type"] == "highPrecision":
        exact = (
            Decimal(money["preciseAmount"]).scaleb(-(money["fractionDigits"] - default)) * quantity
        )
        cents = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    else:
        cents = money["centAmount"] * quantity
    return {
        "type": "centPrecision",
        "currencyCode": money["currencyCode"],
        "centAmount": cents,
        "fractionDigits": default,
    }


def _price_scope(price: Json) -> tuple[Any, ...]:
    return (
        price["value"]["currencyCode"],
        price.get("country"),
        (price.get("customerGroup") or {}).get("id"),
        (price.get("channel") or {}).get("id"),
        price.get("validFrom"),
        price.get("validUntil"),
    )


def project_product(doc: Json, staged: bool) -> Json:
    """A stored Product as a ProductProjection (current or staged data)."""
    master = doc["masterData"]
    data = master["staged" if staged else "current"]
    projection = {k: v for k, v in doc.items() if k != "masterData"}
    projection.update(copy.deepcopy(data))
    projection["published"] = master.get("published", False)
    projection["hasStagedChanges"] = master.get("hasStagedChanges", False)
    return projection


def _is_reference(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("typeId"), str) and "id" in node


# ---------------------------------------------------------------------------------------------
# The app


ActionHandler = Callable[[Json, Json], None]


class CommercetoolsSandboxApp:
    """WSGI app for ``/oauth/token`` and ``/{projectKey}/...``; see the module docstring."""

    side = SIDE

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        project_key: str,
        *,
        token_ttl_seconds: int = DEFAULT_TOKEN_TTL,
        clock: Callable[[], datetime] | None = None,
        enforce_scopes: bool = True,
    ) -> None:
        self.db_path = os.fspath(db_path)
        self.project_key = project_key
        self.token_ttl_seconds = token_ttl_seconds
        self.enforce_scopes = enforce_scopes
        self._clock = clock or (lambda: db.sandbox_now(self.db_path))
        self.store = DocumentStore(self.db_path, clock=self._clock)
        self._order_actions: dict[str, ActionHandler] = {
            "updateSyncInfo": self._order_update_sync_info,
            "changeOrderState": self._order_change_state,
            "changeShipmentState": self._order_change_shipment_state,
            "changePaymentState": self._order_change_payment_state,
            "addDelivery": self._order_add_delivery,
            "addParcelToDelivery": self._order_add_parcel,
            "setParcelTrackingData": self._order_set_tracking,
            "addPayment": self._order_add_payment,
            "setOrderNumber": self._order_set_number,
            "setCustomType": self._set_custom_type,
            "setCustomField": self._set_custom_field,
        }
        self._inventory_actions: dict[str, ActionHandler] = {
            "addQuantity": self._inventory_add,
            "removeQuantity": self._inventory_remove,
            "changeQuantity": self._inventory_change,
            "setRestockableInDays": self._inventory_restockable,
            "setExpectedDelivery": self._inventory_expected,
            "setKey": self._set_key,
            "setSupplyChannel": self._inventory_supply_channel,
            "setCustomType": self._set_custom_type,
            "setCustomField": self._set_custom_field,
        }
        self._channel_actions: dict[str, ActionHandler] = {
            "changeKey": self._channel_change_key,
            "changeName": self._channel_change_name,
            "addRoles": self._channel_add_roles,
            "removeRoles": self._channel_remove_roles,
            "setRoles": self._channel_set_roles,
            "setAddress": self._channel_set_address,
            "setCustomType": self._set_custom_type,
            "setCustomField": self._set_custom_field,
        }
        self._product_actions: dict[str, ActionHandler] = {
            "changeName": self._product_change_name,
            "changeSlug": self._product_change_slug,
            "setDescription": self._product_set_description,
            "setKey": self._set_key,
            "setAttribute": self._product_set_attribute,
            "setAttributeInAllVariants": self._product_set_attribute_all,
            "addVariant": self._product_add_variant,
            "removeVariant": self._product_remove_variant,
            "setPrices": self._product_set_prices,
            "addPrice": self._product_add_price,
            "changePrice": self._product_change_price,
            "removePrice": self._product_remove_price,
            "setTaxCategory": self._product_set_tax_category,
            "setSku": self._product_set_sku,
            "publish": self._product_publish,
            "unpublish": self._product_unpublish,
        }
        self._actions: dict[str, dict[str, ActionHandler]] = {
            "orders": self._order_actions,
            "inventory": self._inventory_actions,
            "channels": self._channel_actions,
            "products": self._product_actions,
            "payments": {},
            "tax-categories": {},
        }

    def __repr__(self) -> str:
        return (
            f"CommercetoolsSandboxApp(db_path={self.db_path!r}, project_key={self.project_key!r})"
        )

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        request = Request.from_environ(environ)
        fault: str | None = None
        try:
            faults = load_faults(self.db_path, SIDE)
            if faults.latency_ms:
                time.sleep(faults.latency_ms / 1000)
            fault = self._status_fault(request, faults)
            response = self._dispatch(request, faults)
        except ApiError as error:
            if error.code == "ConcurrentModification" and error.extra.get("injected"):
                error.extra.pop("injected")
                fault = "409"
            response = _json_response(error.status, error.body(), error.headers)
        except Exception:
            logger.exception("sandbox error on %s %s", request.method, request.path)
            response = _json_response(
                500,
                {
                    "statusCode": 500,
                    "message": "Internal sandbox error.",
                    "errors": [{"code": "General", "message": "Internal sandbox error."}],
                },
            )
        seq = log_request(self.db_path, SIDE, request.method, request.path, response.status, fault)
        headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(response.body))),
            ("X-Correlation-ID", f"sandbox-{uuid.uuid4()}"),
            ("X-Sandbox-Request-Seq", str(seq)),
            *response.headers,
        ]
        start_response(f"{response.status} {_REASONS.get(response.status, '')}".strip(), headers)
        return [response.body]

    def _status_fault(self, request: Request, faults: FaultConfig) -> str | None:
        if not faults.any_status_faults or not faults.applies_to(request.path):
            return None
        if request.path.rstrip("/") == "/oauth/token" and not faults.include_auth:
            return None
        chosen = draw_fault(
            self.db_path,
            SIDE,
            faults,
            [
                ("429", faults.rate_429),
                ("502", faults.rate_502),
                ("503", faults.rate_503),
                ("504", faults.rate_504),
            ],
        )
        retry_after = [("Retry-After", str(faults.retry_after_seconds))]
        if chosen == "429":
            raise ApiError(
                429, "TooManyRequests", "Too many requests. Retry later.", headers=retry_after
            )
        if chosen == "502":
            raise ApiError(
                502, "General", "Bad Gateway: a scaling event is in progress; retry with backoff."
            )
        if chosen == "503":
            raise ApiError(
                503,
                "OverCapacity",
                "The service is temporarily over capacity; retry with exponential backoff.",
                headers=retry_after,
            )
        if chosen == "504":
            raise ApiError(504, "General", "Gateway Timeout: the upstream did not answer in time.")
        return None

    def _now(self) -> str:
        return db.format_timestamp(self._clock())

    # -- routing -----------------------------------------------------------------------------

    def _dispatch(self, request: Request, faults: FaultConfig) -> Response:
        path = request.path
        if path.rstrip("/") == "/oauth/token":
            if request.method != "POST":
                raise ApiError(405, "MethodNotAllowed", "Use POST for /oauth/token.")
            return self._token(request)
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != self.project_key:
            raise not_found(f"The endpoint '{path}' does not exist.")
        if len(parts) < 2 or parts[1] not in RESOURCE_SCOPES:
            raise not_found(f"The endpoint '{path}' does not exist.")
        resource = parts[1]
        rest = parts[2:]
        scopes = self._authenticate(request)
        write = request.method in ("POST", "DELETE")
        self._authorise(resource, scopes, write, request)
        if len(rest) > 1:
            raise not_found(f"The endpoint '{path}' does not exist.")
        if resource == "product-projections":
            if request.method != "GET":
                raise ApiError(405, "MethodNotAllowed", "Product projections are read-only.")
            return self._projections(request, rest[0] if rest else None)
        if request.method == "GET":
            if not rest:
                return self._query(request, resource, mapping_for(resource), ())
            doc = self._find(resource, rest[0])
            return self._document_response(200, resource, doc, request)
        if request.method == "POST":
            if not rest:
                return self._create(request, resource)
            if resource == "orders" and rest[0] == "import":
                return self._import_order(request)
            return self._update(request, resource, rest[0], faults)
        if request.method == "DELETE":
            if not rest:
                raise ApiError(405, "MethodNotAllowed", "DELETE needs a resource id or key.")
            return self._delete(request, resource, rest[0], faults)
        raise ApiError(405, "MethodNotAllowed", f"Method {request.method} is not allowed.")

    # -- auth --------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Make every issued token invalid (the next API call answers 401 invalid_token)."""
        conn = db.connect(self.db_path)
        with db.transaction(conn):
            conn.execute("UPDATE ct_tokens SET expires_at = 0")

    def _token(self, request: Request) -> Response:
        def invalid_client() -> ApiError:
            return ApiError(
                401,
                "invalid_client",
                "Please provide valid client credentials using HTTP Basic Authentication.",
                oauth=True,
            )

        header = request.header("Authorization") or ""
        if not header.startswith("Basic "):
            raise invalid_client()
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise invalid_client() from None
        client_id, _, secret = decoded.partition(":")
        if not client_id or not secret:
            raise invalid_client()
        conn = db.connect(self.db_path)
        registered = conn.execute(
            "SELECT secret_hash, scopes, token_ttl_seconds FROM ct_api_clients WHERE client_id = ?",
            (client_id,),
        ).fetchone()
        any_registered = conn.execute("SELECT 1 FROM ct_api_clients LIMIT 1").fetchone()
        if any_registered is not None and (
            registered is None or not secrets.compare_digest(registered[0], _hash(secret))
        ):
            raise invalid_client()
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        values = {k: v[-1] for k, v in {**request.query, **form}.items() if v}
        if values.get("grant_type") != "client_credentials":
            raise ApiError(
                400,
                "unsupported_grant_type",
                "Only grant_type=client_credentials is supported.",
                oauth=True,
            )
        allowed = registered[1].split() if registered else [f"manage_project:{self.project_key}"]
        requested = values.get("scope", "").replace(",", " ").split()
        for scope in requested:
            permission, _, rest = scope.partition(":")
            project = rest.split(":")[0]
            if not re.fullmatch(r"[a-z_]+", permission) or project != self.project_key:
                raise ApiError(400, "invalid_scope", f"Invalid scope: {scope}.", oauth=True)
            if not self._scope_allowed(permission, allowed):
                raise ApiError(
                    400,
                    "invalid_scope",
                    f"Scope {scope} is not granted to this client.",
                    oauth=True,
                )
        granted = requested or allowed
        ttl = int(registered[2]) if registered and registered[2] else self.token_ttl_seconds
        token = secrets.token_urlsafe(32)
        now = self._clock().timestamp()
        with db.transaction(conn):
            conn.execute("DELETE FROM ct_tokens WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO ct_tokens (token_hash, client_id, scopes, expires_at) VALUES (?, ?, ?, ?)",
                (_hash(token), client_id, " ".join(granted), now + ttl),
            )
        return _json_response(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": ttl,
                "scope": " ".join(granted),
            },
        )

    def _scope_allowed(self, permission: str, allowed: Iterable[str]) -> bool:
        permissions = {scope.split(":")[0] for scope in allowed}
        if "manage_project" in permissions or permission in permissions:
            return True
        return permission.startswith("view_") and "manage_" + permission[5:] in permissions

    def _authenticate(self, request: Request) -> set[str]:
        def invalid(description: str) -> ApiError:
            return ApiError(401, "invalid_token", description, oauth=True)

        header = request.header("Authorization") or ""
        if not header.startswith("Bearer "):
            raise invalid("Missing or malformed bearer token.")
        row = (
            db.connect(self.db_path)
            .execute(
                "SELECT scopes, expires_at FROM ct_tokens WHERE token_hash = ?",
                (_hash(header[7:].strip()),),
            )
            .fetchone()
        )
        if row is None:
            raise invalid("The token is unknown.")
        if float(row[1]) <= self._clock().timestamp():
            raise invalid("The token has expired.")
        return {scope.split(":")[0] for scope in str(row[0]).split()}

    def _authorise(
        self, resource: str, permissions: set[str], write: bool, request: Request
    ) -> None:
        if not self.enforce_scopes or "manage_project" in permissions:
            return
        view, manage = RESOURCE_SCOPES[resource]
        if resource == "product-projections":
            needed = ["view_products", "manage_products"]
            if request.param("staged") != "true":
                needed.insert(0, "view_published_products")
        elif write:
            needed = [manage] if manage else []
        else:
            needed = [view, manage] if manage else [view]
        if not any(p in permissions for p in needed):
            raise ApiError(
                403,
                "insufficient_scope",
                f"Insufficient scope. One of the following scopes is missing: {', '.join(needed)}",
                oauth=True,
            )

    # -- reading -----------------------------------------------------------------------------

    def _find(self, resource: str, identifier: str, *, for_update: bool = False) -> Json:
        doc: Json | None
        if identifier.startswith("key="):
            doc = self.store.get_by(resource, "key", identifier[4:])
        elif identifier.startswith("order-number=") and resource == "orders":
            doc = self.store.get_by(resource, "orderNumber", identifier[len("order-number=") :])
        else:
            doc = self.store.get(resource, identifier)
        if doc is None:
            raise not_found(f"The Resource with ID '{identifier}' was not found.")
        return doc

    def _int_param(self, request: Request, name: str, default: int, low: int, high: int) -> int:
        text = request.param(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise invalid_input(
                f"The parameter '{name}' must be an integer, got '{text}'."
            ) from None
        if not low <= value <= high:
            raise invalid_input(
                f"The parameter '{name}' must be between {low} and {high}, got {value}.",
                field=name,
            )
        return value

    def _bool_param(self, request: Request, name: str, default: bool) -> bool:
        text = request.param(name)
        if text is None:
            return default
        if text not in ("true", "false"):
            raise invalid_input(f"The parameter '{name}' must be true or false, got '{text}'.")
        return text == "true"

    def _variables(self, request: Request) -> dict[str, str]:
        variables: dict[str, str] = {}
        for name, values in request.query.items():
            if name.startswith("var"):
                if not _VAR.match(name):
                    raise invalid_input(f"Invalid input variable name '{name}'.")
                variables[name[4:]] = values[0]
        return variables

    def _expansions(self, request: Request) -> list[str]:
        paths = request.query.get("expand", [])
        for path in paths:
            if not _EXPAND.match(path):
                raise invalid_input(
                    f"Invalid expansion path '{path}': use dotted field names and [*] for arrays."
                )
        return paths

    def _query(
        self,
        request: Request,
        resource: str,
        mapping: RootMapping,
        base_filter: tuple[CompiledPredicate, ...],
        transform: Callable[[Json], Json] | None = None,
    ) -> Response:
        limit = self._int_param(request, "limit", 20, 1, MAX_LIMIT)
        offset = self._int_param(request, "offset", 0, 0, MAX_OFFSET)
        with_total = self._bool_param(request, "withTotal", True)
        expand = self._expansions(request)
        wheres = request.query.get("where", [])
        try:
            compiled = compile_where(wheres, self._variables(request), mapping)
            sort = compile_sort(request.query.get("sort", []), mapping)
        except PredicateError as error:
            raise invalid_input(f"Malformed parameter: {error}") from None
        where = (*base_filter, compiled) if compiled is not None else base_filter
        page = self.store.query(
            resource,
            where=where,
            sort=sort,
            limit=limit,
            offset=offset,
            with_total=with_total,
            total_cap=MAX_OFFSET if wheres else None,
        )
        if transform is None:
            # Splice stored JSON: paging 25,000 orders must not parse every document twice. Only
            # documents that hold a field an expansion starts with are parsed and re-encoded.
            markers = [f'"{path.split(".")[0].removesuffix("[*]")}":' for path in expand]
            parts = list(page.bodies)
            parsed = {
                index: json.loads(body)
                for index, body in enumerate(parts)
                if any(marker in body for marker in markers)
            }
            self._expand(list(parsed.values()), expand)  # one look-up per resource and page
            for index, doc in parsed.items():
                parts[index] = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
            results = ("[" + ",".join(parts) + "]").encode("utf-8")
        else:
            docs = [transform(json.loads(body)) for body in page.bodies]
            self._expand(docs, expand)
            results = json.dumps(docs, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        head = {"limit": limit, "offset": offset, "count": len(page.bodies)}
        if page.total is not None:
            head["total"] = page.total
        prefix = json.dumps(head, separators=(",", ":"))[:-1].encode("utf-8")
        return Response(200, prefix + b',"results":' + results + b"}")

    def _document_response(
        self, status: int, resource: str, doc: Json, request: Request
    ) -> Response:
        self._expand([doc], self._expansions(request))
        return _json_response(status, doc)

    def _expand(self, docs: list[Json], paths: list[str]) -> None:
        for path in paths:
            frontier: list[Any] = list(docs)
            for segment in path.split("."):
                name, star = (segment[:-3], True) if segment.endswith("[*]") else (segment, False)
                found: list[Any] = []
                for node in frontier:
                    if _is_reference(node) and isinstance(node.get("obj"), dict):
                        node = node["obj"]
                    if not isinstance(node, dict) or node.get(name) is None:
                        continue
                    value = node[name]
                    if star and isinstance(value, list):
                        found.extend(value)
                    elif not star and not isinstance(value, list):
                        found.append(value)
                self._resolve_references([n for n in found if _is_reference(n)])
                frontier = found

    def _resolve_references(self, references: list[Json]) -> None:
        by_resource: dict[str, list[Json]] = {}
        for ref in references:
            resource = TYPE_ID_RESOURCES.get(ref["typeId"])
            if resource is not None and "obj" not in ref:
                by_resource.setdefault(resource, []).append(ref)
        for resource, refs in by_resource.items():
            loaded = self.store.get_many(resource, (str(r["id"]) for r in refs))
            for ref in refs:
                if ref["id"] in loaded:
                    ref["obj"] = copy.deepcopy(loaded[ref["id"]])

    def _projections(self, request: Request, identifier: str | None) -> Response:
        staged = self._bool_param(request, "staged", False)
        if identifier is None:
            published: tuple[CompiledPredicate, ...] = ()
            if not staged:
                published = (
                    CompiledPredicate("json_type(d.body, '$.masterData.published') = 'true'", []),
                )
            return self._query(
                request,
                "products",
                projection_mapping(staged),
                published,
                transform=lambda doc: project_product(doc, staged),
            )
        doc = self._find("products", identifier)
        if not staged and not doc["masterData"].get("published"):
            raise not_found(f"The Resource with ID '{identifier}' was not found.")
        return self._document_response(200, "products", project_product(doc, staged), request)

    # -- references --------------------------------------------------------------------------

    def _reference(self, identifier: Any, type_id: str, where: str) -> Json:
        """Resolve a ResourceIdentifier ({typeId, id | key}) to a stored document."""
        if not isinstance(identifier, dict):
            raise invalid_json(f"{where}: expected a resource identifier")
        if identifier.get("typeId", type_id) != type_id:
            raise invalid_input(f"{where}: expected typeId '{type_id}'.")
        resource = TYPE_ID_RESOURCES[type_id]
        if identifier.get("id") is not None:
            doc = self.store.get(resource, str(identifier["id"]))
        elif identifier.get("key") is not None:
            doc = self.store.get_by(resource, "key", str(identifier["key"]))
        else:
            raise invalid_input(f"{where}: a resource identifier needs 'id' or 'key'.")
        if doc is None:
            missing = {k: identifier[k] for k in ("id", "key") if identifier.get(k) is not None}
            raise ApiError(
                400,
                "ReferencedResourceNotFound",
                f"The referenced object of type '{type_id}' {json.dumps(missing)} was not found. "
                "It either doesn't exist, or it can't be accessed from this endpoint.",
                typeId=type_id,
                **missing,
            )
        return doc

    def _unmanaged_reference(self, identifier: Any, type_id: str, where: str) -> Json:
        """A reference to a type the sandbox does not store (product types, custom types)."""
        if not isinstance(identifier, dict):
            raise invalid_json(f"{where}: expected a resource identifier")
        if identifier.get("id") is not None:
            return {"typeId": type_id, "id": str(identifier["id"])}
        if identifier.get("key") is not None:
            synthetic = uuid.uuid5(_SYNTHETIC, f"{type_id}:{identifier['key']}")
            return {"typeId": type_id, "id": str(synthetic)}
        raise invalid_input(f"{where}: a resource identifier needs 'id' or 'key'.")

    # -- writing: create, update, delete ------------------------------------------------------

    def _stamp(self, doc: Json) -> Json:
        now = self._now()
        return {
            "id": str(uuid.uuid4()),
            "version": 1,
            "createdAt": now,
            "lastModifiedAt": now,
            **doc,
        }

    def _insert(self, resource: str, doc: Json) -> Json:
        try:
            self.store.insert(resource, doc)
        except DuplicateDocument as error:
            raise self._duplicate(error) from None
        return doc

    @staticmethod
    def _duplicate(error: DuplicateDocument) -> ApiError:
        return ApiError(
            400,
            "DuplicateField",
            f"A duplicate value {json.dumps(error.value)} exists for field '{error.field}'.",
            field=error.field,
            duplicateValue=error.value,
        )

    def _create(self, request: Request, resource: str) -> Response:
        draft = request.json()
        creators: dict[str, Callable[[Json], Json]] = {
            "inventory": self._inventory_draft,
            "channels": self._channel_draft,
            "products": self._product_draft,
            "tax-categories": self._tax_category_draft,
        }
        if resource not in creators:
            raise ApiError(405, "MethodNotAllowed", f"Creating {resource} is not supported.")
        doc = self._insert(resource, creators[resource](draft))
        return self._document_response(201, resource, doc, request)

    def _update(
        self, request: Request, resource: str, identifier: str, faults: FaultConfig
    ) -> Response:
        body = request.json()
        actions = body.get("actions")
        if not isinstance(actions, list):
            raise invalid_json("actions: a list of update actions is required")
        if len(actions) > MAX_ACTIONS:
            raise ApiError(
                413,
                "InvalidInput",
                f"The update actions count of {len(actions)} exceeds the limit of {MAX_ACTIONS}.",
            )
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise invalid_json("version: an integer version is required")
        handlers = self._actions[resource]
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("action"), str):
                raise invalid_json("actions: every update action needs an 'action' name")
            if action["action"] not in handlers:
                raise invalid_input(
                    f"Unknown update action '{action['action']}' for {resource}.",
                    action=action["action"],
                )
        doc_id = self._find(resource, identifier)["id"]
        self._maybe_conflict(request, resource, doc_id, faults)

        def apply(doc: Json) -> None:
            for action in actions:
                handlers[action["action"]](doc, action)
            if resource == "products":
                master = doc["masterData"]
                master["hasStagedChanges"] = master["current"] != master["staged"]

        try:
            doc, _ = self.store.update_checked(resource, doc_id, version, apply)
        except VersionConflict as error:
            raise self._conflict(error) from None
        except DuplicateDocument as error:
            raise self._duplicate(error) from None
        except DocumentNotFound:
            raise not_found(f"The Resource with ID '{doc_id}' was not found.") from None
        return self._document_response(200, resource, doc, request)

    @staticmethod
    def _conflict(error: VersionConflict, injected: bool = False) -> ApiError:
        extra: dict[str, Any] = {"currentVersion": error.current_version}
        if injected:
            extra["injected"] = True
        return ApiError(409, "ConcurrentModification", str(error), **extra)

    def _maybe_conflict(
        self, request: Request, resource: str, doc_id: str, faults: FaultConfig
    ) -> None:
        """Injected 409: another writer got there first (the stored version really moves)."""
        if faults.rate_409 <= 0 or not faults.applies_to(request.path):
            return
        if draw_fault(self.db_path, SIDE, faults, [("409", faults.rate_409)]) is None:
            return
        bumped = self.store.bump_version(resource, doc_id)
        if bumped is None:
            return
        expected = (
            request.json().get("version") if request.method == "POST" else request.param("version")
        )
        try:
            expected_version = int(expected)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            expected_version = bumped["version"] - 1
        raise self._conflict(VersionConflict(doc_id, expected_version, bumped["version"]), True)

    def _delete(
        self, request: Request, resource: str, identifier: str, faults: FaultConfig
    ) -> Response:
        text = request.param("version")
        if text is None:
            raise invalid_input(
                "The query parameter 'version' is required to delete.", field="version"
            )
        try:
            version = int(text)
        except ValueError:
            raise invalid_input(
                f"The parameter 'version' must be an integer, got '{text}'."
            ) from None
        doc = self._find(resource, identifier)
        self._maybe_conflict(request, resource, doc["id"], faults)
        if resource == "channels":
            in_use = self.store.conn.execute(
                "SELECT 1 FROM ct_documents WHERE resource = 'inventory' AND supply_channel = ? LIMIT 1",
                (doc["id"],),
            ).fetchone()
            if in_use is not None:
                raise ApiError(
                    400,
                    "ReferenceExists",
                    "Can not delete a channel while it is referenced by inventory entries.",
                    referencedBy="inventory-entry",
                )
        try:
            deleted = self.store.delete(resource, doc["id"], version)
        except VersionConflict as error:
            raise self._conflict(error) from None
        except DocumentNotFound:
            raise not_found(f"The Resource with ID '{identifier}' was not found.") from None
        return self._document_response(200, resource, deleted, request)

    # -- shared actions ----------------------------------------------------------------------

    def _set_key(self, doc: Json, action: Json) -> None:
        key = action.get("key")
        if key is None:
            doc.pop("key", None)
        else:
            doc["key"] = _check_key(key, "key")

    def _set_custom_type(self, doc: Json, action: Json) -> None:
        if action.get("type") is None:
            doc.pop("custom", None)
            return
        fields = _optional(action, "fields", dict, "setCustomType") or {}
        doc["custom"] = {
            "type": self._unmanaged_reference(action["type"], "type", "setCustomType -> type"),
            "fields": copy.deepcopy(fields),
        }

    def _set_custom_field(self, doc: Json, action: Json) -> None:
        name = _require(action, "name", str, "setCustomField")
        custom = doc.get("custom")
        if not isinstance(custom, dict):
            raise invalid_operation("The resource has no custom type; use setCustomType first.")
        fields = custom.setdefault("fields", {})
        if action.get("value") is None:
            fields.pop(name, None)
        else:
            fields[name] = copy.deepcopy(action["value"])

    # -- orders ------------------------------------------------------------------------------

    def _order_update_sync_info(self, doc: Json, action: Json) -> None:
        channel = self._reference(action.get("channel"), "channel", "updateSyncInfo -> channel")
        if not {"OrderExport", "OrderImport"} & set(channel.get("roles", [])):
            raise invalid_input(
                f"The channel '{channel.get('key', channel['id'])}' needs the role OrderExport or "
                "OrderImport to be used in updateSyncInfo."
            )
        entry: Json = {"channel": {"typeId": "channel", "id": channel["id"]}}
        external = _optional(action, "externalId", str, "updateSyncInfo")
        if external is not None:
            entry["externalId"] = external
        entry["syncedAt"] = _optional(action, "syncedAt", str, "updateSyncInfo") or self._now()
        doc.setdefault("syncInfo", []).append(entry)

    def _order_change_state(self, doc: Json, action: Json) -> None:
        doc["orderState"] = _enum(action, "orderState", ORDER_STATES, "changeOrderState", True)

    def _order_change_shipment_state(self, doc: Json, action: Json) -> None:
        state = _enum(action, "shipmentState", SHIPMENT_STATES, "changeShipmentState", False)
        if state is None:
            doc.pop("shipmentState", None)
        else:
            doc["shipmentState"] = state

    def _order_change_payment_state(self, doc: Json, action: Json) -> None:
        state = _enum(action, "paymentState", PAYMENT_STATES, "changePaymentState", False)
        if state is None:
            doc.pop("paymentState", None)
        else:
            doc["paymentState"] = state

    @staticmethod
    def _deliveries(doc: Json) -> list[Json]:
        return (doc.get("shippingInfo") or {}).get("deliveries") or []

    def _delivery_items(self, doc: Json, items: Any, where: str) -> list[Json]:
        if items is None:
            return []
        if not isinstance(items, list):
            raise invalid_json(f"{where} -> items: expected a list")
        known = {li["id"] for li in doc.get("lineItems", [])} | {
            cli["id"] for cli in doc.get("customLineItems", [])
        }
        out = []
        for item in items:
            if not isinstance(item, dict):
                raise invalid_json(f"{where} -> items: expected objects")
            item_id = _require(item, "id", str, f"{where} -> items")
            quantity = _require(item, "quantity", int, f"{where} -> items")
            if item_id not in known:
                raise invalid_input(f"{where}: the order has no line item with id '{item_id}'.")
            out.append({"id": item_id, "quantity": quantity})
        return out

    def _parcel(self, doc: Json, draft: Json, where: str, key_name: str = "key") -> Json:
        parcel: Json = {"id": str(uuid.uuid4()), "createdAt": self._now()}
        key = draft.get(key_name)
        if key is not None:
            _check_key(key, key_name)
            existing = {p.get("key") for d in self._deliveries(doc) for p in d.get("parcels", [])}
            if key in existing:
                raise ApiError(
                    400,
                    "DuplicateField",
                    f"A parcel with key '{key}' already exists in this order.",
                    field="parcelKey",
                    duplicateValue=key,
                )
            parcel["key"] = key
        for name in ("measurements", "trackingData"):
            if draft.get(name) is not None:
                parcel[name] = copy.deepcopy(_require(draft, name, dict, where))
        parcel["items"] = self._delivery_items(doc, draft.get("items"), where)
        return parcel

    def _order_add_delivery(self, doc: Json, action: Json) -> None:
        if not isinstance(doc.get("shippingInfo"), dict):
            raise invalid_operation("The order has no shippingInfo; a delivery cannot be added.")
        delivery: Json = {"id": str(uuid.uuid4()), "createdAt": self._now()}
        key = action.get("deliveryKey")
        if key is not None:
            _check_key(key, "deliveryKey")
            if any(d.get("key") == key for d in self._deliveries(doc)):
                raise ApiError(
                    400,
                    "DuplicateField",
                    f"A delivery with key '{key}' already exists in this order.",
                    field="deliveryKey",
                    duplicateValue=key,
                )
            delivery["key"] = key
        delivery["items"] = self._delivery_items(doc, action.get("items"), "addDelivery")
        deliveries = doc["shippingInfo"].setdefault("deliveries", [])
        parcels: list[Json] = []
        delivery["parcels"] = parcels
        # Appended first so that parcel keys are checked against this delivery's siblings too.
        deliveries.append(delivery)
        for draft in _optional(action, "parcels", list, "addDelivery") or []:
            if not isinstance(draft, dict):
                raise invalid_json("addDelivery -> parcels: expected objects")
            parcels.append(self._parcel(doc, draft, "addDelivery -> parcels"))
        if action.get("address") is not None:
            delivery["address"] = copy.deepcopy(_require(action, "address", dict, "addDelivery"))
        if action.get("custom") is not None:
            delivery["custom"] = copy.deepcopy(action["custom"])

    def _order_add_parcel(self, doc: Json, action: Json) -> None:
        delivery_id = action.get("deliveryId")
        delivery_key = action.get("deliveryKey")
        if delivery_id is None and delivery_key is None:
            raise invalid_input("addParcelToDelivery needs deliveryId or deliveryKey.")
        for delivery in self._deliveries(doc):
            if (delivery_id is not None and delivery["id"] == delivery_id) or (
                delivery_id is None and delivery.get("key") == delivery_key
            ):
                delivery.setdefault("parcels", []).append(
                    self._parcel(doc, action, "addParcelToDelivery", key_name="parcelKey")
                )
                return
        raise invalid_input(f"The order has no delivery {json.dumps(delivery_id or delivery_key)}.")

    def _order_set_tracking(self, doc: Json, action: Json) -> None:
        parcel_id = action.get("parcelId")
        parcel_key = action.get("parcelKey")
        if parcel_id is None and parcel_key is None:
            raise invalid_input("setParcelTrackingData needs parcelId or parcelKey.")
        for delivery in self._deliveries(doc):
            for parcel in delivery.get("parcels", []):
                if (parcel_id is not None and parcel["id"] == parcel_id) or (
                    parcel_id is None and parcel.get("key") == parcel_key
                ):
                    tracking = _optional(action, "trackingData", dict, "setParcelTrackingData")
                    if tracking is None:
                        parcel.pop("trackingData", None)
                    else:
                        parcel["trackingData"] = copy.deepcopy(tracking)
                    return
        raise invalid_input(f"The order has no parcel {json.dumps(parcel_id or parcel_key)}.")

    def _order_add_payment(self, doc: Json, action: Json) -> None:
        payment = self._reference(action.get("payment"), "payment", "addPayment -> payment")
        payments = doc.setdefault("paymentInfo", {}).setdefault("payments", [])
        if any(p.get("id") == payment["id"] for p in payments):
            raise invalid_operation(f"The payment '{payment['id']}' is already on this order.")
        payments.append({"typeId": "payment", "id": payment["id"]})

    def _order_set_number(self, doc: Json, action: Json) -> None:
        if doc.get("orderNumber") is not None:
            raise invalid_operation("The orderNumber is already set and cannot be changed.")
        number = _optional(action, "orderNumber", str, "setOrderNumber")
        if number is not None:
            doc["orderNumber"] = number

    def _import_order(self, request: Request) -> Response:
        draft = request.json()
        order: Json = {
            "orderState": _enum(draft, "orderState", ORDER_STATES, "orderImport", False) or "Open",
            "totalPrice": typed_money(draft.get("totalPrice"), "totalPrice", cent_only=True),
            "lineItems": [],
            "customLineItems": [],
            "syncInfo": [],
            "shippingMode": "Single",
            "origin": "Customer",
            "taxRoundingMode": draft.get("taxRoundingMode", "HalfEven"),
            "taxCalculationMode": draft.get("taxCalculationMode", "LineItemLevel"),
            "inventoryMode": draft.get("inventoryMode", "None"),
        }
        for name, allowed in (("shipmentState", SHIPMENT_STATES), ("paymentState", PAYMENT_STATES)):
            value = _enum(draft, name, allowed, "orderImport", False)
            if value is not None:
                order[name] = value
        for name in (
            "orderNumber", "customerId", "customerEmail", "country", "completedAt",
            "shippingAddress", "billingAddress", "custom", "store", "customerGroup",
        ):  # fmt: skip
            if draft.get(name) is not None:
                order[name] = copy.deepcopy(draft[name])
        for index, line in enumerate(_optional(draft, "lineItems", list, "orderImport") or []):
            where = f"lineItems[{index}]"
            quantity = _require(line, "quantity", int, where)
            price = _require(line, "price", dict, where)
            unit = typed_money(price.get("value"), f"{where} -> price -> value")
            variant = copy.deepcopy(_require(line, "variant", dict, where))
            variant.setdefault("id", 1)
            item: Json = {
                "id": str(uuid.uuid4()),
                "productId": line.get("productId") or str(uuid.uuid4()),
                "name": copy.deepcopy(_require(line, "name", dict, where)),
                "variant": variant,
                "price": {"id": str(uuid.uuid4()), "value": unit},
                "quantity": quantity,
                "totalPrice": _line_total(unit, quantity),
                "discountedPricePerQuantity": [],
                "state": [],
                "priceMode": "Platform",
                "lineItemMode": "Standard",
            }
            for name in ("taxRate", "supplyChannel", "distributionChannel", "taxedPrice", "custom"):
                if line.get(name) is not None:
                    item[name] = copy.deepcopy(line[name])
            order["lineItems"].append(item)
        for index, line in enumerate(
            _optional(draft, "customLineItems", list, "orderImport") or []
        ):
            where = f"customLineItems[{index}]"
            quantity = _require(line, "quantity", int, where)
            money = typed_money(line.get("money"), f"{where} -> money")
            slug = _require(line, "slug", str, where)
            item = {
                "id": str(uuid.uuid4()),
                "name": copy.deepcopy(_require(line, "name", dict, where)),
                "money": money,
                "totalPrice": _line_total(money, quantity),
                "slug": slug,
                "quantity": quantity,
                "discountedPricePerQuantity": [],
                "state": [],
                "priceMode": "Standard",
            }
            for name in ("taxRate", "taxCategory", "taxedPrice", "custom"):
                if line.get(name) is not None:
                    item[name] = copy.deepcopy(line[name])
            order["customLineItems"].append(item)
        if draft.get("taxedPrice") is not None:
            taxed = _require(draft, "taxedPrice", dict, "orderImport")
            order["taxedPrice"] = {
                "totalNet": typed_money(
                    taxed.get("totalNet"), "taxedPrice -> totalNet", cent_only=True
                ),
                "totalGross": typed_money(
                    taxed.get("totalGross"), "taxedPrice -> totalGross", cent_only=True
                ),
                "taxPortions": [
                    {
                        **copy.deepcopy(p),
                        "amount": typed_money(
                            p.get("amount"), "taxPortions -> amount", cent_only=True
                        ),
                    }
                    for p in taxed.get("taxPortions", [])
                ],
            }
        if draft.get("shippingInfo") is not None:
            shipping = copy.deepcopy(_require(draft, "shippingInfo", dict, "orderImport"))
            shipping["price"] = typed_money(
                shipping.get("price"), "shippingInfo -> price", cent_only=True
            )
            shipping.setdefault("deliveries", [])
            shipping.setdefault("shippingMethodState", "MatchesCart")
            order["shippingInfo"] = shipping
        if draft.get("paymentInfo") is not None:
            refs = (_require(draft, "paymentInfo", dict, "orderImport").get("payments")) or []
            order["paymentInfo"] = {
                "payments": [
                    {"typeId": "payment", "id": self._reference(r, "payment", "paymentInfo")["id"]}
                    for r in refs
                ]
            }
        doc = self._insert("orders", self._stamp(order))
        return self._document_response(201, "orders", doc, request)

    # -- inventory ---------------------------------------------------------------------------

    def _inventory_draft(self, draft: Json) -> Json:
        entry: Json = {
            "sku": _require(draft, "sku", str, "InventoryEntryDraft"),
            "quantityOnStock": _require(draft, "quantityOnStock", int, "InventoryEntryDraft"),
        }
        entry["availableQuantity"] = entry["quantityOnStock"]
        if draft.get("supplyChannel") is not None:
            channel = self._reference(draft["supplyChannel"], "channel", "supplyChannel")
            entry["supplyChannel"] = {"typeId": "channel", "id": channel["id"]}
        if draft.get("key") is not None:
            entry["key"] = _check_key(draft["key"], "key")
        for name, kinds in (("restockableInDays", int), ("expectedDelivery", str)):
            if draft.get(name) is not None:
                entry[name] = _require(draft, name, kinds, "InventoryEntryDraft")
        if draft.get("custom") is not None:
            self._set_custom_type(entry, draft["custom"])
        return self._stamp(entry)

    @staticmethod
    def _quantity(action: Json) -> int:
        return int(_require(action, "quantity", int, action["action"]))

    def _inventory_add(self, doc: Json, action: Json) -> None:
        quantity = self._quantity(action)
        doc["quantityOnStock"] += quantity
        doc["availableQuantity"] = doc.get("availableQuantity", 0) + quantity

    def _inventory_remove(self, doc: Json, action: Json) -> None:
        quantity = self._quantity(action)
        # The API lets stock go below zero.
        doc["quantityOnStock"] -= quantity
        doc["availableQuantity"] = doc.get("availableQuantity", 0) - quantity

    def _inventory_change(self, doc: Json, action: Json) -> None:
        quantity = self._quantity(action)
        reserved = doc["quantityOnStock"] - doc.get("availableQuantity", doc["quantityOnStock"])
        doc["quantityOnStock"] = quantity
        doc["availableQuantity"] = quantity - reserved

    def _inventory_restockable(self, doc: Json, action: Json) -> None:
        days = _optional(action, "restockableInDays", int, "setRestockableInDays")
        if days is None:
            doc.pop("restockableInDays", None)
        else:
            doc["restockableInDays"] = days

    def _inventory_expected(self, doc: Json, action: Json) -> None:
        expected = _optional(action, "expectedDelivery", str, "setExpectedDelivery")
        if expected is None:
            doc.pop("expectedDelivery", None)
        else:
            doc["expectedDelivery"] = expected

    def _inventory_supply_channel(self, doc: Json, action: Json) -> None:
        if action.get("supplyChannel") is None:
            doc.pop("supplyChannel", None)
            return
        channel = self._reference(action["supplyChannel"], "channel", "setSupplyChannel")
        doc["supplyChannel"] = {"typeId": "channel", "id": channel["id"]}

    # -- channels ----------------------------------------------------------------------------

    @staticmethod
    def _roles(value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or any(r not in CHANNEL_ROLES for r in value):
            raise invalid_json(
                f"{where} -> roles: expected a list of {', '.join(sorted(CHANNEL_ROLES))}"
            )
        return list(dict.fromkeys(value))

    def _channel_draft(self, draft: Json) -> Json:
        channel: Json = {"key": _require(draft, "key", str, "ChannelDraft")}
        roles = self._roles(draft.get("roles", ["InventorySupply"]), "ChannelDraft")
        if not roles:
            raise invalid_operation("A channel needs at least one role.")
        channel["roles"] = roles
        for name in ("name", "description", "address", "geoLocation"):
            if draft.get(name) is not None:
                channel[name] = copy.deepcopy(draft[name])
        if draft.get("custom") is not None:
            self._set_custom_type(channel, draft["custom"])
        return self._stamp(channel)

    def _channel_change_key(self, doc: Json, action: Json) -> None:
        doc["key"] = _require(action, "key", str, "changeKey")

    def _channel_change_name(self, doc: Json, action: Json) -> None:
        name = _optional(action, "name", dict, "changeName")
        if name is None:
            doc.pop("name", None)
        else:
            doc["name"] = copy.deepcopy(name)

    def _channel_add_roles(self, doc: Json, action: Json) -> None:
        roles = self._roles(action.get("roles"), "addRoles")
        doc["roles"] = list(dict.fromkeys([*doc.get("roles", []), *roles]))

    def _channel_remove_roles(self, doc: Json, action: Json) -> None:
        roles = self._roles(action.get("roles"), "removeRoles")
        remaining = [r for r in doc.get("roles", []) if r not in roles]
        if not remaining:
            raise invalid_operation("A channel needs at least one role.")
        doc["roles"] = remaining

    def _channel_set_roles(self, doc: Json, action: Json) -> None:
        roles = self._roles(action.get("roles"), "setRoles")
        if not roles:
            raise invalid_operation("A channel needs at least one role.")
        doc["roles"] = roles

    def _channel_set_address(self, doc: Json, action: Json) -> None:
        address = _optional(action, "address", dict, "setAddress")
        if address is None:
            doc.pop("address", None)
        else:
            doc["address"] = copy.deepcopy(address)

    # -- tax categories ----------------------------------------------------------------------

    def _tax_category_draft(self, draft: Json) -> Json:
        if self.store.count("tax-categories") >= MAX_TAX_CATEGORIES:
            raise ApiError(
                400,
                "MaxResourceLimitExceeded",
                f"You have exceeded the limit of {MAX_TAX_CATEGORIES} tax categories.",
                exceededResource="tax-category",
            )
        category: Json = {"name": _require(draft, "name", str, "TaxCategoryDraft"), "rates": []}
        for name in ("key", "description"):
            if draft.get(name) is not None:
                category[name] = _require(draft, name, str, "TaxCategoryDraft")
        for index, rate in enumerate(_optional(draft, "rates", list, "TaxCategoryDraft") or []):
            where = f"rates[{index}]"
            if not isinstance(rate, dict):
                raise invalid_json(f"{where}: expected an object")
            amount = _require(rate, "amount", (int, float), where)
            if not 0 <= amount <= 1:
                raise ApiError(
                    400,
                    "InvalidField",
                    f"The value {amount} is not valid for field amount: a rate is a fraction "
                    "between 0 and 1 (0.2 for 20 %).",
                    field="amount",
                    invalidValue=amount,
                )
            category["rates"].append(
                {
                    "id": secrets.token_hex(4),
                    "name": _require(rate, "name", str, where),
                    "amount": amount,
                    "includedInPrice": _require(rate, "includedInPrice", bool, where),
                    "country": _require(rate, "country", str, where),
                    "subRates": copy.deepcopy(rate.get("subRates", [])),
                    **{k: rate[k] for k in ("state", "key") if rate.get(k) is not None},
                }
            )
        return self._stamp(category)

    # -- products ----------------------------------------------------------------------------

    def _price(self, draft: Any, where: str, price_id: str | None = None) -> Json:
        if not isinstance(draft, dict):
            raise invalid_json(f"{where}: expected a price object")
        price: Json = {
            "id": price_id or str(uuid.uuid4()),
            "value": typed_money(draft.get("value"), f"{where} -> value"),
        }
        for name in ("key", "country", "validFrom", "validUntil", "tiers", "custom"):
            if draft.get(name) is not None:
                price[name] = copy.deepcopy(draft[name])
        if draft.get("channel") is not None:
            channel = self._reference(draft["channel"], "channel", f"{where} -> channel")
            price["channel"] = {"typeId": "channel", "id": channel["id"]}
        if draft.get("customerGroup") is not None:
            price["customerGroup"] = self._unmanaged_reference(
                draft["customerGroup"], "customer-group", f"{where} -> customerGroup"
            )
        return price

    @staticmethod
    def _check_prices(prices: list[Json]) -> None:
        if len(prices) > MAX_PRICES:
            raise invalid_input(f"A variant can have at most {MAX_PRICES} prices.")
        seen: set[tuple[Any, ...]] = set()
        for price in prices:
            scope = _price_scope(price)
            if scope in seen:
                raise ApiError(
                    400,
                    "DuplicatePriceScope",
                    "Duplicate price scope: "
                    f"{price['value']['currencyCode']}/{price.get('country') or '-'}; "
                    "prices of one variant need distinct scopes.",
                    conflictingPrice=price,
                )
            seen.add(scope)

    def _variant(self, draft: Any, variant_id: int, where: str) -> Json:
        if not isinstance(draft, dict):
            raise invalid_json(f"{where}: expected a variant object")
        variant: Json = {"id": variant_id}
        if draft.get("sku") is not None:
            variant["sku"] = _require(draft, "sku", str, where)
        if draft.get("key") is not None:
            variant["key"] = _require(draft, "key", str, where)
        prices = [
            self._price(p, f"{where} -> prices")
            for p in (_optional(draft, "prices", list, where) or [])
        ]
        self._check_prices(prices)
        variant["prices"] = prices
        attributes = _optional(draft, "attributes", list, where) or []
        for attribute in attributes:
            if not isinstance(attribute, dict) or not isinstance(attribute.get("name"), str):
                raise invalid_json(f"{where} -> attributes: each needs a name")
        variant["attributes"] = copy.deepcopy(attributes)
        variant["images"] = copy.deepcopy(draft.get("images", []))
        variant["assets"] = copy.deepcopy(draft.get("assets", []))
        return variant

    @staticmethod
    def _check_variant_skus(data: Json) -> None:
        skus = [v.get("sku") for v in [data["masterVariant"], *data["variants"]] if v.get("sku")]
        for sku in skus:
            if skus.count(sku) > 1:
                raise ApiError(
                    400,
                    "DuplicateField",
                    f"A duplicate value {json.dumps(sku)} exists for field 'sku'.",
                    field="sku",
                    duplicateValue=sku,
                )

    def _product_draft(self, draft: Json) -> Json:
        where = "ProductDraft"
        data: Json = {
            "name": copy.deepcopy(_require(draft, "name", dict, where)),
            "slug": copy.deepcopy(_require(draft, "slug", dict, where)),
            "categories": copy.deepcopy(draft.get("categories", [])),
            "categoryOrderHints": {},
            "searchKeywords": {},
        }
        if draft.get("description") is not None:
            data["description"] = copy.deepcopy(draft["description"])
        data["masterVariant"] = self._variant(draft.get("masterVariant") or {}, 1, "masterVariant")
        variants = _optional(draft, "variants", list, where) or []
        if len(variants) + 1 > MAX_VARIANTS:
            raise invalid_input(f"A product can have at most {MAX_VARIANTS} variants.")
        data["variants"] = [
            self._variant(v, i + 2, f"variants[{i}]") for i, v in enumerate(variants)
        ]
        self._check_variant_skus(data)
        product: Json = {
            "productType": self._unmanaged_reference(
                _require(draft, "productType", dict, where), "product-type", "productType"
            ),
            "masterData": {
                "published": bool(draft.get("publish", False)),
                "current": data,
                "staged": copy.deepcopy(data),
                "hasStagedChanges": False,
            },
        }
        if draft.get("key") is not None:
            product["key"] = _check_key(draft["key"], "key")
        if draft.get("taxCategory") is not None:
            category = self._reference(draft["taxCategory"], "tax-category", "taxCategory")
            product["taxCategory"] = {"typeId": "tax-category", "id": category["id"]}
        if draft.get("priceMode") is not None:
            product["priceMode"] = draft["priceMode"]
        return self._stamp(product)

    @staticmethod
    def _datas(doc: Json, action: Json) -> list[Json]:
        """The ProductData the action changes: staged only (default), or current and staged."""
        staged = action.get("staged", True)
        if not isinstance(staged, bool):
            raise invalid_json(f"{action['action']} -> staged: expected a boolean")
        master = doc["masterData"]
        return [master["staged"]] if staged else [master["current"], master["staged"]]

    @staticmethod
    def _all_variants(data: Json) -> list[Json]:
        return [data["masterVariant"], *data.get("variants", [])]

    def _variant_of(self, data: Json, action: Json) -> Json:
        variant_id = action.get("variantId")
        sku = action.get("sku")
        for variant in self._all_variants(data):
            if (variant_id is not None and variant["id"] == variant_id) or (
                variant_id is None and sku is not None and variant.get("sku") == sku
            ):
                return variant
        if variant_id is None and sku is None:
            raise invalid_input(f"{action['action']} needs variantId or sku.")
        raise invalid_input(
            f"{action['action']}: the product has no variant {json.dumps(variant_id or sku)}."
        )

    def _product_change_name(self, doc: Json, action: Json) -> None:
        name = _require(action, "name", dict, "changeName")
        for data in self._datas(doc, action):
            data["name"] = copy.deepcopy(name)

    def _product_change_slug(self, doc: Json, action: Json) -> None:
        slug = _require(action, "slug", dict, "changeSlug")
        for data in self._datas(doc, action):
            data["slug"] = copy.deepcopy(slug)

    def _product_set_description(self, doc: Json, action: Json) -> None:
        description = _optional(action, "description", dict, "setDescription")
        for data in self._datas(doc, action):
            if description is None:
                data.pop("description", None)
            else:
                data["description"] = copy.deepcopy(description)

    @staticmethod
    def _set_attribute(variant: Json, name: str, action: Json) -> None:
        attributes = [a for a in variant.get("attributes", []) if a.get("name") != name]
        if action.get("value") is not None:
            attributes.append({"name": name, "value": copy.deepcopy(action["value"])})
        variant["attributes"] = attributes

    def _product_set_attribute(self, doc: Json, action: Json) -> None:
        name = _require(action, "name", str, "setAttribute")
        for data in self._datas(doc, action):
            self._set_attribute(self._variant_of(data, action), name, action)

    def _product_set_attribute_all(self, doc: Json, action: Json) -> None:
        name = _require(action, "name", str, "setAttributeInAllVariants")
        for data in self._datas(doc, action):
            for variant in self._all_variants(data):
                self._set_attribute(variant, name, action)

    def _product_add_variant(self, doc: Json, action: Json) -> None:
        master = doc["masterData"]
        used = [
            v["id"] for d in (master["current"], master["staged"]) for v in self._all_variants(d)
        ]
        variant = self._variant(action, max(used) + 1, "addVariant")
        for data in self._datas(doc, action):
            if len(self._all_variants(data)) >= MAX_VARIANTS:
                raise invalid_input(f"A product can have at most {MAX_VARIANTS} variants.")
            data.setdefault("variants", []).append(copy.deepcopy(variant))
            self._check_variant_skus(data)

    def _product_remove_variant(self, doc: Json, action: Json) -> None:
        variant_id = action.get("id", action.get("variantId"))
        for data in self._datas(doc, action):
            target = self._variant_of(data, {**action, "variantId": variant_id})
            if target is data["masterVariant"]:
                raise invalid_operation("The master variant cannot be removed.")
            data["variants"] = [v for v in data["variants"] if v is not target]

    def _product_set_prices(self, doc: Json, action: Json) -> None:
        drafts = _require(action, "prices", list, "setPrices")
        for data in self._datas(doc, action):
            prices = [self._price(p, "setPrices -> prices") for p in drafts]
            self._check_prices(prices)
            self._variant_of(data, action)["prices"] = prices

    def _product_add_price(self, doc: Json, action: Json) -> None:
        draft = _require(action, "price", dict, "addPrice")
        price_id = str(uuid.uuid4())
        for data in self._datas(doc, action):
            variant = self._variant_of(data, action)
            prices = [*variant.get("prices", []), self._price(draft, "addPrice -> price", price_id)]
            self._check_prices(prices)
            variant["prices"] = prices

    def _find_price(self, data: Json, price_id: Any, name: str) -> tuple[Json, int]:
        for variant in self._all_variants(data):
            for index, price in enumerate(variant.get("prices", [])):
                if price["id"] == price_id:
                    return variant, index
        raise invalid_input(f"{name}: the product has no price with id {json.dumps(price_id)}.")

    def _product_change_price(self, doc: Json, action: Json) -> None:
        price_id = _require(action, "priceId", str, "changePrice")
        draft = _require(action, "price", dict, "changePrice")
        for data in self._datas(doc, action):
            variant, index = self._find_price(data, price_id, "changePrice")
            prices = list(variant["prices"])
            prices[index] = self._price(draft, "changePrice -> price", price_id)
            self._check_prices(prices)
            variant["prices"] = prices

    def _product_remove_price(self, doc: Json, action: Json) -> None:
        price_id = _require(action, "priceId", str, "removePrice")
        for data in self._datas(doc, action):
            variant, index = self._find_price(data, price_id, "removePrice")
            variant["prices"] = [p for i, p in enumerate(variant["prices"]) if i != index]

    def _product_set_tax_category(self, doc: Json, action: Json) -> None:
        if "staged" in action:
            # The tax category is not part of ProductData: it cannot be staged.
            raise invalid_input("setTaxCategory cannot be staged; remove the 'staged' field.")
        if action.get("taxCategory") is None:
            doc.pop("taxCategory", None)
            return
        category = self._reference(action["taxCategory"], "tax-category", "setTaxCategory")
        doc["taxCategory"] = {"typeId": "tax-category", "id": category["id"]}

    def _product_set_sku(self, doc: Json, action: Json) -> None:
        variant_id = _require(action, "variantId", int, "setSku")
        sku = _optional(action, "sku", str, "setSku")
        for data in self._datas(doc, action):
            variant = self._variant_of(data, {"action": "setSku", "variantId": variant_id})
            old = variant.get("sku")
            if (
                old is not None
                and old != sku
                and self.store.get_by("inventory", "sku", old) is not None
            ):
                raise invalid_operation(
                    f"The SKU '{old}' is used by inventory entries and cannot be changed."
                )
            if sku is None:
                variant.pop("sku", None)
            else:
                variant["sku"] = sku
            self._check_variant_skus(data)

    def _product_publish(self, doc: Json, action: Json) -> None:
        master = doc["masterData"]
        scope = action.get("scope", "All")
        if scope == "All":
            master["current"] = copy.deepcopy(master["staged"])
        elif scope == "Prices":
            staged_prices = {
                v["id"]: v.get("prices", []) for v in self._all_variants(master["staged"])
            }
            for variant in self._all_variants(master["current"]):
                if variant["id"] in staged_prices:
                    variant["prices"] = copy.deepcopy(staged_prices[variant["id"]])
        else:
            raise invalid_json(f"publish -> scope: Invalid enum value: {json.dumps(scope)}")
        master["published"] = True

    def _product_unpublish(self, doc: Json, action: Json) -> None:
        doc["masterData"]["published"] = False
