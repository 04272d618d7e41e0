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

Layout: ``app`` (the WSGI app and routing), ``core`` (find, query, expand, create, update,
delete for every resource), one module per resource (``orders``, ``inventory``, ``channels``,
``tax_categories``, ``products``), ``auth`` (tokens and scopes), ``common`` (errors,
request/response, limits, validation helpers).
"""

from ct_sandbox.commercetools.app import CommercetoolsSandboxApp
from ct_sandbox.commercetools.auth import register_api_client
from ct_sandbox.commercetools.common import ApiError, typed_money

__all__ = ["ApiError", "CommercetoolsSandboxApp", "register_api_client", "typed_money"]
