"""A small synchronous commercetools HTTP API client on httpx (no Dagster here).

What it gets right that a naive client does not (see docs/ and the API reference notes):

- Paging uses the id cursor of the official Java SDK's ``QueryAll`` (``sort=id asc``,
  ``where=id > :lastId``, ``withTotal=false``), never ``offset``, which stops at 10,000.
- Update actions are sent in chunks of at most 500 (HTTP 413 above that), each chunk carrying
  the version returned by the previous one.
- 409 ConcurrentModification is answered by re-reading the resource and rebuilding the actions.
- 429/502/503/504 and lost connections are retried with backoff (``ct_pipelines.lib.retry``).
- The bearer token is renewed before it expires and once after a 401; it never reaches logs,
  reprs or exception messages.
- Typed iterators decode each page's bytes straight into models (one pydantic-core pass over
  the JSON, no intermediate dicts); a page that does not validate is re-read document by
  document, so the documents before the bad one still arrive and the error names the bad one.
  The garbage collector is paused while a page is decoded: decoding allocates hundreds of
  thousands of objects that all stay alive, so collections during it find nothing and cost
  more than the decoding itself.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from ct_pipelines.commercetools.auth import DEFAULT_RENEW_MARGIN, TokenProvider
from ct_pipelines.commercetools.errors import (
    CommercetoolsError,
    ConcurrentModificationError,
    NotFoundError,
    ServiceUnavailableError,
    error_from_response,
)
from ct_pipelines.commercetools.models import (
    Channel,
    InventoryEntry,
    Order,
    Payment,
    Product,
    ProductProjection,
    TaxCategory,
)
from ct_pipelines.commercetools.settings import CommercetoolsSettings
from ct_pipelines.kernel.scrub import scrub, scrub_value
from ct_pipelines.lib.retry import (
    DEFAULT_RETRY_POLICY,
    RetryEvent,
    RetryPolicy,
    send_with_retries,
)

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500  # the API's maximum `limit`
MAX_OFFSET = 10_000  # the API's maximum `offset`
MAX_UPDATE_ACTIONS = 500  # per request; HTTP 413 above
# Requests may run 60 s on the server; a query times out after 20 s of processing.
DEFAULT_TIMEOUT = httpx.Timeout(65.0, connect=10.0)
DEFAULT_ORDER_EXPAND: tuple[str, ...] = ("paymentInfo.payments[*]",)

_VARIABLE_NAME = re.compile(r"^[a-zA-Z0-9]+$")
_CURSOR_VARIABLE = "lastId"

Params = list[tuple[str, str]]
VariableValue = str | int | float | bool | Sequence[str | int | float | bool]
M = TypeVar("M", bound=BaseModel)
Rebuild = Callable[[dict[str, Any]], list[dict[str, Any]] | None]


T = TypeVar("T")


class _Page(BaseModel, Generic[M]):
    """A query response's ``results`` (``limit``, ``offset``, ``count`` are not needed)."""

    results: list[M]


