"""commercetools resources stored as JSON documents in the world DB (table ``ct_documents``).

Each document is kept as compact JSON text plus indexed columns: resource, id, key, version,
created_at, last_modified_at, and sku / order_number / supply_channel where the resource has them.
Uniqueness the real API enforces is enforced by the database: id and key per resource,
``orderNumber`` per project, (sku, supplyChannel) for inventory entries, and every product SKU
across products (table ``ct_product_skus``, current and staged variants).

Contract API (used by seed/world): ``DocumentStore(db_path)`` with ``insert_many``, ``get``,
``get_by``, ``replace``, ``update_with``, ``count``, ``iter_all``. Resource names are the URL
names: orders, payments, inventory, channels, products, tax-categories.

Additions beyond the contract:

- ``DocumentStore(db_path, clock=...)``: ``clock() -> datetime`` for new timestamps (default: the
  world clock ``db.sandbox_now``); ``store.now()`` formats it the commercetools way.
- ``insert(resource, doc)``, ``get_many(resource, ids)``, ``delete(resource, id, version=None)``,
  ``update_checked(resource, id, version, fn)`` (version check -> ``VersionConflict``; an update
  that changes nothing keeps the version, like the API), ``bump_version(resource, id)``,
  ``query(...) -> QueryPage`` (compiled predicates, sort, limit/offset, capped total) and
  ``count(resource, where=None)``.
- Errors: ``DocumentNotFound`` (a ``KeyError``), ``VersionConflict``, ``DuplicateDocument``
  (a ``ValueError`` with ``field`` and ``value``).
- ``createdAt`` / ``lastModifiedAt`` are normalised to ``YYYY-MM-DDTHH:MM:SS.mmmZ`` on write, so
  string comparison and sorting are chronological.
- ``get_by(resource, "sku", value)``: for inventory the first entry by id (several channels may
  hold the SKU); for products the product holding the SKU in current or staged data.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ct_sandbox import db
from ct_sandbox.predicates import CompiledPredicate, normalise_datetime

RESOURCES = frozenset(
    {"orders", "payments", "inventory", "channels", "products", "tax-categories", "product-types"}
)
TOTAL_CAP = 10_000


class DocumentNotFound(KeyError):
    def __init__(self, resource: str, doc_id: str) -> None:
        super().__init__(f"{resource}/{doc_id}")
        self.resource = resource
        self.id = doc_id


class VersionConflict(Exception):
    def __init__(self, doc_id: str, expected: int, current: int) -> None:
        super().__init__(
            f"Object {doc_id} has a different version than expected. "
            f"Expected: {expected} - Actual: {current}."
        )
        self.id = doc_id
        self.expected = expected
        self.current_version = current


class DuplicateDocument(ValueError):
    def __init__(self, resource: str, field: str, value: object) -> None:
        super().__init__(f"A duplicate value {json.dumps(value)} exists for field '{field}'.")
        self.resource = resource
        self.field = field
        self.value = value


@dataclass(frozen=True)
class QueryPage:
    bodies: list[str]  # JSON texts in result order; the app can splice them without parsing
    total: int | None


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def _check_resource(resource: str) -> None:
    if resource not in RESOURCES:
        raise ValueError(f"unknown commercetools resource {resource!r}")


def product_skus(doc: dict[str, Any]) -> set[str]:
    """Every SKU in a product's current and staged variants."""
    skus: set[str] = set()
    master_data = doc.get("masterData") or {}
    for data_name in ("current", "staged"):
        data = master_data.get(data_name) or {}
        for variant in [data.get("masterVariant") or {}, *(data.get("variants") or [])]:
            if variant.get("sku"):
                skus.add(variant["sku"])
    return skus


