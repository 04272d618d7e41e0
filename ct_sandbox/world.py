"""``SandboxWorld``: the seeded shop, its simulated trade clock, drift injection and transports.

One directory holds one world (``world.db``). ``SandboxWorld.open(dir)`` seeds it on first use
(under a file lock, so two processes starting together seed once) and reuses it afterwards.

The clock is the one every sandbox part reads (``db.sandbox_now``: wall time plus a stored
offset). ``advance(minutes)`` simulates that many minutes of trade after the current simulated
time (new orders and payments in commercetools; stock movements and shipments in the ERP) and
then moves the offset forward, so documents are stamped in simulated time, never in the past of
an earlier advance.
"""

from __future__ import annotations

import fcntl
import gc
import json
import os
import random
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from ct_sandbox import db, settlements
from ct_sandbox.documents import DocumentStore
from ct_sandbox.erp.schema import SalesOrderBody
from ct_sandbox.erp_app import (
    ErpSandboxApp,
    ensure_erp_schema,
    record_movement,
    record_shipment,
    write_sales_order,
)
from ct_sandbox.faults import FaultConfig, save_faults
from ct_sandbox.seed import (
    CARRIERS,
    EXPORT_CHANNEL_KEY,
    LOCATION_CHANNELS,
    TAXES,
    OrderFactory,
    Reference,
    SkuEntry,
    TaxSpec,
    add_delivery,
    build_catalogue,
    channel_docs,
    erp_item_rows,
    money,
    new_id,
    product_doc,
    product_type_doc,
    sales_order_draft,
    shipped_lines,
    tax_category_docs,
    tax_rate_json,
    tracking_number,
)

SHOP_TIMEZONE_ENV = "CT_PIPELINES_SHOP_TIMEZONE"
# "1": seed a world without the planted findings below (the demo's --clean).
CLEAN_ENV = "CT_PIPELINES_SANDBOX_CLEAN"
DEFAULT_SHOP_TIMEZONE = "Europe/London"
DEFAULT_SEED = 1847
DEFAULT_HISTORY_DAYS = 7
DEFAULT_HISTORY_ORDERS = 300
BULK_CHUNK = 2000
DRIFT_KINDS = (
    "price_mismatch",
    "sku_missing_in_erp",
    "tax_rounding_error",
    "failed_dispatch_update",
    "stock_mismatch",
)
ORDER_NUMBER_PREFIX = "UK-"
SETTLEMENT_FAULTS_META = "world_settlement_faults"
# A marketplace order number the ERP's 35-character document number cannot hold.
LONG_ORDER_NUMBER = "MARKETPLACE-AMAZON-UK-206-4837261-5519034"
_STORE_CATEGORIES = frozenset(
    {"Clothing", "Accessories", "Kidswear", "Home", "Kitchen", "Bathroom", "Bedroom", "Lighting"}
)


_ERP_APPS: dict[str, ErpSandboxApp] = {}
_ERP_APPS_LOCK = threading.Lock()


def default_sandbox_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get("CT_PIPELINES_SANDBOX_DIR")
    if explicit:
        return Path(explicit)
    home = env.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError("Set DAGSTER_HOME or CT_PIPELINES_SANDBOX_DIR to locate the sandbox")
    return Path(home) / "sandbox"


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _ts(moment: datetime) -> str:
    return db.format_timestamp(moment)


def shop_timezone(environ: Mapping[str, str] | None = None) -> ZoneInfo:
    """The shop's time zone: $CT_PIPELINES_SHOP_TIMEZONE (an IANA name), Europe/London by default.

    The sandbox reads the same variable as the pipelines' shop settings, itself: it shapes the
    simulated trading day and the days that seeded orders are spread over.
    """
    env = os.environ if environ is None else environ
    name = env.get(SHOP_TIMEZONE_ENV) or DEFAULT_SHOP_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{SHOP_TIMEZONE_ENV}={name!r} is not an IANA time zone (for example Europe/London)"
        ) from None


def _orders_per_minute(moment: datetime, tz: ZoneInfo) -> float:
    """A UK shop's day: quiet at night, busy in the evening."""
    hour = moment.astimezone(tz).hour
    if hour < 7:
        return 0.06
    if hour < 18:
        return 0.15
    if hour < 23:
        return 0.25
    return 0.1


@dataclass(frozen=True)
class WorldMeta:
    seed: int
    seeded_at: str
    edge_cases: dict[str, Any]


