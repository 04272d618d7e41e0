"""The sandbox ERP/WMS: a WSGI app serving the REST API that ``erp/rest.py`` speaks.

It is the reference implementation of that API, and deliberately picky, like a real ERP:

- Sales orders are unique by external document number (at most 35 characters). Unknown or
  blocked item numbers, unknown tax codes and lines that do not add up to the totals are
  rejected with 422 and a reason that names the line and the item.
- Writes carry an ``Idempotency-Key``: a repeat with the same key and body gets the stored
  answer (same order, no duplicate); the same key with another body is refused.
- At most ``write_limit`` writes are processed at once; one more gets ``423 RecordLocked`` with
  ``Retry-After``, as record locking in an ERP does. Peak in-flight writes and accepted/rejected
  counts are kept per app instance (``metrics()``, ``GET /_admin/metrics``).
- ``write_latency_ms`` makes every write take that long (throughput benches).
- Faults from ``FaultConfig`` side ``erp``: 429/502/503/504 on any request and, for writes,
  ``rate_409`` as a 423 record lock. Timeouts are injected by the sandbox transport.

Stock movements and shipments are read with integer cursors: ids come from AUTOINCREMENT and
SQLite runs one writer at a time, so a reader never sees id n+1 committed before id n.

Tables (prefix ``erp_``) live in the world's ``world.db`` next to the commercetools documents.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError

from ct_sandbox import db
from ct_sandbox.currencies import CURRENCY_DIGITS as ISO_CURRENCY_DIGITS
from ct_sandbox.erp.schema import JournalBatchBody, SalesOrderBody
from ct_sandbox.faults import draw_fault, load_faults, log_request

SIDE = "erp"
MAX_DOCUMENT_NUMBER_LENGTH = 35
TAX_CODES = frozenset({"S", "R", "Z"})
# Every ISO 4217 currency with its fraction digits (JPY 0, GBP 2, KWD 3).
CURRENCY_DIGITS = ISO_CURRENCY_DIGITS
DEFAULT_WRITE_LIMIT = 4
DEFAULT_LOCK_RETRY_AFTER_SECONDS = 1
MAX_PAGE = 5000
# Document numbers one bulk sales-order lookup may ask for (a URL stays well under 8 KiB).
MAX_LOOKUP = 100
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ACCOUNT = re.compile(r"^[0-9A-Z][0-9A-Z-]{0,19}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS erp_items (
    item_no TEXT PRIMARY KEY,
    sku TEXT UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    attributes TEXT NOT NULL DEFAULT '{}',
    tax_code TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    -- 'inventory' items are stocked and listed by GET /items; 'service' items (shipping, gift
    -- wrap, engraving, discounts) can be sold on an order but have no stock and no SKU.
    item_type TEXT NOT NULL DEFAULT 'inventory',
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS erp_item_prices (
    item_no TEXT NOT NULL REFERENCES erp_items (item_no) ON DELETE CASCADE,
    currency TEXT NOT NULL,
    country TEXT NOT NULL DEFAULT '',
    channel_key TEXT NOT NULL DEFAULT '',
    amount_minor INTEGER NOT NULL,
    fraction_digits INTEGER NOT NULL,
    precise_amount TEXT,
    PRIMARY KEY (item_no, currency, country, channel_key)
);
CREATE TABLE IF NOT EXISTS erp_locations (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    channel_key TEXT
);
CREATE TABLE IF NOT EXISTS erp_stock (
    sku TEXT NOT NULL,
    location TEXT NOT NULL,
    on_hand INTEGER NOT NULL,
    reserved INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (sku, location)
);
CREATE TABLE IF NOT EXISTS erp_stock_movements (
    movement_id INTEGER PRIMARY KEY AUTOINCREMENT,
    sku TEXT NOT NULL,
    location TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT,
    on_hand_after INTEGER NOT NULL,
    occurred_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS erp_sales_orders (
    sales_order_no TEXT PRIMARY KEY,
    external_document_number TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    order_date TEXT NOT NULL,
    currency TEXT NOT NULL,
    fraction_digits INTEGER NOT NULL,
    customer TEXT NOT NULL,
    net_minor INTEGER NOT NULL,
    tax_minor INTEGER NOT NULL,
    gross_minor INTEGER NOT NULL,
    source_order_id TEXT NOT NULL,
    source_order_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS erp_sales_orders_status ON erp_sales_orders (status, created_at);
CREATE INDEX IF NOT EXISTS erp_sales_orders_date ON erp_sales_orders (order_date, sales_order_no);
CREATE TABLE IF NOT EXISTS erp_sales_order_lines (
    sales_order_no TEXT NOT NULL REFERENCES erp_sales_orders (sales_order_no) ON DELETE CASCADE,
    line_no INTEGER NOT NULL,
    item_no TEXT NOT NULL,
    description TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price_minor INTEGER NOT NULL,
    net_minor INTEGER NOT NULL,
    tax_minor INTEGER NOT NULL,
    gross_minor INTEGER NOT NULL,
    tax_code TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (sales_order_no, line_no)
);
CREATE TABLE IF NOT EXISTS erp_shipments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    shipment_number TEXT NOT NULL UNIQUE,
    external_document_number TEXT NOT NULL,
    sales_order_no TEXT NOT NULL,
    carrier TEXT,
    tracking_numbers TEXT NOT NULL,
    lines TEXT NOT NULL,
    shipped_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS erp_shipments_document ON erp_shipments (external_document_number);
CREATE TABLE IF NOT EXISTS erp_journal_batches (
    batch_id TEXT PRIMARY KEY,
    journal_no TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    batch TEXT NOT NULL,
    posting_date TEXT NOT NULL,
    currency TEXT NOT NULL,
    total_debit_minor INTEGER NOT NULL,
    total_credit_minor INTEGER NOT NULL,
    line_count INTEGER NOT NULL,
    posted_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS erp_idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS erp_counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS erp_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_schema_ready: set[str] = set()


def ensure_erp_schema(db_path: str | os.PathLike[str]) -> sqlite3.Connection:
    """This thread's connection, with the ERP tables created (once per process and file)."""
    conn = db.connect(db_path)
    key = db.normalise_path(db_path)
    if key not in _schema_ready:
        conn.executescript(SCHEMA)
        _schema_ready.add(key)
    return conn


