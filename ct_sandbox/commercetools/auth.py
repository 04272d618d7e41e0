"""The commercetools sandbox's auth: API clients, OAuth tokens and scopes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qs

from ct_sandbox import db
from ct_sandbox.commercetools.common import (
    RESOURCE_SCOPES,
    ApiError,
    Request,
    Response,
    _json_response,
)
from ct_sandbox.commercetools.core import SandboxCore


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


class AuthMixin(SandboxCore):
    """``/oauth/token``: client credentials, scopes, token expiry."""

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