@cache
def _page_adapter(model: type[BaseModel]) -> TypeAdapter[_Page[Any]]:
    return TypeAdapter(_Page[model])  # type: ignore[valid-type]


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False
_gc_promote = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while decoding a page (thread-safe, nestable; it is
    enabled again only if it was enabled when the first pause began).

    Decoding allocates hundreds of thousands of objects that all stay alive, so collections
    during it find nothing. Enabling the collector afterwards would start one at once, over
    the young generation that is now the whole page: it too finds nothing and cost a third of
    the decoding (about 70 ms of a 500-order page). So the pause is bracketed:

    - on entry, a collection of the two young generations (small: what was allocated since
      the last page) frees the cyclic garbage of the caller's code, so none of it is carried on;
    - on exit, the young generations, now just what the pause allocated (the page), are moved
      to the oldest generation unscanned (:func:`_promote_young`).

    Reference counting still frees the page as soon as it is let go. Skipped while anything
    is frozen (see :func:`_promote_young`): then the page is collected as it would be without.
    """
    global _gc_pauses, _gc_was_enabled, _gc_promote
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            _gc_promote = _gc_was_enabled and not gc.get_freeze_count()
            if _gc_promote:
                gc.collect(1)
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                if _gc_promote:
                    _promote_young()
                gc.enable()


def _promote_young() -> None:
    """Move every object of the young generations to the oldest one, without a collection.

    ``gc.freeze()`` moves all tracked objects to the permanent generation and resets the young
    generation's allocation count; ``gc.unfreeze()`` moves them all into the oldest
    generation, which only a full collection scans. CPython triggers full collections by the
    objects that survived a middle collection, so these do not bring one on sooner. Only
    called when nothing is frozen: unfreezing would otherwise thaw objects that someone froze
    on purpose (``gc.freeze()`` after start-up).
    """
    gc.freeze()
    gc.unfreeze()


class _InvalidDocument(Exception):
    """A page with a document that does not validate: the valid ones before it, and the error."""

    def __init__(self, valid: list[Any], error: ValidationError) -> None:
        super().__init__(str(error))
        self.valid = valid
        self.error = error


def _as_list(value: Sequence[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _param_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _chunks(
    actions: list[dict[str, Any]], size: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return actions[:size], actions[size:]


class CommercetoolsClient:
    """Dict-level access to one commercetools project, plus typed iterators for the flows.

    Use as a context manager or call :meth:`close`. ``transport`` lets tests and the sandbox
    plug in an ``httpx.MockTransport`` / WSGI transport; ``sleep`` and ``clock`` make retries
    and token expiry testable without waiting.
    """

    def __init__(
        self,
        settings: CommercetoolsSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Callable[[float], None] = time.sleep,
        conflict_retries: int = 5,
        clock: Callable[[], float] = time.monotonic,
        renew_margin: float = DEFAULT_RENEW_MARGIN,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        if conflict_retries < 0:
            raise ValueError("conflict_retries must not be negative")
        self.settings = settings
        self._retry = retry
        self._sleep = sleep
        self._conflict_retries = conflict_retries
        self._on_retry = on_retry or self._log_retry
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
        self._auth = TokenProvider(
            settings,
            self._http,
            retry=retry,
            sleep=sleep,
            clock=clock,
            renew_margin=renew_margin,
            on_retry=self._on_retry,
        )

    # --- lifecycle -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"CommercetoolsClient(project_key={self.settings.project_key!r}, api_url={self.settings.api_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def token_fetch_count(self) -> int:
        """How many access tokens this client has requested (for metrics and tests)."""
        return self._auth.fetch_count

    # --- plumbing --------------------------------------------------------------------------

    @staticmethod
    def _log_retry(event: RetryEvent) -> None:
        logger.warning(
            "commercetools: transient %s on attempt %d, retrying in %.2fs",
            event.reason,
            event.attempt,
            event.delay,
        )

    def _url(self, path: str) -> str:
        if not path.strip("/"):
            return self.settings.project_url  # GET /{projectKey}: the project itself
        return f"{self.settings.project_url}/{path.lstrip('/')}"

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Send with retries, a valid token, one token renewal on 401; raise typed errors."""
        url = self._url(path)
        renewed = False
        used: list[str] = []  # tokens sent, so a 401 invalidates the one that was refused
        while True:

            def build() -> httpx.Request:
                token = self._auth.token()
                used.append(token)
                return self._http.build_request(
                    method,
                    url,
                    # a tuple: httpx types its list form as list[tuple[str, str | int | ...]]
                    params=None if params is None else tuple(params),
                    json=json,
                    headers={"Authorization": f"Bearer {token}"},
                )

            try:
                response = send_with_retries(
                    self._http, build, self._retry, sleep=self._sleep, on_retry=self._on_retry
                )
            except httpx.TransportError as exc:
                host = exc.request.url.host if _has_request(exc) else "commercetools"
                raise ServiceUnavailableError(
                    0,
                    f"no response from {host} after {self._retry.max_attempts} attempts "
                    f"({type(exc).__name__}): is CTP_API_URL right and the host reachable?",
                    method=method,
                    path=path,
                ) from exc
            if response.status_code == 401 and not renewed:
                # Revoked or expired early (clock skew, rotated client): fetch a new token once.
                logger.info("commercetools: token rejected (401), renewing once")
                self._auth.invalidate(used[-1] if used else None)
                renewed = True
                continue
            if response.is_success:
                return response
            raise self._error(response, method, path)

    def _error(self, response: httpx.Response, method: str, path: str) -> CommercetoolsError:
        error = error_from_response(response, method=method, path=path)
        # The API does not echo credentials, but a proxy or mock might: scrub before raising.
        token = self._auth.peek()
        secrets = [s for s in (token, self.settings.client_secret.get_secret_value()) if s]
        for secret in secrets:
            error.message = error.message.replace(secret, "***")
            error.errors = [_scrub(e, secret) for e in error.errors]
        # Then the one scrubber: configured secrets, quoted Authorization headers, tokens.
        error.message = scrub(error.message, secrets)
        error.errors = scrub_value(error.errors, secrets)
        error.args = (str(error),)
        return error

    # --- dict-level API --------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | Params | None = None) -> dict[str, Any]:
        return self._send("GET", path, params=_params(params)).json()

    def get_or_none(
        self, path: str, params: Mapping[str, Any] | Params | None = None
    ) -> dict[str, Any] | None:
        """GET, with 404 (ResourceNotFound) as None."""
        try:
            return self.get(path, params)
        except NotFoundError:
            return None

    def get_project(self) -> dict[str, Any]:
        """``GET /{projectKey}``: currencies, countries, languages of the project."""
        return self.get("")

    def token_scope(self) -> list[str]:
        """The scopes the token was granted (the token response's ``scope``), fetching one."""
        self._auth.token()
        return self._auth.granted_scopes()

    def post(
        self, path: str, json: Any, params: Mapping[str, Any] | Params | None = None
    ) -> dict[str, Any]:
        return self._send("POST", path, params=_params(params), json=json).json()

    def create(self, resource: str, draft: Mapping[str, Any]) -> dict[str, Any]:
        """POST a draft. A retried create after a lost response may meet DuplicateField (400)."""
        return self.post(resource, dict(draft))

    def delete(self, resource: str, id: str, version: int) -> dict[str, Any]:
        return self._send(
            "DELETE", _resource_path(resource, id), params=[("version", str(version))]
        ).json()

    def query(
        self,
        resource: str,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        sort: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        expand: Sequence[str] | str | None = None,
        with_total: bool | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One page of a query endpoint: ``{limit, offset, count, total?, results}``.

        Repeated ``where`` predicates are ANDed by the API. ``variables`` become ``var.<name>``
        parameters (a sequence value repeats the parameter, for ``in :skus``).
        """
        return self.get(
            resource,
            self._query_params(
                where=where,
                variables=variables,
                sort=sort,
                limit=limit,
                offset=offset,
                expand=expand,
                with_total=with_total,
                params=params,
            ),
        )

    @staticmethod
    def _query_params(
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        sort: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        expand: Sequence[str] | str | None = None,
        with_total: bool | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Params:
        if limit is not None and not 0 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 0 and {MAX_PAGE_SIZE}, got {limit}")
        if offset is not None and not 0 <= offset <= MAX_OFFSET:
            raise ValueError(
                f"offset must be between 0 and {MAX_OFFSET}; use query_all to read everything"
            )
        query: Params = [("where", predicate) for predicate in _as_list(where)]
        for name, value in (variables or {}).items():
            if not _VARIABLE_NAME.match(name):
                raise ValueError(f"invalid query variable name {name!r}")
            values = (
                value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
            )
            query.extend((f"var.{name}", _param_value(v)) for v in values)
        query.extend(("sort", s) for s in _as_list(sort))
        if limit is not None:
            query.append(("limit", str(limit)))
        if offset is not None:
            query.append(("offset", str(offset)))
        query.extend(("expand", e) for e in _as_list(expand))
        if with_total is not None:
            query.append(("withTotal", _param_value(with_total)))
        query.extend(_params(params) or [])
        return query

    def query_all(
        self,
        resource: str,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        expand: Sequence[str] | str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every matching resource, streamed one page at a time (memory stays flat).

        Keyset paging as the Java SDK's ``QueryAll``: ``sort=id asc``, ``withTotal=false``,
        ``limit=page_size``; each following page adds ``where=id > :lastId`` with ``var.lastId``
        to the caller's predicates. Stops at the first page shorter than ``page_size``.
        Never uses ``offset``. Results are in id order; do not rely on any other order.
        """
        for page in self._pages(
            resource,
            _decode_dicts,
            _dict_id,
            where=where,
            variables=variables,
            expand=expand,
            page_size=page_size,
            params=params,
        ):
            yield from page

    def query_all_models(
        self,
        model: type[M],
        resource: str,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        expand: Sequence[str] | str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[M]:
        """:meth:`query_all` decoded into ``model``: each page's bytes validated in one pass.

        One page at a time (memory stays flat). A document that does not validate raises
        its ``ValidationError`` after the documents before it have been yielded (as validating
        them one by one would).
        """
        adapter = _page_adapter(model)

        def decode(content: bytes) -> list[M]:
            try:
                return adapter.validate_json(content).results
            except ValidationError:
                pass
            # Find the bad document: validate the page one document at a time.
            valid: list[M] = []
            for doc in _decode_dicts(content):
                try:
                    valid.append(model.model_validate(doc))
                except ValidationError as error:
                    raise _InvalidDocument(valid, error) from None
            return valid  # pragma: no cover - the page failed, so some document does

        try:
            for page in self._pages(
                resource,
                decode,
                _model_id,
                where=where,
                variables=variables,
                expand=expand,
                page_size=page_size,
                params=params,
            ):
                yield from page
        except _InvalidDocument as invalid:
            yield from invalid.valid
            raise invalid.error from None

    def _pages(
        self,
        resource: str,
        decode: Callable[[bytes], list[T]],
        id_of: Callable[[T], str],
        *,
        where: Sequence[str] | str | None,
        variables: Mapping[str, VariableValue] | None,
        expand: Sequence[str] | str | None,
        page_size: int,
        params: Mapping[str, Any] | None,
    ) -> Iterator[list[T]]:
        """Keyset pages, each decoded with the garbage collector paused."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        caller_variables = dict(variables or {})
        if _CURSOR_VARIABLE in caller_variables:
            raise ValueError(f"query variable {_CURSOR_VARIABLE!r} is reserved for paging")
        predicates = _as_list(where)

        def fetch(last_id: str | None) -> bytes:
            page_where, page_variables = predicates, caller_variables
            if last_id is not None:
                page_where = [*predicates, f"id > :{_CURSOR_VARIABLE}"]
                page_variables = {**caller_variables, _CURSOR_VARIABLE: last_id}
            query = self._query_params(
                where=page_where,
                variables=page_variables,
                sort="id asc",
                limit=page_size,
                expand=expand,
                with_total=False,
                params=params,
            )
            return self._send("GET", resource, params=query).content

        content = fetch(None)
        while True:
            with _gc_paused():
                results = decode(content)
            del content
            if not results:
                return
            last_id = id_of(results[-1])
            short = len(results) < page_size
            yield results
            del results  # let the page go before the next one arrives
            if short:
                return
            content = fetch(last_id)

    def update(
        self,
        resource: str,
        id: str,
        version: int,
        actions: Sequence[Mapping[str, Any]],
        *,
        reread: Rebuild | None = None,
    ) -> dict[str, Any]:
        """Apply update actions with version checks; returns the updated resource.

        More than 500 actions go in consecutive requests of at most 500, each using the version
        the previous one returned. On 409 ConcurrentModification the resource is read again and
        ``reread(fresh)`` rebuilds the actions still to apply (None or [] means nothing is left,
        and the fresh resource is returned). Without ``reread`` the remaining actions are sent
        again with the fresh version, which is only right for absolute setters (changeQuantity,
        setParcelTrackingData, setPrices ...), not for relative ones such as addQuantity.
        After ``conflict_retries`` re-reads the last ConcurrentModificationError is raised.
        """
        path = _resource_path(resource, id)
        remaining = [dict(a) for a in actions]
        if not remaining:
            return self.get(path)
        current_version = version
        conflicts = 0
        result: dict[str, Any] | None = None
        while remaining:
            chunk, rest = _chunks(remaining, MAX_UPDATE_ACTIONS)
            try:
                result = self.post(path, {"version": current_version, "actions": chunk})
            except ConcurrentModificationError as exc:
                conflicts += 1
                if conflicts > self._conflict_retries:
                    raise
                logger.info(
                    "commercetools: %s %s changed (version %s, now %s); re-reading (%d/%d)",
                    resource,
                    id,
                    current_version,
                    exc.current_version,
                    conflicts,
                    self._conflict_retries,
                )
                fresh = self.get(path)
                rebuilt = reread(fresh) if reread is not None else remaining
                if not rebuilt:
                    return fresh
                remaining = [dict(a) for a in rebuilt]
                current_version = int(fresh["version"])
                continue
            current_version = int(result["version"])
            remaining = rest
        assert result is not None
        return result

    # --- typed helpers ---------------------------------------------------------------------

    def iter_orders(
        self,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        expand: Sequence[str] | str | None = DEFAULT_ORDER_EXPAND,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[Order]:
        """Orders with their payments expanded by default (for payment-based eligibility)."""
        return self.query_all_models(
            Order, "orders", where=where, variables=variables, expand=expand, page_size=page_size
        )

    def iter_payments(
        self,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[Payment]:
        return self.query_all_models(
            Payment, "payments", where=where, variables=variables, page_size=page_size
        )

    def iter_inventory(
        self,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        expand: Sequence[str] | str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[InventoryEntry]:
        return self.query_all_models(
            InventoryEntry,
            "inventory",
            where=where,
            variables=variables,
            expand=expand,
            page_size=page_size,
        )

    def iter_channels(
        self,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
    ) -> Iterator[Channel]:
        return self.query_all_models(Channel, "channels", where=where, variables=variables)

    def iter_products(
        self,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[Product]:
        return self.query_all_models(
            Product, "products", where=where, variables=variables, page_size=page_size
        )

    def iter_product_projections(
        self,
        staged: bool = False,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, VariableValue] | None = None,
        expand: Sequence[str] | str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[ProductProjection]:
        """Published current data (``staged=False``) or staged data of every product."""
        return self.query_all_models(
            ProductProjection,
            "product-projections",
            where=where,
            variables=variables,
            expand=expand,
            page_size=page_size,
            params={"staged": staged},
        )

    def iter_tax_categories(self) -> Iterator[TaxCategory]:
        return self.query_all_models(TaxCategory, "tax-categories")

    def get_order(
        self, id: str, *, expand: Sequence[str] | str | None = DEFAULT_ORDER_EXPAND
    ) -> Order | None:
        doc = self.get_or_none(_resource_path("orders", id), _expand_params(expand))
        return Order.model_validate(doc) if doc is not None else None

    def get_order_by_number(
        self, order_number: str, *, expand: Sequence[str] | str | None = DEFAULT_ORDER_EXPAND
    ) -> Order | None:
        doc = self.get_or_none(
            f"orders/order-number={quote(order_number, safe='')}", _expand_params(expand)
        )
        return Order.model_validate(doc) if doc is not None else None


def _decode_dicts(content: bytes) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = json.loads(content)["results"]
    return results


def _dict_id(doc: dict[str, Any]) -> str:
    return str(doc["id"])


def _model_id(model: BaseModel) -> str:
    return str(model.id)  # type: ignore[attr-defined]


def _resource_path(resource: str, id: str) -> str:
    return f"{resource.strip('/')}/{quote(id, safe='')}"


def _expand_params(expand: Sequence[str] | str | None) -> Params:
    return [("expand", e) for e in _as_list(expand)]


def _params(params: Mapping[str, Any] | Params | None) -> Params | None:
    if params is None:
        return None
    if isinstance(params, Mapping):
        out: Params = []
        for key, value in params.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            out.extend((key, _param_value(v)) for v in values)
        return out
    return [(k, str(v)) for k, v in params]


def _scrub(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, dict):
        return {k: _scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secret) for v in value]
    return value


__all__ = ["DEFAULT_TIMEOUT", "MAX_PAGE_SIZE", "MAX_UPDATE_ACTIONS", "CommercetoolsClient"]


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error carries no request
    except RuntimeError:
        return False
    return True