def next_number(conn: sqlite3.Connection, name: str) -> int:
    """Next value of a named counter; call inside a write transaction."""
    row = conn.execute(
        "INSERT INTO erp_counters (name, value) VALUES (?, 1) "
        "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
        (name,),
    ).fetchone()
    return int(row[0])


def get_setting(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM erp_settings WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def set_setting(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute(
        "INSERT INTO erp_settings (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


# -- JSON views of rows ------------------------------------------------------------------------

_ITEM_COLUMNS = "item_no, sku, name, description, attributes, tax_code, active, updated_at"


def _item_json(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    items = [
        {
            "item_no": r[0],
            "sku": r[1],
            "name": r[2],
            "description": r[3],
            "attributes": json.loads(r[4]),
            "tax_code": r[5],
            "active": bool(r[6]),
            "updated_at": r[7],
            "prices": [],
        }
        for r in rows
    ]
    if not items:
        return items
    by_no = {item["item_no"]: item for item in items}
    marks = ",".join("?" * len(by_no))
    for row in conn.execute(
        "SELECT item_no, currency, country, channel_key, amount_minor, fraction_digits, precise_amount "
        f"FROM erp_item_prices WHERE item_no IN ({marks}) "
        "ORDER BY item_no, currency, country, channel_key",
        list(by_no),
    ):
        by_no[row[0]]["prices"].append(
            {
                "currency": row[1],
                "country": row[2] or None,
                "channel_key": row[3] or None,
                "amount_minor": row[4],
                "fraction_digits": row[5],
                "precise_amount": row[6],
            }
        )
    return items


def sales_order_json(conn: sqlite3.Connection, sales_order_no: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT sales_order_no, external_document_number, status, order_date, currency, "
        "fraction_digits, customer, net_minor, tax_minor, gross_minor, source_order_id, "
        "source_order_version, created_at, updated_at FROM erp_sales_orders WHERE sales_order_no = ?",
        (sales_order_no,),
    ).fetchone()
    if row is None:
        return None
    lines = [
        {
            "line_no": r[0],
            "item_no": r[1],
            "description": r[2],
            "quantity": r[3],
            "unit_price_minor": r[4],
            "net_minor": r[5],
            "tax_minor": r[6],
            "gross_minor": r[7],
            "tax_code": r[8],
            "kind": r[9],
        }
        for r in conn.execute(
            "SELECT line_no, item_no, description, quantity, unit_price_minor, net_minor, tax_minor, "
            "gross_minor, tax_code, kind FROM erp_sales_order_lines WHERE sales_order_no = ? "
            "ORDER BY line_no",
            (sales_order_no,),
        )
    ]
    return {
        "sales_order_no": row[0],
        "external_document_number": row[1],
        "status": row[2],
        "order_date": row[3],
        "currency": row[4],
        "fraction_digits": row[5],
        "customer": json.loads(row[6]),
        "totals": {"net_minor": row[7], "tax_minor": row[8], "gross_minor": row[9]},
        "source_order_id": row[10],
        "source_order_version": row[11],
        "created_at": row[12],
        "updated_at": row[13],
        "lines": lines,
    }


def _new_sales_order_json(number: str, draft: SalesOrderBody, now: str) -> dict[str, Any]:
    """``sales_order_json`` of an order ``write_sales_order`` has just created from ``draft``."""
    return {
        "sales_order_no": number,
        "external_document_number": draft.external_document_number,
        "status": "open",
        "order_date": draft.order_date.isoformat(),
        "currency": draft.currency,
        "fraction_digits": draft.fraction_digits,
        # Stored as JSON with sorted keys, read back as a dict in that order.
        "customer": dict(sorted(draft.customer.model_dump(mode="json").items())),
        "totals": {
            "net_minor": draft.totals.net_minor,
            "tax_minor": draft.totals.tax_minor,
            "gross_minor": draft.totals.gross_minor,
        },
        "source_order_id": draft.source_order_id,
        "source_order_version": draft.source_order_version,
        "created_at": now,
        "updated_at": now,
        "lines": [
            {
                "line_no": line.line_no,
                "item_no": line.item_no,
                "description": line.description,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "net_minor": line.net_minor,
                "tax_minor": line.tax_minor,
                "gross_minor": line.gross_minor,
                "tax_code": line.tax_code,
                "kind": line.kind,
            }
            for line in sorted(draft.lines, key=lambda line: line.line_no)
        ],
    }


def sales_order_no_for(conn: sqlite3.Connection, external_document_number: str) -> str | None:
    row = conn.execute(
        "SELECT sales_order_no FROM erp_sales_orders WHERE external_document_number = ?",
        (external_document_number,),
    ).fetchone()
    return None if row is None else str(row[0])


def _shipment_json(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "shipment_number": row[1],
        "external_document_number": row[2],
        "carrier": row[3],
        "tracking_numbers": json.loads(row[4]),
        "lines": json.loads(row[5]),
        "shipped_at": row[6],
    }


def _posting_json(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "batch_id": row[0],
        "journal_no": row[1],
        "posting_date": row[2],
        "currency": row[3],
        "total_debit_minor": row[4],
        "total_credit_minor": row[5],
        "line_count": row[6],
        "posted_at": row[7],
    }


_POSTING_COLUMNS = (
    "batch_id, journal_no, posting_date, currency, total_debit_minor, total_credit_minor, "
    "line_count, posted_at"
)


# -- writes shared by the REST API and the world (seed, clock, drift) ---------------------------


_UNKNOWN = object()


def write_sales_order(
    conn: sqlite3.Connection,
    draft: SalesOrderBody,
    now: str,
    *,
    status: str = "open",
    existing: str | object | None = _UNKNOWN,
) -> tuple[str, bool]:
    """Insert or replace a sales order's header and lines; (sales_order_no, created).

    Call inside a write transaction, after validation. ``existing``: the document's sales order
    number (None: none yet) when the caller has just read it in this transaction.
    """
    if existing is _UNKNOWN:
        existing = sales_order_no_for(conn, draft.external_document_number)
    header = (
        draft.order_date.isoformat(),
        draft.currency,
        draft.fraction_digits,
        json.dumps(draft.customer.model_dump(mode="json"), sort_keys=True),
        draft.totals.net_minor,
        draft.totals.tax_minor,
        draft.totals.gross_minor,
        draft.source_order_id,
        draft.source_order_version,
    )
    if existing is None:
        number = f"SO{next_number(conn, 'sales_order'):07d}"
        conn.execute(
            "INSERT INTO erp_sales_orders (sales_order_no, external_document_number, status, "
            "order_date, currency, fraction_digits, customer, net_minor, tax_minor, gross_minor, "
            "source_order_id, source_order_version, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (number, draft.external_document_number, status, *header, now, now),
        )
    else:
        number = str(existing)
        conn.execute(
            "UPDATE erp_sales_orders SET order_date = ?, currency = ?, fraction_digits = ?, "
            "customer = ?, net_minor = ?, tax_minor = ?, gross_minor = ?, source_order_id = ?, "
            "source_order_version = ?, updated_at = ? WHERE sales_order_no = ?",
            (*header, now, number),
        )
        conn.execute("DELETE FROM erp_sales_order_lines WHERE sales_order_no = ?", (number,))
    conn.executemany(
        "INSERT INTO erp_sales_order_lines (sales_order_no, line_no, item_no, description, "
        "quantity, unit_price_minor, net_minor, tax_minor, gross_minor, tax_code, kind) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                number,
                line.line_no,
                line.item_no,
                line.description,
                line.quantity,
                line.unit_price_minor,
                line.net_minor,
                line.tax_minor,
                line.gross_minor,
                line.tax_code,
                line.kind,
            )
            for line in draft.lines
        ],
    )
    return number, existing is None


def record_movement(
    conn: sqlite3.Connection,
    sku: str,
    location: str,
    quantity: int,
    reason: str,
    reference: str | None,
    at: str,
) -> int:
    """Apply a stock change and log it as a movement; returns the movement id.

    Call inside a write transaction.
    """
    conn.execute(
        "INSERT INTO erp_stock (sku, location, on_hand, reserved, updated_at) VALUES (?, ?, ?, 0, ?) "
        "ON CONFLICT (sku, location) DO UPDATE SET on_hand = on_hand + excluded.on_hand, "
        "updated_at = excluded.updated_at",
        (sku, location, quantity, at),
    )
    on_hand = conn.execute(
        "SELECT on_hand FROM erp_stock WHERE sku = ? AND location = ?", (sku, location)
    ).fetchone()[0]
    cursor = conn.execute(
        "INSERT INTO erp_stock_movements (sku, location, quantity, reason, reference, "
        "on_hand_after, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sku, location, quantity, reason, reference, on_hand, at),
    )
    return int(cursor.lastrowid or 0)


def record_shipment(
    conn: sqlite3.Connection,
    sales_order_no: str,
    external_document_number: str,
    lines: Sequence[Mapping[str, Any]],
    carrier: str,
    tracking_numbers: Sequence[str],
    at: str,
    *,
    location: str | None = None,
) -> str:
    """Ship lines of a sales order (and take the stock out of ``location``); the shipment number.

    Call inside a write transaction.
    """
    number = f"SH{next_number(conn, 'shipment'):07d}"
    conn.execute(
        "INSERT INTO erp_shipments (shipment_number, external_document_number, sales_order_no, "
        "carrier, tracking_numbers, lines, shipped_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            number,
            external_document_number,
            sales_order_no,
            carrier,
            json.dumps(list(tracking_numbers)),
            json.dumps([dict(line) for line in lines]),
            at,
        ),
    )
    if location is not None:
        for line in lines:
            record_movement(
                conn, str(line["sku"]), location, -int(line["quantity"]), "shipment", number, at
            )
    conn.execute(
        "UPDATE erp_sales_orders SET status = 'shipped', updated_at = ? WHERE sales_order_no = ?",
        (at, sales_order_no),
    )
    return number


# -- validation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


def validate_sales_order(
    conn: sqlite3.Connection, draft: SalesOrderBody, path_document_number: str
) -> list[Problem]:
    """Everything a picky ERP refuses in a sales order, each problem with a readable reason."""
    problems: list[Problem] = []
    number = draft.external_document_number
    if number != path_document_number:
        problems.append(
            Problem(
                "external_document_number",
                "DocumentNumberMismatch",
                f"external document number {number!r} in the body differs from "
                f"{path_document_number!r} in the URL",
            )
        )
    if len(number) > MAX_DOCUMENT_NUMBER_LENGTH:
        problems.append(
            Problem(
                "external_document_number",
                "FieldTooLong",
                f"external document number {number!r} is {len(number)} characters long; "
                f"at most {MAX_DOCUMENT_NUMBER_LENGTH} are allowed",
            )
        )
    expected_digits = CURRENCY_DIGITS.get(draft.currency)
    if expected_digits is None:
        problems.append(
            Problem("currency", "UnknownCurrency", f"currency {draft.currency} is not set up")
        )
    elif draft.fraction_digits != expected_digits:
        problems.append(
            Problem(
                "fraction_digits",
                "InvalidFractionDigits",
                f"{draft.currency} amounts have {expected_digits} fraction digits, "
                f"not {draft.fraction_digits}",
            )
        )
    if not draft.lines:
        problems.append(Problem("lines", "NoLines", "a sales order needs at least one line"))
    item_numbers = {line.item_no for line in draft.lines}
    known: dict[str, bool] = {}
    if item_numbers:
        marks = ",".join("?" * len(item_numbers))
        for item_no, active in conn.execute(
            f"SELECT item_no, active FROM erp_items WHERE item_no IN ({marks})", list(item_numbers)
        ):
            known[item_no] = bool(active)
    seen_line_numbers: set[int] = set()
    for index, line in enumerate(draft.lines):
        where = f"lines[{index}]"
        if line.line_no in seen_line_numbers:
            problems.append(
                Problem(
                    f"{where}.line_no", "DuplicateLineNo", f"line number {line.line_no} repeats"
                )
            )
        seen_line_numbers.add(line.line_no)
        if line.item_no not in known:
            problems.append(
                Problem(
                    f"{where}.item_no",
                    "UnknownItem",
                    f"item {line.item_no!r} on line {line.line_no} does not exist in the ERP",
                )
            )
        elif not known[line.item_no]:
            problems.append(
                Problem(
                    f"{where}.item_no",
                    "ItemBlocked",
                    f"item {line.item_no!r} on line {line.line_no} is blocked for sales",
                )
            )
        if line.tax_code not in TAX_CODES:
            problems.append(
                Problem(
                    f"{where}.tax_code",
                    "UnknownTaxCode",
                    f"tax code {line.tax_code!r} on line {line.line_no} is not one of "
                    f"{', '.join(sorted(TAX_CODES))}",
                )
            )
        if line.net_minor + line.tax_minor != line.gross_minor:
            problems.append(
                Problem(
                    where,
                    "LineAmountsInconsistent",
                    f"line {line.line_no}: net {line.net_minor} + tax {line.tax_minor} "
                    f"!= gross {line.gross_minor}",
                )
            )
    totals = draft.totals
    sums = (
        sum(line.net_minor for line in draft.lines),
        sum(line.tax_minor for line in draft.lines),
        sum(line.gross_minor for line in draft.lines),
    )
    if sums != (totals.net_minor, totals.tax_minor, totals.gross_minor):
        problems.append(
            Problem(
                "totals",
                "TotalsMismatch",
                f"lines add up to net {sums[0]}, tax {sums[1]}, gross {sums[2]} but the totals "
                f"say net {totals.net_minor}, tax {totals.tax_minor}, gross {totals.gross_minor}",
            )
        )
    return problems


# -- the WSGI app ------------------------------------------------------------------------------


class _HttpError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: Iterable[Mapping[str, Any]] = (),
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = [dict(e) for e in errors]
        self.headers = list(headers)

    def body(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "code": self.code,
            "message": self.message,
            "errors": self.errors or [{"code": self.code, "message": self.message}],
        }


_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    423: "Locked",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

Response = tuple[int, Any, list[tuple[str, str]]]


class ErpSandboxApp:
    """WSGI app of the sandbox ERP/WMS over ``db_path`` (the world's ``world.db``)."""

    side = SIDE

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        write_limit: int | None = None,
        write_latency_ms: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db_path = os.fspath(db_path)
        conn = ensure_erp_schema(self.db_path)
        stored_limit = get_setting(conn, "write_limit")
        stored_latency = get_setting(conn, "write_latency_ms")
        self.write_limit = (
            write_limit
            if write_limit is not None
            else int(stored_limit)
            if stored_limit
            else DEFAULT_WRITE_LIMIT
        )
        self.write_latency_ms = (
            write_latency_ms
            if write_latency_ms is not None
            else int(stored_latency)
            if stored_latency
            else 0
        )
        self.lock_retry_after_seconds = DEFAULT_LOCK_RETRY_AFTER_SECONDS
        self._sleep = sleep
        self._lock = threading.Lock()
        self._in_flight = 0
        self._peak = 0
        self._accepted = 0
        self._rejected = 0
        self._failed = 0
        self._faults_injected = 0

    # -- configuration and metrics (from Python, or /_admin over HTTP) ---------------------------

    def configure(
        self, *, write_limit: int | None = None, write_latency_ms: int | None = None
    ) -> None:
        """Change the limits of this instance and store them for other processes."""
        conn = ensure_erp_schema(self.db_path)
        with db.transaction(conn):
            if write_limit is not None:
                if write_limit < 1:
                    raise ValueError("write_limit must be at least 1")
                self.write_limit = write_limit
                set_setting(conn, "write_limit", str(write_limit))
            if write_latency_ms is not None:
                if write_latency_ms < 0:
                    raise ValueError("write_latency_ms must not be negative")
                self.write_latency_ms = write_latency_ms
                set_setting(conn, "write_latency_ms", str(write_latency_ms))

    def metrics(self) -> dict[str, int]:
        with self._lock:
            return {
                "write_limit": self.write_limit,
                "write_latency_ms": self.write_latency_ms,
                "in_flight_writes": self._in_flight,
                "peak_in_flight_writes": self._peak,
                "writes_accepted": self._accepted,
                "writes_rejected_locked": self._rejected,
                "writes_failed": self._failed,
                "faults_injected": self._faults_injected,
            }

    def reset_metrics(self) -> None:
        with self._lock:
            self._peak = self._in_flight
            self._accepted = self._rejected = self._failed = self._faults_injected = 0

    # -- WSGI ------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO") or "/")
        if path == "/erp" or path.startswith("/erp/"):
            # Served under /erp next to commercetools (SANDBOX_ERP_URL); tolerate both mounts.
            path = path[4:] or "/"
        query = parse_qs(str(environ.get("QUERY_STRING") or ""), keep_blank_values=True)
        try:
            status, body, headers = self._dispatch(method, path, query, environ)
        except _HttpError as exc:
            status, body, headers = exc.status, exc.body(), exc.headers
        if not path.startswith("/_admin"):
            # The transport marks this row when it drops the answer (timeout after the write).
            seq = log_request(self.db_path, SIDE, method, path, status)
            headers = [*headers, ("X-Sandbox-Request-Seq", str(seq))]
        payload = b"" if body is None else json.dumps(body).encode()
        start_response(
            f"{status} {_REASONS.get(status, 'Unknown')}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                *headers,
            ],
        )
        return [payload]

    def _dispatch(
        self, method: str, path: str, query: dict[str, list[str]], environ: Mapping[str, Any]
    ) -> Response:
        if path.startswith("/_admin/"):
            return self._admin(method, path)
        if path == "/health":
            return 200, {"status": "ok"}, []
        self._inject_fault(method, path)
        if method in WRITE_METHODS:
            return self._write(method, path, environ)
        if method != "GET":
            raise _HttpError(405, "MethodNotAllowed", f"{method} is not supported here")
        conn = ensure_erp_schema(self.db_path)
        if path == "/items":
            return 200, self._items(conn, query), []
        if path.startswith("/items/"):
            rows = conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM erp_items WHERE item_no = ?", (path[7:],)
            ).fetchall()
            if not rows:
                raise _HttpError(404, "NotFound", f"item {path[7:]!r} does not exist")
            return 200, _item_json(conn, rows)[0], []
        if path == "/stock":
            return 200, self._stock(conn, query), []
        if path == "/stock-movements":
            return 200, self._movements(conn, query), []
        if path == "/shipments":
            return 200, self._shipments(conn, query), []
        if path == "/sales-orders":
            return 200, self._sales_orders(conn, query), []
        if path == "/journal-batches":
            return 200, self._journal_batches(conn, query), []
        if path.startswith("/sales-orders/"):
            document = path[len("/sales-orders/") :]
            number = sales_order_no_for(conn, document)
            order = None if number is None else sales_order_json(conn, number)
            if order is None:
                raise _HttpError(404, "NotFound", f"no sales order for document {document!r}")
            return 200, order, []
        if path.startswith("/journal-batches/"):
            batch_id = path[len("/journal-batches/") :]
            row = conn.execute(
                f"SELECT {_POSTING_COLUMNS} FROM erp_journal_batches WHERE batch_id = ?",
                (batch_id,),
            ).fetchone()
            if row is None:
                raise _HttpError(404, "NotFound", f"no journal batch {batch_id!r}")
            return 200, _posting_json(row), []
        raise _HttpError(404, "NotFound", f"no route GET {path}")

    def _admin(self, method: str, path: str) -> Response:
        if path == "/_admin/metrics" and method == "GET":
            return 200, self.metrics(), []
        if path == "/_admin/metrics/reset" and method == "POST":
            self.reset_metrics()
            return 200, self.metrics(), []
        raise _HttpError(404, "NotFound", f"no route {method} {path}")

    def _inject_fault(self, method: str, path: str) -> None:
        cfg = load_faults(self.db_path, SIDE)
        if not cfg.applies_to(path):
            return
        choices = [
            ("429", cfg.rate_429),
            ("502", cfg.rate_502),
            ("503", cfg.rate_503),
            ("504", cfg.rate_504),
        ]
        if method in WRITE_METHODS:
            # An ERP's write conflict is a record lock, not a version mismatch.
            choices.append(("423", cfg.rate_409))
        fault = draw_fault(self.db_path, SIDE, cfg, choices)
        if fault is None:
            return
        with self._lock:
            self._faults_injected += 1
        retry_after = [("Retry-After", str(cfg.retry_after_seconds))]
        if fault == "423":
            raise _HttpError(
                423, "RecordLocked", "the record is locked by another user", headers=retry_after
            )
        status = int(fault)
        code = {429: "TooManyRequests", 502: "BadGateway", 503: "ServiceUnavailable"}.get(
            status, "GatewayTimeout"
        )
        raise _HttpError(
            status,
            code,
            "injected fault",
            headers=retry_after if status in (429, 503) else [],
        )

    # -- reads -----------------------------------------------------------------------------------

    @staticmethod
    def _limit(query: Mapping[str, list[str]], default: int = 500) -> int:
        raw = (query.get("limit") or [str(default)])[0]
        try:
            limit = int(raw)
        except ValueError:
            raise _HttpError(400, "InvalidInput", f"limit {raw!r} is not a number") from None
        if not 1 <= limit <= MAX_PAGE:
            raise _HttpError(400, "InvalidInput", f"limit must be between 1 and {MAX_PAGE}")
        return limit

    @staticmethod
    def _int_cursor(query: Mapping[str, list[str]]) -> int:
        raw = (query.get("cursor") or [""])[0]
        if raw == "":
            return 0
        if not raw.isdigit():
            raise _HttpError(400, "InvalidCursor", f"cursor {raw!r} was not issued by this ERP")
        return int(raw)

    def _items(self, conn: sqlite3.Connection, query: Mapping[str, list[str]]) -> dict[str, Any]:
        limit = self._limit(query)
        after = (query.get("cursor") or [""])[0]
        rows = conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM erp_items WHERE item_type = 'inventory' AND item_no > ? "
            "ORDER BY item_no LIMIT ?",
            (after, limit + 1),
        ).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        return {
            "items": _item_json(conn, rows),
            "next_cursor": rows[-1][0] if rows else (after or None),
            "has_more": has_more,
        }

    def _stock(self, conn: sqlite3.Connection, query: Mapping[str, list[str]]) -> dict[str, Any]:
        limit = self._limit(query)
        cursor = (query.get("cursor") or [""])[0]
        after_sku, _, after_location = cursor.partition("|")
        locations = [value for value in query.get("location", []) if value]
        sql = (
            "SELECT sku, location, on_hand, reserved, updated_at FROM erp_stock "
            # A row-value comparison lets SQLite seek the (sku, location) key instead of
            # rescanning from the start on every page (200k rows in pages of 500).
            "WHERE (sku, location) > (?, ?)"
        )
        params: list[Any] = [after_sku, after_location]
        if locations:
            sql += f" AND location IN ({','.join('?' * len(locations))})"
            params += locations
        rows = conn.execute(
            sql + " ORDER BY sku, location LIMIT ?", [*params, limit + 1]
        ).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        return {
            "stock": [
                {
                    "sku": r[0],
                    "location": r[1],
                    "on_hand": r[2],
                    "reserved": r[3],
                    "available": r[2] - r[3],
                    "updated_at": r[4],
                }
                for r in rows
            ],
            "next_cursor": f"{rows[-1][0]}|{rows[-1][1]}" if rows else (cursor or None),
            "has_more": has_more,
        }

    def _movements(
        self, conn: sqlite3.Connection, query: Mapping[str, list[str]]
    ) -> dict[str, Any]:
        limit = self._limit(query, 1000)
        after = self._int_cursor(query)
        rows = conn.execute(
            "SELECT movement_id, sku, location, quantity, reason, reference, on_hand_after, "
            "occurred_at FROM erp_stock_movements WHERE movement_id > ? ORDER BY movement_id LIMIT ?",
            (after, limit + 1),
        ).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        return {
            "movements": [
                {
                    "movement_id": r[0],
                    "sku": r[1],
                    "location": r[2],
                    "quantity": r[3],
                    "reason": r[4],
                    "reference": r[5],
                    "on_hand_after": r[6],
                    "occurred_at": r[7],
                }
                for r in rows
            ],
            "next_cursor": str(rows[-1][0]) if rows else str(after),
            "has_more": has_more,
        }

    def _shipments(
        self, conn: sqlite3.Connection, query: Mapping[str, list[str]]
    ) -> dict[str, Any]:
        limit = self._limit(query)
        after = self._int_cursor(query)
        rows = conn.execute(
            "SELECT seq, shipment_number, external_document_number, carrier, tracking_numbers, "
            "lines, shipped_at FROM erp_shipments WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit + 1),
        ).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        return {
            "shipments": [_shipment_json(r) for r in rows],
            "next_cursor": str(rows[-1][0]) if rows else str(after),
            "has_more": has_more,
        }

    @staticmethod
    def _date_param(query: Mapping[str, list[str]], name: str) -> str:
        raw = (query.get(name) or [""])[0]
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            raise _HttpError(400, "InvalidInput", f"{name} must be a date (YYYY-MM-DD)")
        return raw

    def _sales_orders(
        self, conn: sqlite3.Connection, query: Mapping[str, list[str]]
    ) -> dict[str, Any]:
        """One order date's sales orders with their lines, keyset-paged by sales order number;
        or, with ``external_document_number`` (repeated, at most ``MAX_LOOKUP``), the sales
        orders of those documents that exist (a bulk lookup: one request for a batch)."""
        if "external_document_number" in query:
            return self._sales_orders_by_document(conn, query["external_document_number"])
        order_date = self._date_param(query, "order_date")
        limit = self._limit(query)
        after = (query.get("cursor") or [""])[0]
        numbers = [
            row[0]
            for row in conn.execute(
                "SELECT sales_order_no FROM erp_sales_orders WHERE order_date = ? "
                "AND sales_order_no > ? ORDER BY sales_order_no LIMIT ?",
                (order_date, after, limit + 1),
            )
        ]
        has_more = len(numbers) > limit
        numbers = numbers[:limit]
        return {
            "sales_orders": [sales_order_json(conn, number) for number in numbers],
            "next_cursor": numbers[-1] if numbers else (after or None),
            "has_more": has_more,
        }

    @staticmethod
    def _sales_orders_by_document(conn: sqlite3.Connection, documents: list[str]) -> dict[str, Any]:
        wanted = list(dict.fromkeys(d for d in documents if d))
        if not wanted:
            raise _HttpError(400, "InvalidInput", "external_document_number must not be empty")
        if len(wanted) > MAX_LOOKUP:
            raise _HttpError(
                400,
                "InvalidInput",
                f"at most {MAX_LOOKUP} external_document_number values per request",
            )
        rows = conn.execute(
            "SELECT sales_order_no FROM erp_sales_orders WHERE external_document_number IN "
            f"({','.join('?' * len(wanted))}) ORDER BY sales_order_no",
            wanted,
        ).fetchall()
        return {
            "sales_orders": [sales_order_json(conn, row[0]) for row in rows],
            "next_cursor": None,
            "has_more": False,
        }

    def _journal_batches(
        self, conn: sqlite3.Connection, query: Mapping[str, list[str]]
    ) -> dict[str, Any]:
        """One posting date's journal batches with their lines, keyset-paged by batch id."""
        posting_date = self._date_param(query, "posting_date")
        limit = self._limit(query)
        after = (query.get("cursor") or [""])[0]
        rows = conn.execute(
            "SELECT batch_id, batch, journal_no, posted_at FROM erp_journal_batches "
            "WHERE posting_date = ? AND batch_id > ? ORDER BY batch_id LIMIT ?",
            (posting_date, after, limit + 1),
        ).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        return {
            "journal_batches": [
                {**json.loads(r[1]), "journal_no": r[2], "posted_at": r[3]} for r in rows
            ],
            "next_cursor": rows[-1][0] if rows else (after or None),
            "has_more": has_more,
        }

    # -- writes ----------------------------------------------------------------------------------

    def _admit(self) -> None:
        with self._lock:
            if self._in_flight >= self.write_limit:
                self._rejected += 1
                raise _HttpError(
                    423,
                    "RecordLocked",
                    f"the ERP is processing {self._in_flight} writes (limit {self.write_limit}); "
                    "try again shortly",
                    headers=[("Retry-After", str(self.lock_retry_after_seconds))],
                )
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def _write(self, method: str, path: str, environ: Mapping[str, Any]) -> Response:
        self._admit()
        ok = False
        try:
            if self.write_latency_ms:
                # The slot is held while "processing", outside the database lock, so that
                # concurrent writes really overlap as they would in an ERP.
                self._sleep(self.write_latency_ms / 1000)
            response = self._route_write(method, path, environ)
            ok = True
            return response
        finally:
            with self._lock:
                self._in_flight -= 1
                if ok:
                    self._accepted += 1
                else:
                    self._failed += 1

    def _route_write(self, method: str, path: str, environ: Mapping[str, Any]) -> Response:
        if method == "PUT" and path.startswith("/sales-orders/"):
            document = path[len("/sales-orders/") :]
            return self._idempotent(
                environ,
                method,
                path,
                lambda conn, body, now: self._put_sales_order(conn, document, body, now),
            )
        if method == "POST" and path == "/journal-batches":
            return self._idempotent(environ, method, path, self._post_journal_batch)
        raise _HttpError(404, "NotFound", f"no route {method} {path}")

    def _idempotent(
        self,
        environ: Mapping[str, Any],
        method: str,
        path: str,
        handler: Callable[[sqlite3.Connection, dict[str, Any], str], tuple[int, dict[str, Any]]],
    ) -> Response:
        key = str(environ.get("HTTP_IDEMPOTENCY_KEY") or "").strip()
        if not key:
            raise _HttpError(400, "MissingIdempotencyKey", "writes need an Idempotency-Key header")
        if len(key) > 255:
            raise _HttpError(400, "InvalidInput", "Idempotency-Key is longer than 255 characters")
        raw = _read_body(environ)
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise _HttpError(400, "InvalidJson", "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _HttpError(400, "InvalidJson", "the request body must be a JSON object")
        fingerprint = hashlib.sha256(
            f"{method} {path}\n".encode() + json.dumps(body, sort_keys=True).encode()
        ).hexdigest()
        conn = ensure_erp_schema(self.db_path)
        # One clock reading per write (the world clock is a stored offset: a query each time).
        now = self._now()
        with db.transaction(conn):
            row = conn.execute(
                "SELECT fingerprint, status, body FROM erp_idempotency_keys WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise _HttpError(
                        422,
                        "IdempotencyKeyReused",
                        "this Idempotency-Key was used for a different request",
                    )
                return int(row[1]), json.loads(row[2]), [("Idempotent-Replayed", "true")]
            status, response = handler(conn, body, now)
            # Only successes are remembered: a rejected request may be corrected and resent.
            conn.execute(
                "INSERT INTO erp_idempotency_keys (key, fingerprint, status, body, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, fingerprint, status, json.dumps(response), now),
            )
        return status, response, []

    def _now(self) -> str:
        return db.format_timestamp(db.sandbox_now(self.db_path))

    def _put_sales_order(
        self, conn: sqlite3.Connection, document: str, body: dict[str, Any], now: str
    ) -> tuple[int, dict[str, Any]]:
        try:
            draft = SalesOrderBody.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc) from None
        problems = validate_sales_order(conn, draft, document)
        if problems:
            raise _HttpError(
                422,
                "ValidationFailed",
                f"sales order {document!r}: " + "; ".join(p.message for p in problems[:5]),
                [p.as_json() for p in problems],
            )
        existing = sales_order_no_for(conn, document)
        if existing is not None:
            current = sales_order_json(conn, existing)
            assert current is not None
            wanted = draft.model_dump(mode="json")
            if {k: current[k] for k in wanted} == wanted:
                # The same document again (another key, same content): nothing to change.
                return 200, current
            if current["status"] != "open":
                raise _HttpError(
                    409,
                    "DocumentNotOpen",
                    f"sales order {existing} for {document!r} is {current['status']} and can no "
                    "longer be changed",
                )
            if draft.source_order_version < current["source_order_version"]:
                raise _HttpError(
                    409,
                    "OutdatedSourceVersion",
                    f"sales order {existing} already holds source version "
                    f"{current['source_order_version']}, newer than {draft.source_order_version}",
                )
        number, created = write_sales_order(conn, draft, now, existing=existing)
        if created:
            # Exactly what reading it back would give, without reading it back.
            return 201, _new_sales_order_json(number, draft, now)
        order = sales_order_json(conn, number)
        assert order is not None
        return 200, order

    def _post_journal_batch(
        self, conn: sqlite3.Connection, body: dict[str, Any], now: str
    ) -> tuple[int, dict[str, Any]]:
        try:
            batch = JournalBatchBody.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc) from None
        bad = [line for line in batch.lines if not _ACCOUNT.match(line.account)]
        if bad:
            raise _HttpError(
                422,
                "UnknownAccount",
                f"journal batch {batch.batch_id!r}: account {bad[0].account!r} on line "
                f"{bad[0].line_no} is not in the chart of accounts",
            )
        if CURRENCY_DIGITS.get(batch.currency) != batch.fraction_digits:
            raise _HttpError(
                422,
                "InvalidFractionDigits",
                f"{batch.currency} with {batch.fraction_digits} fraction digits is not set up",
            )
        fingerprint = hashlib.sha256(batch.model_dump_json().encode()).hexdigest()
        row = conn.execute(
            f"SELECT {_POSTING_COLUMNS}, fingerprint FROM erp_journal_batches WHERE batch_id = ?",
            (batch.batch_id,),
        ).fetchone()
        if row is not None:
            if row[-1] != fingerprint:
                raise _HttpError(
                    409,
                    "BatchIdReused",
                    f"journal batch {batch.batch_id!r} was already posted with other lines",
                )
            return 200, _posting_json(row[:-1])
        total = sum(line.debit_minor for line in batch.lines)
        journal_no = f"GJ{next_number(conn, 'journal'):07d}"
        conn.execute(
            "INSERT INTO erp_journal_batches (batch_id, journal_no, fingerprint, batch, "
            "posting_date, currency, total_debit_minor, total_credit_minor, line_count, posted_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                batch.batch_id,
                journal_no,
                fingerprint,
                batch.model_dump_json(),
                batch.posting_date.isoformat(),
                batch.currency,
                total,
                total,
                len(batch.lines),
                now,
            ),
        )
        row = conn.execute(
            f"SELECT {_POSTING_COLUMNS} FROM erp_journal_batches WHERE batch_id = ?",
            (batch.batch_id,),
        ).fetchone()
        return 201, _posting_json(row)


def _read_body(environ: Mapping[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None or length <= 0:
        return b""
    return bytes(stream.read(length))


def _invalid(exc: ValidationError) -> _HttpError:
    # Field locations and messages only: the rejected values may hold personal data.
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"]),
            "code": "InvalidField",
            "message": error["msg"],
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return _HttpError(422, "ValidationFailed", f"invalid document: {summary}", errors)
