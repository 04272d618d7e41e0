"""The commercetools sandbox app: WSGI entry, faults and routing over the resource mixins."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from ct_sandbox import db
from ct_sandbox.commercetools.auth import AuthMixin
from ct_sandbox.commercetools.channels import ChannelsMixin
from ct_sandbox.commercetools.common import (
    _REASONS,
    DEFAULT_TOKEN_TTL,
    PROJECT_COUNTRIES,
    PROJECT_CURRENCIES,
    RESOURCE_SCOPES,
    SIDE,
    ActionHandler,
    ApiError,
    Json,
    Request,
    Response,
    _json_response,
    logger,
    not_found,
)
from ct_sandbox.commercetools.inventory import InventoryMixin
from ct_sandbox.commercetools.orders import OrdersMixin
from ct_sandbox.commercetools.products import ProductsMixin
from ct_sandbox.commercetools.tax_categories import TaxCategoriesMixin
from ct_sandbox.documents import (
    DocumentStore,
)
from ct_sandbox.faults import FaultConfig, draw_fault, load_faults, log_request
from ct_sandbox.predicates import (
    mapping_for,
)


class CommercetoolsSandboxApp(
    AuthMixin, OrdersMixin, InventoryMixin, ChannelsMixin, TaxCategoriesMixin, ProductsMixin
):
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
        currencies: Iterable[str] = PROJECT_CURRENCIES,
    ) -> None:
        self.db_path = os.fspath(db_path)
        self.project_key = project_key
        self.token_ttl_seconds = token_ttl_seconds
        self.enforce_scopes = enforce_scopes
        self.currencies = tuple(currencies)
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
            "product-types": {},
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
        if len(parts) == 1:
            return self._project(request)
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

    # -- the project ---------------------------------------------------------------------------

    def _project(self, request: Request) -> Response:
        """GET /{projectKey}: the settings a client checks before going live (currencies,
        countries, languages). Needs view_project_settings (or manage_project[_settings])."""
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", "The sandbox project's settings are read-only.")
        scopes = self._authenticate(request)
        allowed = {"manage_project", "manage_project_settings", "view_project_settings"}
        if self.enforce_scopes and not scopes & allowed:
            raise ApiError(
                403,
                "insufficient_scope",
                "Insufficient scope. One of the following scopes is missing: "
                "view_project_settings, manage_project_settings",
                oauth=True,
            )
        project = {
            "key": self.project_key,
            "name": "UK shop (sandbox)",
            "version": 1,
            "currencies": list(self.currencies),
            "countries": list(PROJECT_COUNTRIES),
            "languages": ["en-GB"],
            "createdAt": "2026-01-01T00:00:00.000Z",
        }
        return _json_response(200, project)

    # -- creating --------------------------------------------------------------------------

    def _create(self, request: Request, resource: str) -> Response:
        draft = request.json()
        creators: dict[str, Callable[[Json], Json]] = {
            "inventory": self._inventory_draft,
            "channels": self._channel_draft,
            "products": self._product_draft,
            "tax-categories": self._tax_category_draft,
            "product-types": self._product_type_draft,
        }
        if resource not in creators:
            raise ApiError(405, "MethodNotAllowed", f"Creating {resource} is not supported.")
        doc = self._insert(resource, creators[resource](draft))
        return self._document_response(201, resource, doc, request)