class DocumentStore:
    """Thread-safe access to the stored documents (one SQLite connection per thread)."""

    def __init__(
        self, db_path: str | os.PathLike[str], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.db_path = os.fspath(db_path)
        self._clock = clock or (lambda: db.sandbox_now(self.db_path))
        db.connect(self.db_path)  # creates the schema early

    def __repr__(self) -> str:
        return f"DocumentStore({self.db_path!r})"

    @property
    def conn(self) -> sqlite3.Connection:
        return db.connect(self.db_path)

    def now(self) -> str:
        return db.format_timestamp(self._clock())

    # -- writing ---------------------------------------------------------------------------

    def _row(self, resource: str, doc: dict[str, Any]) -> tuple[Any, ...]:
        for required in ("id", "version", "createdAt", "lastModifiedAt"):
            if required not in doc:
                raise ValueError(f"{resource} document without {required!r}")
        doc["createdAt"] = normalise_datetime(str(doc["createdAt"]))
        doc["lastModifiedAt"] = normalise_datetime(str(doc["lastModifiedAt"]))
        key = doc.get("key") if resource != "orders" else None
        sku = doc.get("sku") if resource == "inventory" else None
        order_number = doc.get("orderNumber") if resource == "orders" else None
        supply = (doc.get("supplyChannel") or {}).get("id") if resource == "inventory" else None
        return (
            resource,
            str(doc["id"]),
            key,
            int(doc["version"]),
            doc["createdAt"],
            doc["lastModifiedAt"],
            sku,
            order_number,
            supply,
            _dumps(doc),
        )

    def _translate(
        self, resource: str, error: sqlite3.IntegrityError, doc: dict[str, Any]
    ) -> DuplicateDocument:
        message = str(error)
        if "inventory_pair" in message:
            return DuplicateDocument(resource, "sku", doc.get("sku"))
        if "order_number" in message:
            return DuplicateDocument(resource, "orderNumber", doc.get("orderNumber"))
        if "ct_documents_key" in message or "ct_documents.key" in message:
            return DuplicateDocument(resource, "key", doc.get("key"))
        return DuplicateDocument(resource, "id", doc.get("id"))

    def _sync_skus(self, conn: sqlite3.Connection, resource: str, doc: dict[str, Any]) -> None:
        if resource != "products":
            return
        conn.execute("DELETE FROM ct_product_skus WHERE product_id = ?", (doc["id"],))
        for sku in sorted(product_skus(doc)):
            try:
                conn.execute(
                    "INSERT INTO ct_product_skus (sku, product_id) VALUES (?, ?)", (sku, doc["id"])
                )
            except sqlite3.IntegrityError:
                raise DuplicateDocument(resource, "sku", sku) from None

    def insert_many(self, resource: str, docs: Iterable[dict[str, Any]]) -> int:
        """Insert complete documents (id, version, createdAt, lastModifiedAt set) in one transaction."""
        _check_resource(resource)
        conn = self.conn
        count = 0
        with db.transaction(conn):
            batch: list[tuple[Any, ...]] = []
            batch_docs: list[dict[str, Any]] = []
            for doc in docs:
                batch.append(self._row(resource, doc))
                batch_docs.append(doc)
                if len(batch) >= 1000:
                    count += self._insert_batch(conn, resource, batch, batch_docs)
                    batch, batch_docs = [], []
            count += self._insert_batch(conn, resource, batch, batch_docs)
        return count

    def _insert_batch(
        self,
        conn: sqlite3.Connection,
        resource: str,
        rows: list[tuple[Any, ...]],
        docs: list[dict[str, Any]],
    ) -> int:
        if not rows:
            return 0
        sql = (
            "INSERT INTO ct_documents (resource, id, key, version, created_at, last_modified_at, "
            "sku, order_number, supply_channel, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        conn.execute("SAVEPOINT batch")
        try:
            conn.executemany(sql, rows)
        except sqlite3.IntegrityError as error:
            conn.execute("ROLLBACK TO batch")
            conn.execute("RELEASE batch")
            # Replay row by row to name the offending document; the caller's transaction rolls
            # everything back anyway.
            for row, doc in zip(rows, docs, strict=True):
                try:
                    conn.execute(sql, row)
                except sqlite3.IntegrityError as single:
                    raise self._translate(resource, single, doc) from None
            raise self._translate(resource, error, docs[0]) from None
        conn.execute("RELEASE batch")
        for doc in docs:
            self._sync_skus(conn, resource, doc)
        return len(rows)

    def insert(self, resource: str, doc: dict[str, Any]) -> dict[str, Any]:
        self.insert_many(resource, [doc])
        return doc

    def _write(self, conn: sqlite3.Connection, resource: str, doc: dict[str, Any]) -> None:
        row = self._row(resource, doc)
        try:
            cursor = conn.execute(
                "UPDATE ct_documents SET key = ?, version = ?, created_at = ?, last_modified_at = ?, "
                "sku = ?, order_number = ?, supply_channel = ?, body = ? WHERE resource = ? AND id = ?",
                (*row[2:], resource, row[1]),
            )
        except sqlite3.IntegrityError as error:
            raise self._translate(resource, error, doc) from None
        if cursor.rowcount == 0:
            raise DocumentNotFound(resource, str(doc["id"]))
        self._sync_skus(conn, resource, doc)

    def replace(self, resource: str, doc: dict[str, Any]) -> None:
        """Overwrite a stored document as is (the caller sets version and lastModifiedAt)."""
        _check_resource(resource)
        conn = self.conn
        with db.transaction(conn):
            self._write(conn, resource, doc)

    def _load_for_update(self, conn: sqlite3.Connection, resource: str, doc_id: str) -> str:
        row = conn.execute(
            "SELECT body FROM ct_documents WHERE resource = ? AND id = ?", (resource, doc_id)
        ).fetchone()
        if row is None:
            raise DocumentNotFound(resource, doc_id)
        return str(row[0])

    def update_with(
        self, resource: str, doc_id: str, fn: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Atomic read-modify-write: ``fn`` edits the document (or returns a new one); the store
        then bumps ``version`` and sets ``lastModifiedAt``."""
        _check_resource(resource)
        conn = self.conn
        with db.transaction(conn):
            doc = json.loads(self._load_for_update(conn, resource, doc_id))
            version = int(doc["version"])
            result = fn(doc)
            new = doc if result is None else result
            new["version"] = version + 1
            new["lastModifiedAt"] = self.now()
            self._write(conn, resource, new)
        return new

    def update_checked(
        self,
        resource: str,
        doc_id: str,
        expected_version: int,
        fn: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> tuple[dict[str, Any], bool]:
        """Like ``update_with`` but only at ``expected_version``; returns (doc, changed).

        An update that leaves the document unchanged keeps its version, as the API does.
        """
        _check_resource(resource)
        conn = self.conn
        with db.transaction(conn):
            text = self._load_for_update(conn, resource, doc_id)
            original = json.loads(text)
            current = int(original["version"])
            if current != expected_version:
                raise VersionConflict(doc_id, expected_version, current)
            doc = json.loads(text)
            result = fn(doc)
            new = doc if result is None else result
            if new == original:
                return original, False
            new["version"] = current + 1
            new["lastModifiedAt"] = self.now()
            self._write(conn, resource, new)
        return new, True

    def bump_version(self, resource: str, doc_id: str) -> dict[str, Any] | None:
        """A concurrent writer's visit: version + 1 without other changes (None if missing)."""
        try:
            return self.update_with(resource, doc_id, lambda doc: None)
        except DocumentNotFound:
            return None

    def delete(
        self, resource: str, doc_id: str, expected_version: int | None = None
    ) -> dict[str, Any]:
        _check_resource(resource)
        conn = self.conn
        with db.transaction(conn):
            doc = json.loads(self._load_for_update(conn, resource, doc_id))
            if expected_version is not None and int(doc["version"]) != expected_version:
                raise VersionConflict(doc_id, expected_version, int(doc["version"]))
            conn.execute(
                "DELETE FROM ct_documents WHERE resource = ? AND id = ?", (resource, doc_id)
            )
            if resource == "products":
                conn.execute("DELETE FROM ct_product_skus WHERE product_id = ?", (doc_id,))
        return doc

    # -- reading ---------------------------------------------------------------------------

    def get(self, resource: str, doc_id: str) -> dict[str, Any] | None:
        _check_resource(resource)
        row = self.conn.execute(
            "SELECT body FROM ct_documents WHERE resource = ? AND id = ?", (resource, doc_id)
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def get_many(self, resource: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        _check_resource(resource)
        wanted = sorted(set(ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.conn.execute(
                f"SELECT id, body FROM ct_documents WHERE resource = ? AND id IN ({marks})",
                (resource, *chunk),
            ).fetchall()
            found.update({row[0]: json.loads(row[1]) for row in rows})
        return found

    def get_by(self, resource: str, field: str, value: str) -> dict[str, Any] | None:
        """Find one document by ``id``, ``key``, ``orderNumber`` (orders) or ``sku``."""
        _check_resource(resource)
        if field == "id":
            return self.get(resource, value)
        if resource == "products" and field == "sku":
            row = self.conn.execute(
                "SELECT product_id FROM ct_product_skus WHERE sku = ?", (value,)
            ).fetchone()
            return None if row is None else self.get(resource, row[0])
        columns = {"key": "key", "orderNumber": "order_number", "sku": "sku"}
        if field not in columns:
            raise ValueError(f"cannot look up {resource} by {field!r}")
        row = self.conn.execute(
            f"SELECT body FROM ct_documents WHERE resource = ? AND {columns[field]} = ? "
            "ORDER BY id LIMIT 1",
            (resource, value),
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def count(self, resource: str, where: CompiledPredicate | None = None) -> int:
        _check_resource(resource)
        sql = "SELECT count(*) FROM ct_documents AS d WHERE d.resource = ?"
        params: list[object] = [resource]
        if where is not None:
            sql += f" AND ({where.sql})"
            params.extend(where.params)
        return int(self.conn.execute(sql, params).fetchone()[0])

    def iter_all(self, resource: str, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every document of a resource in id order, a batch at a time."""
        _check_resource(resource)
        last = ""
        while True:
            rows = self.conn.execute(
                "SELECT id, body FROM ct_documents WHERE resource = ? AND id > ? ORDER BY id LIMIT ?",
                (resource, last, batch_size),
            ).fetchall()
            for row in rows:
                yield json.loads(row[1])
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    def query(
        self,
        resource: str,
        *,
        where: Sequence[CompiledPredicate] = (),
        sort: CompiledPredicate | None = None,
        limit: int = 20,
        offset: int = 0,
        with_total: bool = True,
        total_cap: int | None = TOTAL_CAP,
    ) -> QueryPage:
        """One page of documents as JSON texts; ``total`` is capped when a predicate is given."""
        _check_resource(resource)
        condition = "d.resource = ?"
        params: list[object] = [resource]
        for predicate in where:
            condition += f" AND ({predicate.sql})"
            params.extend(predicate.params)
        order = sort.sql if sort is not None else "d.id ASC"
        order_params = sort.params if sort is not None else []
        conn = self.conn
        # One read transaction: page and total come from the same snapshot.
        with db.transaction(conn, write=False):
            rows = conn.execute(
                f"SELECT d.body FROM ct_documents AS d WHERE {condition} ORDER BY {order} "
                "LIMIT ? OFFSET ?",
                (*params, *order_params, limit, offset),
            ).fetchall()
            total: int | None = None
            if with_total:
                if where and total_cap is not None:
                    total = int(
                        conn.execute(
                            f"SELECT count(*) FROM (SELECT 1 FROM ct_documents AS d WHERE {condition} "
                            "LIMIT ?)",
                            (*params, total_cap),
                        ).fetchone()[0]
                    )
                else:
                    total = int(
                        conn.execute(
                            f"SELECT count(*) FROM ct_documents AS d WHERE {condition}", params
                        ).fetchone()[0]
                    )
        return QueryPage([row[0] for row in rows], total)
