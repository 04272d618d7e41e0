"""Shared pieces of the commercetools sandbox: errors, request/response, limits, validation."""

from __future__ import annotations

import copy
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import parse_qs

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
    "product-types": ("view_products", "manage_products"),
}
TYPE_ID_RESOURCES = {
    "order": "orders",
    "payment": "payments",
    "channel": "channels",
    "product": "products",
    "tax-category": "tax-categories",
    "product-type": "product-types",
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
# The project's currencies (Project.currencies): prices in any other currency are refused.
PROJECT_CURRENCIES = ("GBP", "EUR")
# The project's countries (Project.countries): the UK shop ships to Great Britain and Ireland.
PROJECT_COUNTRIES = ("GB", "IE")
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