class SandboxWorld:
    """A seeded sandbox in ``directory``; use ``SandboxWorld.open``."""

    def __init__(
        self, directory: str | os.PathLike[str], *, timezone: str | ZoneInfo | None = None
    ) -> None:
        """``timezone``: the shop's IANA zone; by default :func:`shop_timezone` (the env var)."""
        self.directory = Path(directory)
        if timezone is None:
            self.tz = shop_timezone()
        else:
            self.tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.db_path = self.directory / "world.db"
        self.documents = DocumentStore(self.db_path)
        ensure_erp_schema(self.db_path)
        self._lock = threading.Lock()
        self._ct_app: Any = None
        self._factory: OrderFactory | None = None

    def __repr__(self) -> str:
        return f"SandboxWorld({str(self.directory)!r})"

    @classmethod
    def open(
        cls,
        sandbox_dir: str | os.PathLike[str] | None = None,
        *,
        seed: int = DEFAULT_SEED,
        orders: int = DEFAULT_HISTORY_ORDERS,
        timezone: str | ZoneInfo | None = None,
        planted: bool | None = None,
    ) -> SandboxWorld:
        """The world in ``sandbox_dir`` (default $CT_PIPELINES_SANDBOX_DIR or $DAGSTER_HOME/sandbox),
        seeded on first use; ``planted`` as in :meth:`seed`."""
        world = cls(
            sandbox_dir if sandbox_dir is not None else default_sandbox_dir(), timezone=timezone
        )
        world.seed(seed=seed, orders=orders, planted=planted)
        return world

    def close(self) -> None:
        """Checkpoint and close this process's connections (the directory can then be copied)."""
        db.close_all(self.db_path)

    # -- meta --------------------------------------------------------------------------------

    def _meta(self, name: str) -> str | None:
        return db.get_meta(self.db_path, name)

    def _set_meta(self, name: str, value: str) -> None:
        db.set_meta(self.db_path, name, value)

    @property
    def is_seeded(self) -> bool:
        return self._meta("world_seeded_at") is not None

    @property
    def seed_value(self) -> int:
        return int(self._meta("world_seed") or DEFAULT_SEED)

    @property
    def planted(self) -> bool:
        """Whether the seed planted its findings (worlds seeded before the flag existed did)."""
        return self._meta("world_planted") != "0"

    def planted_findings(self) -> list[dict[str, Any]]:
        """What the seed planted for the checks to find: kind, the orders or SKUs, and why.

        Each entry has ``kind``, ``subjects`` (order numbers, order ids or SKUs, as the checks
        name them) and ``what``. Empty for a world seeded with ``planted=False``.
        """
        cases = self.edge_cases()
        found: list[dict[str, Any]] = []
        long_id = cases.get("order_with_long_order_number")
        if long_id:
            found.append(
                {
                    "kind": "long_order_number",
                    "subjects": _order_subjects(self, long_id),
                    "what": f"a paid marketplace order whose {len(LONG_ORDER_NUMBER)}-character "
                    "order number does not fit the ERP's 35-character document number",
                }
            )
        if cases.get("orders_without_order_number"):
            found.append(
                {
                    "kind": "orders_without_order_number",
                    "subjects": list(cases["orders_without_order_number"]),
                    "what": "orders placed without an order number (referred to by their id)",
                }
            )
        if cases.get("order_without_taxed_price"):
            found.append(
                {
                    "kind": "order_without_taxed_price",
                    # The checks name an order by its number, the exception queue by its id.
                    "subjects": _order_subjects(self, cases["order_without_taxed_price"]),
                    "what": "a paid order with tax calculation disabled (no taxedPrice)",
                }
            )
        faults = json.loads(self._meta(SETTLEMENT_FAULTS_META) or "{}")
        what = {
            settlements.MISSING_CHARGE: "a card charge commercetools recorded that the payment "
            "provider's settlement file does not hold",
            settlements.AMOUNT_MISMATCH: "a card charge the payment provider settled for 1.00 "
            f"({settlements.SHORT_BY_MINOR} minor units) less than commercetools recorded",
        }
        for kind in (settlements.MISSING_CHARGE, settlements.AMOUNT_MISMATCH):
            if kind in faults:
                found.append(
                    {
                        "kind": f"settlement_{kind}",
                        "subjects": [*self._transaction_subjects(faults[kind])],
                        "what": what[kind],
                    }
                )
        if cases.get("blocked_skus"):
            found.append(
                {
                    "kind": "blocked_skus",
                    "subjects": list(cases["blocked_skus"]),
                    "what": "discontinued items: blocked in the ERP, still listed in commercetools",
                }
            )
        return found

    def _transaction_subjects(self, transaction_id: str) -> list[str]:
        """The order number (or id) holding a payment transaction, and the transaction id."""
        numbers = settlements.order_numbers_by_payment(self.documents.iter_all("orders"))
        for payment in self.documents.iter_all("payments"):
            if any(tx["id"] == transaction_id for tx in payment.get("transactions", [])):
                return [numbers.get(payment["id"], payment["id"]), transaction_id]
        return [transaction_id]

    def settlement_dir(self) -> Path:
        """Where the sandbox payment provider leaves its settlement reports."""
        return self.directory / settlements.REPORT_DIR

    def write_settlement_report(self) -> Path:
        """(Re)write the Stripe balance report: every shop day over by the simulated clock."""
        until = settlements.day_start(self.now(), self.tz)
        faults = json.loads(self._meta(SETTLEMENT_FAULTS_META) or "{}")
        rows = settlements.report_rows(
            self.documents.iter_all("payments"),
            settlements.order_numbers_by_payment(self.documents.iter_all("orders")),
            until,
            faults,
        )
        return settlements.write_report(self.settlement_dir(), rows)

    def edge_cases(self) -> dict[str, Any]:
        """Seeded orders that are unusual on purpose (no orderNumber, no taxedPrice, ...)."""
        return json.loads(self._meta("world_edge_cases") or "{}")

    def now(self) -> datetime:
        """The simulated time."""
        return db.sandbox_now(self.db_path)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One writer of world-level state across threads and processes."""
        with self._lock, open(self.directory / ".world.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _next_counter(self, name: str, count: int = 1) -> int:
        """First of ``count`` new numbers of a world counter (inside a transaction)."""
        current = int(self._meta(name) or 0)
        self._set_meta(name, str(current + count))
        return current + 1

    # -- seeding -----------------------------------------------------------------------------

    def seed(
        self,
        *,
        seed: int = DEFAULT_SEED,
        orders: int = DEFAULT_HISTORY_ORDERS,
        days: int = DEFAULT_HISTORY_DAYS,
        planted: bool | None = None,
    ) -> dict[str, Any]:
        """Seed the shop once; later calls (any process) leave the world as it is.

        ``planted`` (default: unless $CT_PIPELINES_SANDBOX_CLEAN is "1") plants the findings of
        :meth:`planted_findings`; without them the world is the same shop, every check green.
        """
        if planted is None:
            planted = os.environ.get(CLEAN_ENV) != "1"
        with self._exclusive():
            if not self.is_seeded:
                from ct_sandbox import (
                    SANDBOX_CLIENT_ID,
                    SANDBOX_CLIENT_SECRET,
                    SANDBOX_PROJECT_KEY,
                )
                from ct_sandbox.commercetools import register_api_client

                conn = db.connect(self.db_path)
                with db.transaction(conn):
                    _Seeder(self, seed, orders, days, planted=planted).run()
                    register_api_client(
                        self.db_path,
                        SANDBOX_CLIENT_ID,
                        SANDBOX_CLIENT_SECRET,
                        [f"manage_project:{SANDBOX_PROJECT_KEY}"],
                    )
                self.write_settlement_report()
            elif not (self.settlement_dir() / settlements.REPORT_NAME).exists():
                self.write_settlement_report()
        return self.status()

    # -- the order factory over the stored catalogue -----------------------------------------

    def _reference(self) -> Reference:
        raw = json.loads(self._meta("world_reference") or "{}")
        ref = Reference(
            product_type_id=raw["product_type_id"],
            shipping_method_ids=raw["shipping_method_ids"],
            cart_discount_id=raw["cart_discount_id"],
            state_initial_id=raw["state_initial_id"],
        )
        for doc in self.documents.iter_all("tax-categories"):
            ref.tax_categories[doc["key"]] = doc
        for doc in self.documents.iter_all("channels"):
            ref.channels[doc["key"]] = doc
        return ref

    def _order_factory(self) -> OrderFactory:
        if self._factory is None:
            ref = self._reference()
            conn = db.connect(self.db_path)
            sellable = {
                sku: (item_no, tax_code)
                for item_no, sku, tax_code in conn.execute(
                    "SELECT item_no, sku, tax_code FROM erp_items "
                    "WHERE item_type = 'inventory' AND active = 1"
                )
            }
            by_code = {spec.erp_code: spec for spec in TAXES.values()}
            entries: list[SkuEntry] = []
            for product in self.documents.iter_all("products"):
                entries.extend(_sku_entries(product, ref, sellable, by_code))
            entries.sort(key=lambda e: e.sku)
            self._factory = OrderFactory(entries, ref)
        return self._factory

    # -- simulated trade ---------------------------------------------------------------------

    def advance(self, minutes: int) -> dict[str, Any]:
        """Simulate ``minutes`` of trade after the current simulated time; what happened."""
        if minutes < 0:
            raise ValueError("the clock only moves forward")
        with self._exclusive():
            start = self.now().replace(microsecond=0)
            end = start + timedelta(minutes=minutes)
            rng = random.Random(f"{self.seed_value}/advance/{_ts(start)}")
            conn = db.connect(self.db_path)
            with db.transaction(conn):
                last_movement = conn.execute(
                    "SELECT ifnull(max(movement_id), 0) FROM erp_stock_movements"
                ).fetchone()[0]
                orders = self._advance_orders(rng, start, minutes)
                self._advance_movements(conn, rng, start, minutes)
                shipments = self._advance_shipments(conn, start, end)
                # Receipts, store sales, adjustments and the stock shipped, in cursor order.
                movements = [
                    row[0]
                    for row in conn.execute(
                        "SELECT movement_id FROM erp_stock_movements WHERE movement_id > ? "
                        "ORDER BY movement_id",
                        (last_movement,),
                    )
                ]
                offset = float(self._meta(db.CLOCK_OFFSET_META) or 0)
                self._set_meta(db.CLOCK_OFFSET_META, str(offset + minutes * 60))
            self.write_settlement_report()
        return {
            "from": _ts(start),
            "to": _ts(end),
            "order_ids": [o["id"] for o in orders],
            "order_numbers": [o.get("orderNumber") for o in orders],
            "stock_movement_ids": movements,
            "shipment_numbers": shipments,
        }

    def _advance_orders(
        self, rng: random.Random, start: datetime, minutes: int
    ) -> list[dict[str, Any]]:
        factory = self._order_factory()
        times = [
            start + timedelta(minutes=m, seconds=rng.uniform(0, 59.999))
            for m in range(minutes)
            if rng.random() < _orders_per_minute(start + timedelta(minutes=m), self.tz)
        ]
        if not times:
            return []
        first = self._next_counter("world_order_seq", len(times))
        built = [
            factory.build(rng, moment, f"{ORDER_NUMBER_PREFIX}{first + i}")
            for i, moment in enumerate(times)
        ]
        self.documents.insert_many("payments", [p for b in built for p in b.payments])
        self.documents.insert_many("orders", [b.order for b in built])
        return [b.order for b in built]

    def _advance_movements(
        self, conn: Any, rng: random.Random, start: datetime, minutes: int
    ) -> list[int]:
        skus = [row[0] for row in conn.execute("SELECT DISTINCT sku FROM erp_stock ORDER BY sku")]
        if not skus:
            return []
        ids: list[int] = []
        for m in range(minutes):
            draw = rng.random()
            if draw >= 0.1:
                continue
            at = _ts(start + timedelta(minutes=m, seconds=rng.uniform(0, 59.999)))
            sku = rng.choice(skus)
            if draw < 0.05:
                location = rng.choice(("MAN", "MAN", "MK"))
                ids.append(
                    record_movement(
                        conn,
                        sku,
                        location,
                        rng.randrange(12, 61, 6),
                        "receipt",
                        f"PO{rng.randrange(10000, 99999)}",
                        at,
                    )
                )
                continue
            location = "LDN-STORE" if draw < 0.08 else rng.choice(("MAN", "MK"))
            row = conn.execute(
                "SELECT on_hand FROM erp_stock WHERE sku = ? AND location = ?", (sku, location)
            ).fetchone()
            if row is None or row[0] <= 0:
                continue
            reason = "sale" if location == "LDN-STORE" else "adjustment"
            reference = "till" if reason == "sale" else "damaged"
            ids.append(record_movement(conn, sku, location, -1, reason, reference, at))
        return ids

    def _advance_shipments(self, conn: Any, start: datetime, end: datetime) -> list[str]:
        """Ship ERP sales orders whose pick-pack time falls before ``end``."""
        rows = conn.execute(
            "SELECT so.sales_order_no, so.external_document_number, so.created_at, i.sku, "
            "l.quantity FROM erp_sales_orders AS so "
            "JOIN erp_sales_order_lines AS l ON l.sales_order_no = so.sales_order_no "
            "JOIN erp_items AS i ON i.item_no = l.item_no AND i.item_type = 'inventory' "
            "WHERE so.status = 'open' ORDER BY so.created_at, so.sales_order_no, l.line_no"
        ).fetchall()
        orders: dict[str, tuple[str, str, list[dict[str, Any]]]] = {}
        for number, document, created, sku, quantity in rows:
            orders.setdefault(number, (document, created, []))[2].append(
                {"sku": sku, "quantity": quantity}
            )
        shipped: list[str] = []
        due_list = []
        for number, (document, created, lines) in orders.items():
            rng = random.Random(f"{self.seed_value}/ship/{number}")
            due = _parse(created) + timedelta(minutes=rng.uniform(120, 26 * 60))
            if due <= end:
                due_list.append(
                    (max(due, start + timedelta(seconds=1)), number, document, lines, rng)
                )
        for due, number, document, lines, rng in sorted(due_list, key=lambda d: (d[0], d[1])):
            location = _pick_location(conn, lines, ("MAN", "MK"))
            if location is None:
                continue  # back-ordered: stays open until stock arrives
            carrier = rng.choice(CARRIERS)
            shipped.append(
                record_shipment(
                    conn,
                    number,
                    document,
                    lines,
                    carrier,
                    [tracking_number(rng, carrier)],
                    _ts(due),
                    location=location,
                )
            )
        return shipped

    # -- bulk orders for tests and benchmarks --------------------------------------------------

    def bulk_orders(
        self,
        n: int,
        day: date | None = None,
        *,
        payment_kind: str | None = "paid",
        with_payments: bool = False,
        seed: int | None = None,
    ) -> list[str]:
        """Insert ``n`` valid orders fast; their ids.

        ``day`` (shop time zone) spreads them over that day; by default over the 24 hours
        before the simulated now. ``payment_kind`` None draws the seeded mix (paid, authorised,
        pending, failed, ...). Without ``with_payments`` orders carry a paymentState but no
        Payment documents, which keeps 25,000 orders to a few seconds.
        """
        if n <= 0:
            return []
        if day is not None:
            begin = datetime.combine(day, time(0), tzinfo=self.tz).astimezone(self.now().tzinfo)
            span = (
                datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz) - begin
            ).total_seconds()
        else:
            span = 24 * 3600.0
            begin = self.now() - timedelta(seconds=span)
        with self._exclusive():
            factory = self._order_factory()
            first = self._next_counter("world_order_seq", n)
            rng = random.Random(f"{self.seed_value if seed is None else seed}/bulk/{first}")
            offsets = sorted(rng.uniform(0, span - 0.001) for _ in range(n))
            ids: list[str] = []
            conn = db.connect(self.db_path)
            # Tens of thousands of nested dicts: the cyclic GC would rescan them all, again and
            # again, for no garbage at all (it made 25,000 orders four times slower).
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                with db.transaction(conn):
                    for chunk in range(0, n, BULK_CHUNK):
                        built = [
                            factory.build(
                                rng,
                                begin + timedelta(seconds=offsets[i]),
                                f"{ORDER_NUMBER_PREFIX}{first + i}",
                                payment_kind=payment_kind,
                                with_payment=with_payments,
                            )
                            for i in range(chunk, min(n, chunk + BULK_CHUNK))
                        ]
                        if with_payments:
                            self.documents.insert_many(
                                "payments", [p for b in built for p in b.payments]
                            )
                        self.documents.insert_many("orders", [b.order for b in built])
                        ids.extend(b.order["id"] for b in built)
            finally:
                if gc_was_enabled:
                    gc.enable()
        return ids

    def orders_at(
        self,
        moments: list[datetime],
        *,
        payment_kind: str | None = "paid",
        synced_channel_id: str | None = None,
        seed: int | None = None,
    ) -> list[dict[str, Any]]:
        """Insert one order placed (and paid, by default) at each of ``moments``; the orders.

        For benches that drive trade themselves (a steady stream, a burst). With
        ``synced_channel_id`` the orders already carry that channel's sync info, as orders an
        export has marked do. No Payment documents, as in :meth:`bulk_orders`.
        """
        if not moments:
            return []
        with self._exclusive():
            factory = self._order_factory()
            first = self._next_counter("world_order_seq", len(moments))
            rng = random.Random(f"{self.seed_value if seed is None else seed}/at/{first}")
            built: list[dict[str, Any]] = []
            conn = db.connect(self.db_path)
            with db.transaction(conn):
                for chunk in range(0, len(moments), BULK_CHUNK):
                    docs = [
                        factory.build(
                            rng,
                            moment,
                            f"{ORDER_NUMBER_PREFIX}{first + chunk + i}",
                            payment_kind=payment_kind,
                            with_payment=False,
                        ).order
                        for i, moment in enumerate(moments[chunk : chunk + BULK_CHUNK])
                    ]
                    if synced_channel_id is not None:
                        for doc in docs:
                            doc["syncInfo"] = [
                                {
                                    "channel": {"typeId": "channel", "id": synced_channel_id},
                                    "externalId": doc.get("orderNumber") or doc["id"],
                                    "syncedAt": doc["createdAt"],
                                }
                            ]
                    self.documents.insert_many("orders", docs)
                    built.extend(docs)
        return built

    # -- drift injection ---------------------------------------------------------------------

    def inject_drift(self, kind: str, *, count: int = 1, **options: Any) -> dict[str, Any]:
        """Make the two systems disagree in one known way; returns exactly what changed.

        The result always has ``kind``, ``skus``, ``order_ids`` and ``details`` (one dict per
        change). Options: ``skus=[...]`` / ``order_ids=[...]`` to choose the victims.
        """
        if kind not in DRIFT_KINDS:
            raise ValueError(f"unknown drift kind {kind!r}; expected one of {DRIFT_KINDS}")
        with self._exclusive():
            counter = self._next_counter("world_drift_seq")
            rng = random.Random(f"{self.seed_value}/drift/{kind}/{counter}")
            conn = db.connect(self.db_path)
            with db.transaction(conn):
                handler = getattr(self, f"_drift_{kind}")
                details: list[dict[str, Any]] = handler(conn, rng, count, **options)
        return {
            "kind": kind,
            "skus": sorted({d["sku"] for d in details if d.get("sku")}),
            "order_ids": sorted({d["order_id"] for d in details if d.get("order_id")}),
            "details": details,
        }

    def _touch(self, doc: dict[str, Any]) -> None:
        doc["version"] = int(doc["version"]) + 1
        doc["lastModifiedAt"] = _ts(self.now())

    def _drift_price_mismatch(
        self, conn: Any, rng: random.Random, count: int, skus: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Someone edits a GBP price in commercetools (current and staged) but not in the ERP."""
        chosen = skus or rng.sample(self._ct_skus_in_erp(conn, centprecision_only=True), count)
        details = []
        for sku in chosen:
            product = self.documents.get_by("products", "sku", sku)
            if product is None:
                raise ValueError(f"no product holds SKU {sku}")
            erp = conn.execute(
                "SELECT p.amount_minor FROM erp_item_prices AS p JOIN erp_items AS i "
                "ON i.item_no = p.item_no WHERE i.sku = ? AND p.currency = 'GBP'",
                (sku,),
            ).fetchone()
            new_amount = None
            for data in (product["masterData"]["current"], product["masterData"]["staged"]):
                for variant in [data["masterVariant"], *data["variants"]]:
                    if variant.get("sku") != sku:
                        continue
                    for price in variant["prices"]:
                        if price["value"]["currencyCode"] == "GBP":
                            old = price["value"]["centAmount"]
                            new_amount = old + rng.choice((-100, -50, 100, 200, 500))
                            new_amount = max(new_amount, 1)
                            price["value"] = money(new_amount)
            self._touch(product)
            self.documents.replace("products", product)
            details.append(
                {
                    "sku": sku,
                    "product_id": product["id"],
                    "currency": "GBP",
                    "erp_amount_minor": erp[0] if erp else None,
                    "commercetools_amount_minor": new_amount,
                }
            )
        return details

    def _drift_sku_missing_in_erp(
        self, conn: Any, rng: random.Random, count: int, product_keys: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """A merchandiser adds variants in commercetools whose SKUs the ERP does not know."""
        products = [p for p in self.documents.iter_all("products")]
        if product_keys:
            products = [p for p in products if p.get("key") in product_keys]
        details = []
        for _ in range(count):
            product = rng.choice(products)
            current = product["masterData"]["current"]
            master = current["masterVariant"]
            variant_id = 1 + max(v["id"] for v in [master, *current["variants"]])
            sku = f"{master['sku'].split('-')[0]}-NEW{rng.randrange(100, 999)}{variant_id}"
            variant = {
                "id": variant_id,
                "sku": sku,
                "key": sku.lower(),
                "prices": [
                    {
                        "id": new_id(rng),
                        "value": money(master["prices"][0]["value"]["centAmount"]),
                        "country": "GB",
                    }
                ],
                "images": [],
                "attributes": list(master["attributes"]),
                "assets": [],
            }
            for data in (product["masterData"]["current"], product["masterData"]["staged"]):
                data["variants"].append(json.loads(json.dumps(variant)))
            self._touch(product)
            self.documents.replace("products", product)
            details.append({"sku": sku, "product_id": product["id"], "variant_id": variant_id})
        return details

    def _drift_tax_rounding_error(
        self, conn: Any, rng: random.Random, count: int, order_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """An order whose taxPortions are a penny off its line taxes (net + tax still = gross)."""
        if order_ids is None:
            candidates = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM ct_documents WHERE resource = 'orders' "
                    "AND body LIKE '%\"taxPortions\"%' ORDER BY created_at DESC, id LIMIT 200"
                )
            ]
            order_ids = rng.sample(candidates, count)
        details = []
        for order_id in order_ids:
            order = self.documents.get("orders", order_id)
            if order is None or "taxedPrice" not in order:
                raise ValueError(f"order {order_id} has no taxedPrice to corrupt")
            taxed = order["taxedPrice"]
            portion = max(taxed["taxPortions"], key=lambda p: p["amount"]["centAmount"])
            portion["amount"]["centAmount"] += 1
            taxed["totalTax"]["centAmount"] += 1
            taxed["totalNet"]["centAmount"] -= 1
            self._touch(order)
            self.documents.replace("orders", order)
            details.append(
                {
                    "order_id": order_id,
                    "order_number": order.get("orderNumber"),
                    "line_tax_minor": taxed["totalTax"]["centAmount"] - 1,
                    "order_tax_minor": taxed["totalTax"]["centAmount"],
                }
            )
        return details

    def _drift_failed_dispatch_update(
        self, conn: Any, rng: random.Random, count: int, order_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """The ERP shipped, but commercetools never heard: its delivery and Shipped state are gone."""
        shipped = {
            document: number
            for document, number in conn.execute(
                "SELECT external_document_number, shipment_number FROM erp_shipments ORDER BY seq"
            )
        }
        details = []
        if order_ids is None:
            candidates = []
            for document in sorted(shipped):
                order = self.documents.get_by(
                    "orders", "orderNumber", document
                ) or self.documents.get("orders", document)
                if order and order.get("shipmentState") == "Shipped":
                    candidates.append(order["id"])
            if len(candidates) < count:
                raise ValueError("not enough orders shipped in both systems to break")
            order_ids = rng.sample(candidates, count)
        for order_id in order_ids:
            order = self.documents.get("orders", order_id)
            if order is None:
                raise ValueError(f"no order {order_id}")
            document = order.get("orderNumber") or order["id"]
            order["shippingInfo"]["deliveries"] = []
            order["shipmentState"] = "Ready"
            self._touch(order)
            self.documents.replace("orders", order)
            details.append(
                {
                    "order_id": order_id,
                    "external_document_number": document,
                    "shipment_number": shipped.get(document),
                }
            )
        return details

    def _drift_stock_mismatch(
        self, conn: Any, rng: random.Random, count: int, skus: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """A commercetools inventory entry changed behind the ERP's back (available differs)."""
        channels = {doc["id"]: doc["key"] for doc in self.documents.iter_all("channels")}
        location_of = {channel: location for location, channel in LOCATION_CHANNELS.items()}
        candidates = []
        for entry in self.documents.iter_all("inventory"):
            channel = channels.get((entry.get("supplyChannel") or {}).get("id", ""))
            if channel not in location_of or (skus and entry["sku"] not in skus):
                continue
            row = conn.execute(
                "SELECT on_hand - reserved FROM erp_stock WHERE sku = ? AND location = ?",
                (entry["sku"], location_of[channel]),
            ).fetchone()
            if row is not None and row[0] == entry["availableQuantity"]:
                candidates.append((entry, channel, row[0]))
        chosen = candidates if skus else rng.sample(candidates, count)
        details = []
        for entry, channel, erp_available in chosen:
            delta = rng.choice((-5, -3, 4, 7, 12))
            delta = max(delta, -entry["availableQuantity"]) or 6
            entry["quantityOnStock"] += delta
            entry["availableQuantity"] += delta
            self._touch(entry)
            self.documents.replace("inventory", entry)
            details.append(
                {
                    "sku": entry["sku"],
                    "channel_key": channel,
                    "location": location_of[channel],
                    "entry_id": entry["id"],
                    "erp_available": erp_available,
                    "commercetools_available": entry["availableQuantity"],
                }
            )
        return details

    def _ct_skus_in_erp(self, conn: Any, *, centprecision_only: bool = False) -> list[str]:
        sql = (
            "SELECT i.sku FROM erp_items AS i JOIN erp_item_prices AS p ON p.item_no = i.item_no "
            "WHERE i.item_type = 'inventory' AND p.currency = 'GBP'"
        )
        if centprecision_only:
            sql += " AND p.precise_amount IS NULL"
        return [row[0] for row in conn.execute(sql + " ORDER BY i.sku")]

    # -- faults, apps, transports ------------------------------------------------------------

    def set_faults(self, side: str, cfg: FaultConfig | None = None) -> None:
        """Inject faults on one side ("commercetools" or "erp"); None clears them."""
        save_faults(self.db_path, side, cfg or FaultConfig())

    def commercetools_app(self) -> Any:
        with self._lock:
            if self._ct_app is None:
                from ct_sandbox import SANDBOX_PROJECT_KEY
                from ct_sandbox.commercetools import CommercetoolsSandboxApp

                self._ct_app = CommercetoolsSandboxApp(self.db_path, SANDBOX_PROJECT_KEY)
            return self._ct_app

    def erp_app(self) -> ErpSandboxApp:
        """This process's ERP app for the world: every client in the process shares its
        concurrent-write limit and counters, as they would share one real ERP."""
        key = os.path.realpath(self.db_path)
        with _ERP_APPS_LOCK:
            app = _ERP_APPS.get(key)
            if app is None:
                app = _ERP_APPS[key] = ErpSandboxApp(self.db_path)
            return app

    def commercetools_transport(self) -> httpx.BaseTransport:
        from ct_sandbox.transport import sandbox_transport

        return sandbox_transport(self.commercetools_app())

    def erp_transport(self) -> httpx.BaseTransport:
        from ct_sandbox.transport import sandbox_transport

        return sandbox_transport(self.erp_app())

    def configure_erp(
        self, *, write_limit: int | None = None, write_latency_ms: int | None = None
    ) -> None:
        """Concurrent-write limit and per-write latency of the ERP (stored for other processes)."""
        self.erp_app().configure(write_limit=write_limit, write_latency_ms=write_latency_ms)

    def erp_metrics(self) -> dict[str, int]:
        return self.erp_app().metrics()

    # -- overview ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        conn = db.connect(self.db_path)

        def count(table: str) -> int:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

        return {
            "directory": str(self.directory),
            "seeded_at": self._meta("world_seeded_at"),
            "seed": self._meta("world_seed"),
            "now": _ts(self.now()),
            "commercetools": {
                resource: self.documents.count(resource)
                for resource in (
                    "products",
                    "inventory",
                    "channels",
                    "tax-categories",
                    "orders",
                    "payments",
                )
            },
            "erp": {
                "items": int(
                    conn.execute(
                        "SELECT count(*) FROM erp_items WHERE item_type = 'inventory'"
                    ).fetchone()[0]
                ),
                "stock_rows": count("erp_stock"),
                "stock_movements": count("erp_stock_movements"),
                "sales_orders": count("erp_sales_orders"),
                "shipments": count("erp_shipments"),
                "journal_batches": count("erp_journal_batches"),
            },
            "edge_cases": self.edge_cases(),
        }


def _sku_entries(
    product: dict[str, Any],
    ref: Reference,
    sellable: dict[str, tuple[str, str]],
    by_code: dict[str, TaxSpec],
) -> Iterator[SkuEntry]:
    data = product["masterData"]["current"]
    for variant in [data["masterVariant"], *data["variants"]]:
        sku = variant.get("sku")
        if sku not in sellable:
            continue
        item_no, tax_code = sellable[sku]
        spec = by_code[tax_code]
        gbp = next(p for p in variant["prices"] if p["value"]["currencyCode"] == "GBP")
        value = gbp["value"]
        precise = None
        if value["type"] == "highPrecision":
            # Normalised to 4 digits: the factory's line arithmetic works at that scale.
            precise = int(Decimal(value["preciseAmount"]).scaleb(4 - value["fractionDigits"]))
        shared_variant = {
            "id": variant["id"],
            "sku": sku,
            "key": variant.get("key"),
            "prices": [],
            "images": [],
            "attributes": variant.get("attributes", []),
            "assets": [],
        }
        yield SkuEntry(
            sku=sku,
            item_no=item_no,
            product_id=product["id"],
            product_key=product.get("key") or "",
            name=data["name"],
            slug=data["slug"],
            variant=shared_variant,
            price=gbp,
            unit_minor=value["centAmount"],
            precise=precise,
            tax=spec,
            tax_rate=tax_rate_json(ref, spec.key),
        )


def _pick_location(
    conn: Any, lines: list[dict[str, Any]], locations: tuple[str, ...]
) -> str | None:
    """The first location that holds every line's quantity."""
    for location in locations:
        if all(
            (
                row := conn.execute(
                    "SELECT on_hand FROM erp_stock WHERE sku = ? AND location = ?",
                    (line["sku"], location),
                ).fetchone()
            )
            is not None
            and row[0] >= line["quantity"]
            for line in lines
        ):
            return location
    return None


def _order_subjects(world: SandboxWorld, order_id: str) -> list[str]:
    """How the checks may name a seeded order: its number (when it has one), then its id."""
    number = (world.documents.get("orders", order_id) or {}).get("orderNumber")
    return [number, order_id] if number else [order_id]


class _Seeder:
    """Builds the whole shop in one transaction."""

    def __init__(
        self, world: SandboxWorld, seed: int, orders: int, days: int, *, planted: bool = True
    ) -> None:
        self.world = world
        self.planted = planted
        self.seed = seed
        self.orders = orders
        self.days = days
        self.rng = random.Random(seed)
        self.now = world.now().replace(microsecond=0)
        self.start = self.now - timedelta(days=days)
        self.conn = db.connect(world.db_path)
        self.store = world.documents

    def run(self) -> None:
        rng = self.rng
        catalogue_at = _ts(self.start - timedelta(days=30))
        ref = Reference(
            product_type_id=new_id(rng),
            shipping_method_ids={k: new_id(rng) for k in ("standard", "next-day", "click-collect")},
            cart_discount_id=new_id(rng),
            state_initial_id=new_id(rng),
        )
        for doc in tax_category_docs(rng, catalogue_at):
            ref.tax_categories[doc["key"]] = doc
        for doc in channel_docs(rng, catalogue_at):
            ref.channels[doc["key"]] = doc
        catalogue = build_catalogue()
        products = [product_doc(rng, spec, ref, catalogue_at) for spec in catalogue]
        all_skus = sorted(v.sku for spec in catalogue for v in spec.variants)
        # Two discontinued items: blocked in the ERP, still listed in commercetools.
        blocked = set(rng.sample(all_skus, 2))
        if not self.planted:
            blocked = set()  # drawn all the same, so a clean world is the same shop otherwise
        items, prices, item_numbers = erp_item_rows(catalogue, catalogue_at, blocked)
        conn = self.conn
        conn.executemany(
            "INSERT INTO erp_items (item_no, sku, name, description, attributes, tax_code, active, "
            "item_type, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            items,
        )
        conn.executemany(
            "INSERT INTO erp_item_prices (item_no, currency, country, channel_key, amount_minor, "
            "fraction_digits, precise_amount) VALUES (?, ?, ?, ?, ?, ?, ?)",
            prices,
        )
        conn.executemany(
            "INSERT INTO erp_locations (code, name, channel_key) VALUES (?, ?, ?)",
            [
                ("MAN", "Manchester DC", "wh-manchester"),
                ("MK", "Milton Keynes DC", "wh-milton-keynes"),
                ("LDN-STORE", "London Covent Garden store", "store-london"),
            ],
        )
        self._initial_stock(catalogue)
        self.store.insert_many("tax-categories", list(ref.tax_categories.values()))
        self.store.insert_many("channels", list(ref.channels.values()))
        self.store.insert_many("product-types", [product_type_doc(ref, catalogue_at)])
        self.store.insert_many("products", products)

        self.world._set_meta(
            "world_reference",
            json.dumps(
                {
                    "product_type_id": ref.product_type_id,
                    "shipping_method_ids": ref.shipping_method_ids,
                    "cart_discount_id": ref.cart_discount_id,
                    "state_initial_id": ref.state_initial_id,
                }
            ),
        )
        self.world._set_meta("world_seed", str(self.seed))
        self.world._factory = None
        edge_cases = self._history(self.world._order_factory(), ref, item_numbers)
        if self.planted:
            # On shop days before today: the settlement check looks at days that are over.
            tz = self.world.tz
            first_day = self.now.astimezone(tz).date() - timedelta(days=self.days - 1)
            self.world._set_meta(
                SETTLEMENT_FAULTS_META,
                json.dumps(
                    settlements.pick_faults(
                        self.store.iter_all("payments"),
                        datetime.combine(first_day, time(0), tzinfo=tz),
                        settlements.day_start(self.now, tz),
                        self.seed,
                    ),
                    sort_keys=True,
                ),
            )
        self._inventory(ref)
        self.world._set_meta("world_edge_cases", json.dumps(edge_cases, sort_keys=True))
        self.world._set_meta("world_seeded_at", _ts(self.now))

    def _initial_stock(self, catalogue: list[Any]) -> None:
        rng = self.rng
        at = _ts(self.start - timedelta(days=1))
        for spec in catalogue:
            for variant in spec.variants:
                levels = {
                    "MAN": 0 if rng.random() < 0.06 else rng.randrange(20, 160),
                    "MK": 0 if rng.random() < 0.15 else rng.randrange(5, 90),
                }
                if spec.category in _STORE_CATEGORIES:
                    levels["LDN-STORE"] = rng.randrange(0, 13)
                for location, quantity in levels.items():
                    record_movement(
                        self.conn, variant.sku, location, quantity, "count", "stocktake", at
                    )
        # Stock held back for other channels (B2B, quality hold): available = on hand - reserved.
        rows = self.conn.execute(
            "SELECT sku, location, on_hand FROM erp_stock ORDER BY sku, location"
        ).fetchall()
        for sku, location, on_hand in rows:
            if on_hand > 5 and rng.random() < 0.15:
                self.conn.execute(
                    "UPDATE erp_stock SET reserved = ? WHERE sku = ? AND location = ?",
                    (rng.randrange(1, 4), sku, location),
                )

    def _history(
        self, factory: OrderFactory, ref: Reference, item_numbers: dict[str, str]
    ) -> dict[str, Any]:
        rng = self.rng
        span = (self.now - self.start).total_seconds() - 120
        # The history hangs off the clock (the last days up to now) and the shop's hourly rate
        # decides how many draws it takes, so the times have a stream of their own: the orders'
        # contents and the planted findings below then do not depend on the hour of seeding.
        clock_rng = random.Random(f"{self.seed}/times")
        times: list[datetime] = []
        while len(times) < self.orders:
            moment = self.start + timedelta(seconds=clock_rng.uniform(0, span))
            if clock_rng.random() < _orders_per_minute(moment, self.world.tz) / 0.25:
                times.append(moment)
        times.sort()
        # The planted orders are among those the demo reads (its window is the last ``days`` shop
        # days, today included, so the first, partial day of the history is outside it) and old
        # enough for the checks to report them, whatever the time of seeding.
        tz = self.world.tz
        first_day = self.now.astimezone(tz).date() - timedelta(days=self.days - 1)
        window_start = datetime.combine(first_day, time(0), tzinfo=tz)
        readable = [
            i for i, t in enumerate(times) if window_start <= t < self.now - timedelta(hours=3)
        ]
        pool = readable if len(readable) >= 5 else list(range(self.orders))
        picks = random.Random(f"{self.seed}/planted").sample(pool, 5)
        without_number, tax_disabled, long_number = set(picks[:3]), picks[3], picks[4]
        if not self.planted:
            without_number, tax_disabled, long_number = set(), -1, -1
        built = []
        for index, moment in enumerate(times):
            number: str | None = f"{ORDER_NUMBER_PREFIX}{100001 + index}"
            if index in without_number:
                number = None
            elif index == long_number:
                number = LONG_ORDER_NUMBER
            kind = "paid" if index in (tax_disabled, long_number) else None
            built.append(
                factory.build(
                    rng, moment, number, payment_kind=kind, tax_disabled=index == tax_disabled
                )
            )
        self.world._set_meta("world_order_seq", str(100000 + self.orders))

        # Events in time order, so ERP numbers and movement ids follow the clock.
        events: list[tuple[datetime, int, str, dict[str, Any]]] = []
        export_channel = {"typeId": "channel", "id": ref.channels[EXPORT_CHANNEL_KEY]["id"]}
        for index, b in enumerate(built):
            order = b.order
            created = _parse(order["createdAt"])
            if b.payment_kind == "failed" and created < self.now - timedelta(hours=1):
                if rng.random() < 0.7:
                    order["orderState"] = "Cancelled"
                    order["version"] += 1
                    order["lastModifiedAt"] = _ts(created + timedelta(minutes=65))
                continue
            exportable = (
                b.payment_kind in ("paid", "authorised", "refunded", "chargeback")
                and "taxedPrice" in order
                and len(order.get("orderNumber") or order["id"]) <= 35
                and created < self.now - timedelta(hours=3)
            )
            if not exportable or rng.random() >= 0.85:
                continue
            exported = created + timedelta(minutes=rng.uniform(3, 40))
            events.append((exported, index, "export", {}))
            if created < self.now - timedelta(hours=20) and rng.random() < 0.92:
                shipped = exported + timedelta(hours=rng.uniform(4, 26))
                if shipped < self.now - timedelta(minutes=10):
                    events.append((shipped, index, "ship", {}))
        numbers: dict[int, str] = {}
        for moment, index, what, _ in sorted(events, key=lambda e: (e[0], e[1])):
            order = built[index].order
            at = _ts(moment)
            if what == "export":
                draft = SalesOrderBody.model_validate(sales_order_draft(order, item_numbers))
                numbers[index], _ = write_sales_order(self.conn, draft, at)
                order["syncInfo"].append(
                    {"channel": export_channel, "externalId": numbers[index], "syncedAt": at}
                )
                order["orderState"] = "Confirmed"
                order["version"] += 1
                order["lastModifiedAt"] = at
                continue
            lines = shipped_lines(order)
            location = _pick_location(self.conn, lines, ("MAN", "MK"))
            if location is None:
                continue
            carrier = rng.choice(CARRIERS)
            tracking = tracking_number(rng, carrier)
            document = order.get("orderNumber") or order["id"]
            shipment = record_shipment(
                self.conn,
                numbers[index],
                document,
                lines,
                carrier,
                [tracking],
                at,
                location=location,
            )
            # Most dispatches already reached commercetools; the latest are still to sync.
            if moment < self.now - timedelta(hours=2) and rng.random() < 0.95:
                add_delivery(
                    order,
                    rng,
                    shipment,
                    carrier,
                    tracking,
                    _ts(moment + timedelta(minutes=rng.uniform(5, 60))),
                )
        self.store.insert_many("payments", [p for b in built for p in b.payments])
        self.store.insert_many("orders", [b.order for b in built])
        order_ids = [b.order["id"] for b in built]
        self.world._set_meta("world_planted", "1" if self.planted else "0")
        return {
            "orders_without_order_number": sorted(order_ids[i] for i in without_number),
            "order_without_taxed_price": order_ids[tax_disabled] if tax_disabled >= 0 else None,
            "order_with_long_order_number": order_ids[long_number] if long_number >= 0 else None,
            "blocked_skus": sorted(
                sku for (sku,) in self.conn.execute("SELECT sku FROM erp_items WHERE active = 0")
            ),
        }

    def _inventory(self, ref: Reference) -> None:
        """commercetools stock per SKU and supply channel, in step with the ERP at seed time."""
        rng = self.rng
        at = _ts(self.now - timedelta(minutes=30))
        docs = []
        for sku, location, on_hand, reserved in self.conn.execute(
            "SELECT sku, location, on_hand, reserved FROM erp_stock ORDER BY sku, location"
        ):
            channel = ref.channels[LOCATION_CHANNELS[location]]
            available = on_hand - reserved
            doc: dict[str, Any] = {
                "id": new_id(rng),
                "version": 1,
                "key": f"{sku}_{channel['key']}",
                "sku": sku,
                "supplyChannel": {"typeId": "channel", "id": channel["id"]},
                "quantityOnStock": available,
                "availableQuantity": available,
                "createdAt": _ts(self.start - timedelta(days=1)),
                "lastModifiedAt": at,
            }
            if available == 0:
                doc["restockableInDays"] = rng.choice((3, 7, 14))
            docs.append(doc)
        self.store.insert_many("inventory", docs)
