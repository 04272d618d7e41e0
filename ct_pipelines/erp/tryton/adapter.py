"""``ErpPort`` over a Tryton server (trytond 8.2 with sale, stock, account, stock_package_shipping).

What each port method reads or writes (docs/erp-adapters.md has the whole table):

- items: ``product.product`` of type goods; ``code`` is the SKU and the item number, the list
  price is kept VAT inclusive (the shop's prices are), the first customer tax of the product's
  accounting category gives the VAT code (``TrytonSettings.tax_codes``, by tax name); the
  variant's description carries the attributes (``product_key``, colour, size) and the prices
  in other currencies (master_data: Tryton's attribute and price-list modules are not used).
- stock: quantities per warehouse (``stock.location`` of type warehouse, by ``code``), read with
  ``product.product`` in the context ``locations=[warehouse]``; ``reserved`` is what assigned
  outgoing moves hold (``quantity`` minus the quantity with ``stock_assign``).
- movements: done ``stock.move`` rows in (``write_date``, ``id``) order; a move counts at the
  warehouse it leaves (negative) and the one it enters (positive); moves inside one warehouse
  net to nothing and are skipped. ``movement_id`` is ``2 * move id`` (+1 for the entering side).
- sales orders: ``sale.sale`` with ``reference`` = external document number, the party by
  ``code`` = customer reference, lines with their net unit price and the tax of their VAT
  code, then ``quote`` and ``confirm``. A repeat finds the reference and writes nothing; an
  order left in draft by a crash is quoted and confirmed on the next call. Tryton computes VAT
  on the net, commercetools split it out of VAT-inclusive prices, so the two can differ by a
  penny per line; the adapter computes Tryton's VAT as trytond will (``tryton_vat_minor``) and
  adds one ``VAT-ROUNDING`` line per rate with no net and the missing pennies as a fixed tax,
  in the same create: Tryton's VAT (and the invoice's) is then what the customer was charged.
- shipments: done ``stock.shipment.out`` in (``write_date``, ``id``) order with the sale's
  reference (through the moves' origin), packages and their ``shipping_reference``.
- journals: posted ``account.move`` in the configured journal, ``description`` starting with
  ``[batch_id]``; lines by account ``code``. A repeat of the same lines is a no-op, other lines
  under a posted batch id are a conflict.

Known limits: Tryton has no unique key on ``sale.reference``; the ledger's one export per
order is what keeps two workers from creating the same order at once. ``write_date`` is the
writing transaction's start time, so a long transaction can commit a row behind the cursor.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from ct_pipelines.erp.errors import ErpConflictError, ErpValidationError
from ct_pipelines.erp.port import (
    ErpItem,
    ErpPrice,
    ErpSalesOrder,
    JournalBatch,
    JournalLine,
    JournalPosting,
    PostedJournalBatch,
    SalesOrderCustomer,
    SalesOrderDraft,
    SalesOrderLine,
    SalesOrderTotals,
    Shipment,
    ShipmentLine,
    ShipmentPage,
    StockLevel,
    StockMovement,
    StockMovementPage,
)
from ct_pipelines.erp.tryton.master_data import split_description
from ct_pipelines.erp.tryton.rpc import TrytonRpc

PAGE = 500
_EPOCH = dt.datetime(1970, 1, 1)
_SALE_STATUS = {
    "draft": "open",
    "quotation": "open",
    "confirmed": "released",
    "processing": "released",
    "done": "shipped",
    "cancelled": "cancelled",
}


class TrytonSettings(BaseModel):
    """Where the Tryton server is and how the shop is set up in it."""

    model_config = ConfigDict(frozen=True)

    url: str
    database: str
    user: str
    password: SecretStr
    # The port's VAT codes and the names of the Tryton taxes that carry them.
    tax_codes: dict[str, str] = {"S": "UK VAT 20%", "R": "UK VAT 5%", "Z": "UK VAT 0%"}
    # The service item of VAT rounding lines; its fixed taxes are named "<tax name> rounding
    # +1p" and "... -1p" (``ct-pipelines tryton setup`` creates them).
    rounding_item: str = "VAT-ROUNDING"
    journal_code: str = "SHOP"  # the journal batches are posted in
    sale_warehouse: str = "MAN"  # the warehouse sales orders ship from
    # Warehouse codes the port reports stock for (None: every warehouse).
    warehouses: tuple[str, ...] | None = None


def _utc(value: dt.datetime | None) -> dt.datetime:
    # trytond keeps naive UTC timestamps.
    return (value or _EPOCH).replace(tzinfo=dt.UTC)


def _minor(amount: Decimal, digits: int) -> int:
    return int((Decimal(amount).scaleb(digits)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _major(minor: int, digits: int) -> Decimal:
    return Decimal(minor).scaleb(-digits)


def tryton_vat_minor(
    lines: Sequence[tuple[str, Decimal, Decimal, int]], digits: int, rounding: str = "document"
) -> dict[str, int]:
    """The VAT trytond computes for sale lines (VAT code, rate, unit price, quantity), by code,
    in minor units, as ``account.tax.TaxableMixin._get_taxes`` does: amount = unit price x rate x
    quantity; ``document`` rounding sums the lines of one tax and sign of the base, then rounds
    half-even; ``line`` rounding rounds each line."""
    exponent = Decimal(1).scaleb(-digits)
    groups: dict[tuple[str, bool], Decimal] = {}
    rounded: dict[str, Decimal] = {}
    for code, rate, unit_price, quantity in lines:
        amount = unit_price * rate * Decimal(quantity)
        if rounding == "line":
            rounded[code] = rounded.get(code, Decimal(0)) + amount.quantize(
                exponent, rounding=ROUND_HALF_EVEN
            )
        else:
            key = (code, unit_price * Decimal(quantity) >= 0)
            groups[key] = groups.get(key, Decimal(0)) + amount
    for (code, _positive), amount in groups.items():
        rounded[code] = rounded.get(code, Decimal(0)) + amount.quantize(
            exponent, rounding=ROUND_HALF_EVEN
        )
    return {code: _minor(amount, digits) for code, amount in rounded.items()}


def _cursor(write_date: dt.datetime, record_id: int) -> str:
    return f"{write_date.isoformat()}|{record_id}"


def _parse_cursor(cursor: str | None) -> tuple[dt.datetime, int] | None:
    if not cursor:
        return None
    try:
        stamp, record_id = cursor.rsplit("|", 1)
        return dt.datetime.fromisoformat(stamp), int(record_id)
    except ValueError:
        raise ValueError(f"not a Tryton cursor: {cursor!r}") from None


def _after(cursor: tuple[dt.datetime, int] | None) -> list[Any]:
    """A domain for rows after the (write_date, id) keyset cursor (write_date may be null)."""
    if cursor is None:
        return []
    stamp, record_id = cursor
    return [
        "OR",
        ("write_date", ">", stamp),
        [("write_date", "=", stamp), ("id", ">", record_id)],
    ]


def _write_key(row: dict[str, Any]) -> tuple[dt.datetime, int]:
    return (row.get("write_date") or row.get("create_date") or _EPOCH, row["id"])


class TrytonErpClient:
    """The ERP port against Tryton; thread-safe like its RPC session. Close it when done."""

    def __init__(self, settings: TrytonSettings, rpc: TrytonRpc | None = None) -> None:
        self.settings = settings
        self.rpc = rpc or TrytonRpc(
            settings.url, settings.database, settings.user, settings.password
        )
        self._warehouse_of: dict[int, str | None] | None = None
        self._taxes: dict[str, int] | None = None
        self._rates: dict[str, Decimal] = {}
        # (VAT code, +1/-1) -> (tax id, its fixed amount); {} when the shop has none.
        self._rounding_taxes: dict[tuple[str, int], tuple[int, Decimal]] | None = None
        self._tax_rounding: str | None = None
        self._tax_code_of: dict[int, str] | None = None
        # Two orders of one new customer exported at once must not both create its party.
        self._party_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TrytonErpClient(url={self.settings.url!r}, database={self.settings.database!r})"

    def close(self) -> None:
        self.rpc.close()

    def __enter__(self) -> TrytonErpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reference data ------------------------------------------------------------------------

    def _tax_ids(self) -> dict[str, int]:
        """VAT code -> Tryton tax id."""
        if self._taxes is None:
            names = self.settings.tax_codes
            rows = self.rpc.search_read(
                "account.tax", [("name", "in", list(names.values()))], ["name", "rate"]
            )
            by_name = {row["name"]: row for row in rows}
            self._taxes = {
                code: by_name[name]["id"] for code, name in names.items() if name in by_name
            }
            self._rates = {
                code: Decimal(by_name[name]["rate"] or 0)
                for code, name in names.items()
                if name in by_name
            }
            self._tax_code_of = {tax_id: code for code, tax_id in self._taxes.items()}
        return self._taxes

    def _rounding(self) -> tuple[dict[tuple[str, int], tuple[int, Decimal]], str]:
        """The VAT rounding taxes by (code, sign) and the company's tax rounding method."""
        if self._rounding_taxes is None or self._tax_rounding is None:
            wanted = {
                f"{name} rounding {'+' if sign > 0 else '-'}1p": (code, sign)
                for code, name in self.settings.tax_codes.items()
                for sign in (1, -1)
            }
            rows = self.rpc.search_read(
                "account.tax",
                [("name", "in", list(wanted)), ("type", "=", "fixed")],
                ["name", "amount"],
            )
            self._rounding_taxes = {
                wanted[row["name"]]: (int(row["id"]), Decimal(row["amount"])) for row in rows
            }
            config = self.rpc.model("account.configuration", "read", [1], ["tax_rounding"])
            self._tax_rounding = str(
                (config[0] if config else {}).get("tax_rounding") or "document"
            )
        return self._rounding_taxes, self._tax_rounding

    def _code_of_tax(self, tax_ids: Sequence[int]) -> str:
        self._tax_ids()
        assert self._tax_code_of is not None
        for tax_id in tax_ids:
            if tax_id in self._tax_code_of:
                return self._tax_code_of[tax_id]
        return "Z" if not tax_ids else "?"

    def _warehouses(self) -> dict[int, str | None]:
        """Every location id -> the code of the warehouse it belongs to (None: outside)."""
        if self._warehouse_of is None:
            rows = self.rpc.search_read(
                "stock.location",
                [],
                ["code", "type", "parent"],
                context={"active_test": False},
            )
            by_id = {row["id"]: row for row in rows}

            def warehouse(location_id: int | None) -> str | None:
                seen = 0
                while location_id is not None and seen < 50:
                    row = by_id.get(location_id)
                    if row is None:
                        return None
                    if row["type"] == "warehouse":
                        return row["code"]
                    location_id, seen = row.get("parent"), seen + 1
                return None

            self._warehouse_of = {row["id"]: warehouse(row["id"]) for row in rows}
        return self._warehouse_of

    def _warehouse_ids(self, codes: Sequence[str] | None) -> dict[str, int]:
        domain: list[Any] = [("type", "=", "warehouse")]
        wanted = list(codes) if codes else self.settings.warehouses
        if wanted:
            domain.append(("code", "in", list(wanted)))
        rows = self.rpc.search_read("stock.location", domain, ["code"], order=[("code", "ASC")])
        return {row["code"]: row["id"] for row in rows if row["code"]}

    def _currency(self, code: str) -> tuple[int, int]:
        rows = self.rpc.search_read("currency.currency", [("code", "=", code)], ["digits"])
        if not rows:
            raise ErpValidationError(None, "UnknownCurrency", f"Tryton has no currency {code}")
        return rows[0]["id"], int(rows[0]["digits"])

    # -- items and stock -----------------------------------------------------------------------

    def _products(
        self, domain: list[Any], fields: list[str], context: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            rows = self.rpc.search_read(
                "product.product",
                [*domain, ("id", ">", last)],
                fields,
                limit=PAGE,
                order=[("id", "ASC")],
                context=context,
            )
            yield from rows
            if len(rows) < PAGE:
                return
            last = rows[-1]["id"]

    def iter_items(self) -> Iterator[ErpItem]:
        company_currency = self.rpc.search_read("company.company", [], ["currency"], limit=1)
        currency_code, digits = "GBP", 2
        if company_currency:
            rows = self.rpc.model(
                "currency.currency", "read", [company_currency[0]["currency"]], ["code", "digits"]
            )
            currency_code, digits = rows[0]["code"], int(rows[0]["digits"])
        fields = [
            "code",
            "rec_name",
            "description",
            "list_price",
            "active",
            "write_date",
            "create_date",
            "template.name",
            "template.list_price",
            "template.write_date",
            "template.account_category.customer_taxes_used",
        ]
        rows = sorted(
            self._products(
                [("type", "=", "goods"), ("code", "!=", None)],
                fields,
                context={"active_test": False},
            ),
            key=lambda row: row["code"],
        )
        for row in rows:
            template = row.get("template.") or {}
            updated = max(
                row.get("write_date") or row["create_date"],
                template.get("write_date") or row["create_date"],
            )
            price = Decimal(template.get("list_price") or row.get("list_price") or 0)
            minor = _minor(price, digits)
            exact = price if price != _major(minor, digits) else None
            description, attributes, other_prices = split_description(row.get("description"))
            yield ErpItem(
                item_no=row["code"],
                sku=row["code"],
                name=template.get("name") or row["rec_name"],
                description=description,
                attributes=attributes,
                prices=[
                    ErpPrice(
                        currency=currency_code,
                        amount_minor=minor,
                        fraction_digits=digits,
                        precise_amount=exact,
                        country="GB",
                    ),
                    *(
                        ErpPrice.model_validate(price)
                        for price in other_prices
                        if price.get("currency") != currency_code
                    ),
                ],
                tax_code=self._code_of_tax(
                    (template.get("account_category.") or {}).get("customer_taxes_used") or []
                ),
                active=bool(row["active"]),
                updated_at=_utc(updated),
            )

    def iter_stock(self, locations: Sequence[str] | None = None) -> Iterator[StockLevel]:
        now = dt.datetime.now(dt.UTC)
        for code, warehouse_id in self._warehouse_ids(locations).items():
            # Inactive (blocked) items still hold stock, as in the sandbox ERP.
            base = {"locations": [warehouse_id], "with_childs": True, "active_test": False}
            on_hand = {
                row["id"]: row
                for row in self._products(
                    [("type", "=", "goods"), ("code", "!=", None)],
                    ["code", "quantity"],
                    context=base,
                )
            }
            assignable = {
                row["id"]: row["quantity"]
                for row in self._products(
                    [("type", "=", "goods"), ("code", "!=", None)],
                    ["quantity"],
                    context={**base, "stock_assign": True},
                )
            }
            for product_id, row in sorted(on_hand.items(), key=lambda kv: kv[1]["code"]):
                quantity = int(row["quantity"] or 0)
                available = int(assignable.get(product_id, quantity) or 0)
                reserved = max(0, quantity - available)
                yield StockLevel(
                    sku=row["code"],
                    location=code,
                    on_hand=quantity,
                    reserved=reserved,
                    available=quantity - reserved,
                    updated_at=now,
                )

    def stock_movements_since(self, cursor: str | None, limit: int = 1000) -> StockMovementPage:
        after = _parse_cursor(cursor)
        warehouse_of = self._warehouses()
        fields = [
            "product",
            "product.code",
            "from_location",
            "to_location",
            "quantity",
            "internal_quantity",
            "effective_date",
            "write_date",
            "create_date",
            "shipment",
            "origin",
        ]
        # A page is ``limit`` done moves (a move between two warehouses yields two movements).
        rows = self.rpc.search_read(
            "stock.move",
            [("state", "=", "done"), *([_after(after)] if after else [])],
            fields,
            limit=limit + 1,
            order=[("write_date", "ASC"), ("id", "ASC")],
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        movements: list[StockMovement] = []
        for row in rows:
            movements.extend(self._move_deltas(row, warehouse_of))
        last_key = _write_key(rows[-1]) if rows else after
        self._fill_on_hand_after(movements, last_key)
        return StockMovementPage(
            movements=movements,
            next_cursor=_cursor(*last_key) if last_key else cursor,
            has_more=has_more,
        )

    def _move_deltas(
        self, row: dict[str, Any], warehouse_of: dict[int, str | None]
    ) -> list[StockMovement]:
        source = warehouse_of.get(row["from_location"])
        target = warehouse_of.get(row["to_location"])
        if source == target:
            return []
        quantity = int(row.get("internal_quantity") or row["quantity"])
        sku = (row.get("product.") or {}).get("code")
        if not sku:
            return []
        occurred = row.get("write_date") or row["create_date"]
        reference = row.get("shipment") or row.get("origin")
        reason_out, reason_in = _reasons(row)
        deltas = []
        if source is not None:
            deltas.append(
                StockMovement(
                    movement_id=2 * row["id"],
                    sku=sku,
                    location=source,
                    quantity=-quantity,
                    reason=reason_out,
                    reference=reference,
                    on_hand_after=0,
                    occurred_at=_utc(occurred),
                )
            )
        if target is not None:
            deltas.append(
                StockMovement(
                    movement_id=2 * row["id"] + 1,
                    sku=sku,
                    location=target,
                    quantity=quantity,
                    reason=reason_in,
                    reference=reference,
                    on_hand_after=0,
                    occurred_at=_utc(occurred),
                )
            )
        return deltas

    def _fill_on_hand_after(
        self, movements: list[StockMovement], last_key: tuple[dt.datetime, int] | None
    ) -> None:
        """Set each movement's on-hand after it: today's quantity minus what moved since."""
        if not movements:
            return
        pairs = {(m.sku, m.location) for m in movements}
        balance: dict[tuple[str, str], int] = {}
        for level in self.iter_stock(sorted({loc for _, loc in pairs})):
            if (level.sku, level.location) in pairs:
                balance[(level.sku, level.location)] = level.on_hand
        # Undo the moves after this page, then walk the page backwards.
        later = self.stock_movements_tail(last_key, {sku for sku, _ in pairs})
        for movement in later:
            key = (movement.sku, movement.location)
            if key in balance:
                balance[key] -= movement.quantity
        filled: list[StockMovement] = []
        for movement in reversed(movements):
            key = (movement.sku, movement.location)
            after = balance.get(key, 0)
            filled.append(movement.model_copy(update={"on_hand_after": after}))
            balance[key] = after - movement.quantity
        movements[:] = list(reversed(filled))

    def stock_movements_tail(
        self, after: tuple[dt.datetime, int] | None, skus: set[str]
    ) -> list[StockMovement]:
        """Every movement after ``after`` for these SKUs (to compute on-hand after a page)."""
        if after is None:
            return []
        warehouse_of = self._warehouses()
        rows = self.rpc.search_read(
            "stock.move",
            [("state", "=", "done"), ("product.code", "in", sorted(skus)), _after(after)],
            [
                "product.code",
                "from_location",
                "to_location",
                "quantity",
                "internal_quantity",
                "write_date",
                "create_date",
                "shipment",
                "origin",
            ],
        )
        deltas: list[StockMovement] = []
        for row in rows:
            deltas.extend(self._move_deltas(row, warehouse_of))
        return deltas

    # -- sales orders --------------------------------------------------------------------------

    _SALE_FIELDS = (
        "number",
        "reference",
        "sale_date",
        "state",
        "currency",
        "currency.code",
        "currency.digits",
        "party",
        "party.code",
        "invoice_address.country.code",
        "comment",
        "untaxed_amount",
        "tax_amount",
        "total_amount",
        "lines",
        "create_date",
        "write_date",
    )
    _LINE_FIELDS = (
        "sale",
        "sequence",
        "type",
        "product.code",
        "description",
        "quantity",
        "unit_price",
        "amount",
        "taxes",
        "note",
    )

    def _sales(self, domain: list[Any]) -> list[dict[str, Any]]:
        return self.rpc.search_read(
            "sale.sale",
            domain,
            list(self._SALE_FIELDS),
            order=[("number", "ASC"), ("id", "ASC")],
            context={"active_test": False},
        )

    def find_sales_order(self, external_document_number: str) -> ErpSalesOrder | None:
        """The confirmed sale with this reference. A draft or quotation (a process killed between
        create and confirm) is not an order yet: None, so the caller's upsert finishes it."""
        rows = [
            row
            for row in self._sales([("reference", "=", external_document_number)])
            if row["state"] != "cancelled"
        ]
        if not rows or rows[0]["state"] in ("draft", "quotation"):
            return None
        return self._to_sales_order(rows[0])

    def _lines_of(self, sales: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        line_ids = [line_id for sale in sales for line_id in sale["lines"]]
        by_sale: dict[int, list[dict[str, Any]]] = {sale["id"]: [] for sale in sales}
        for start in range(0, len(line_ids), PAGE):
            chunk = line_ids[start : start + PAGE]
            for line in self.rpc.model("sale.line", "read", chunk, list(self._LINE_FIELDS)):
                by_sale[line["sale"]].append(line)
        return by_sale

    def _to_sales_order(
        self, sale: dict[str, Any], lines: list[dict[str, Any]] | None = None
    ) -> ErpSalesOrder:
        if lines is None:
            lines = self._lines_of([sale])[sale["id"]]
        currency = sale.get("currency.") or {}
        digits = int(currency.get("digits") or 2)
        meta = _meta(sale.get("comment"))
        order_lines: list[SalesOrderLine] = []
        for line in sorted(lines, key=lambda row: (row.get("sequence") or 0, row["id"])):
            if line["type"] != "line":
                continue
            line_meta = _meta(line.get("note"))
            if line_meta.get("kind") == "vat_rounding":
                continue  # part of the order's VAT, not a line of its own
            net = _minor(line["amount"] or Decimal(0), digits)
            tax = int(line_meta.get("tax_minor", 0))
            order_lines.append(
                SalesOrderLine(
                    line_no=len(order_lines) + 1,
                    item_no=(line.get("product.") or {}).get("code") or "",
                    description=line.get("description") or "",
                    quantity=abs(int(line["quantity"])),
                    unit_price_minor=int(
                        line_meta.get("unit_price_minor", _minor(line["unit_price"], digits))
                    ),
                    net_minor=net,
                    tax_minor=tax,
                    gross_minor=net + tax,
                    tax_code=self._code_of_tax(line.get("taxes") or []),
                    kind=line_meta.get("kind", "item"),
                )
            )
        tax_total = _minor(sale["tax_amount"] or Decimal(0), digits)
        net_total = _minor(sale["untaxed_amount"] or Decimal(0), digits)
        return ErpSalesOrder(
            external_document_number=sale["reference"],
            order_date=sale["sale_date"] or sale["create_date"].date(),
            currency=currency.get("code") or "GBP",
            fraction_digits=digits,
            customer=SalesOrderCustomer(
                ref=(sale.get("party.") or {}).get("code") or "",
                country=meta.get("country"),
            ),
            lines=order_lines,
            totals=SalesOrderTotals(
                net_minor=net_total, tax_minor=tax_total, gross_minor=net_total + tax_total
            ),
            source_order_id=meta.get("source_order_id", ""),
            source_order_version=int(meta.get("source_order_version", 0)),
            sales_order_no=sale["number"] or f"draft-{sale['id']}",
            status=_SALE_STATUS.get(sale["state"], sale["state"]),
            created_at=_utc(sale["create_date"]),
            updated_at=_utc(sale.get("write_date") or sale["create_date"]),
        )

    def upsert_sales_order(self, order: SalesOrderDraft, *, idempotency_key: str) -> ErpSalesOrder:
        if not idempotency_key:
            raise ValueError("idempotency_key is required for a sales order write")
        existing = [
            row
            for row in self._sales([("reference", "=", order.external_document_number)])
            if row["state"] != "cancelled"
        ]
        if existing:
            sale = existing[0]
            if sale["state"] in ("draft", "quotation"):
                # A crash between create and confirm: finish the workflow, write nothing new.
                self._confirm(sale["id"], sale["state"])
                sale = self._sales([("id", "=", sale["id"])])[0]
            return self._to_sales_order(sale)
        sale_id = self._create_sale(order, idempotency_key)
        self._confirm(sale_id, "draft")
        return self._to_sales_order(self._sales([("id", "=", sale_id)])[0])

    def _confirm(self, sale_id: int, state: str) -> None:
        if state == "draft":
            self.rpc.model("sale.sale", "quote", [sale_id])
        self.rpc.model("sale.sale", "confirm", [sale_id])

    def _find_party(self, ref: str) -> tuple[int, int] | None:
        rows = self.rpc.search_read(
            "party.party",
            [("code", "=", ref)],
            ["addresses"],
            context={"active_test": False},
        )
        if rows and rows[0]["addresses"]:
            return int(rows[0]["id"]), int(rows[0]["addresses"][0])
        return None

    def _party(self, customer: SalesOrderCustomer) -> tuple[int, int]:
        """(party id, address id) of the customer, created on first use. Creation is locked
        within this client; another process creating it first (Tryton's unique code refuses
        the second) is read back."""
        found = self._find_party(customer.ref)
        if found is not None:
            return found
        with self._party_lock:
            found = self._find_party(customer.ref)
            if found is not None:
                return found
            address: dict[str, Any] = {}
            if customer.country:
                countries = self.rpc.search_read(
                    "country.country", [("code", "=", customer.country)], ["id"]
                )
                if countries:
                    address["country"] = countries[0]["id"]
            try:
                self.rpc.model(
                    "party.party",
                    "create",
                    [
                        {
                            "name": customer.ref,
                            "code": customer.ref,
                            "addresses": [["create", [address]]],
                        }
                    ],
                )
            except ErpValidationError:
                found = self._find_party(customer.ref)
                if found is None:
                    raise
                return found
            found = self._find_party(customer.ref)
        if found is None:
            raise ErpValidationError(
                None, "PartyNotCreated", f"party {customer.ref!r} has no address after create"
            )
        return found

    def _create_sale(self, order: SalesOrderDraft, idempotency_key: str) -> int:
        if not order.lines:
            raise ErpValidationError(None, "NoLines", "a sales order needs at least one line")
        currency_id, digits = self._currency(order.currency)
        if digits != order.fraction_digits:
            raise ErpValidationError(
                None,
                "FractionDigits",
                f"{order.currency} has {digits} digits in Tryton, the order {order.fraction_digits}",
            )
        codes = sorted({line.item_no for line in order.lines})
        products = {
            row["code"]: row
            for row in self.rpc.search_read(
                "product.product",
                [("code", "in", [*codes, self.settings.rounding_item])],
                ["code", "active", "salable", "default_uom"],
                context={"active_test": False},
            )
        }
        taxes = self._tax_ids()
        lines: list[dict[str, Any]] = []
        for line in order.lines:
            product = products.get(line.item_no)
            if product is None:
                raise ErpValidationError(
                    None,
                    "UnknownItem",
                    f"line {line.line_no}: item {line.item_no!r} is not a Tryton product",
                )
            if not product["active"]:
                raise ErpValidationError(
                    None, "BlockedItem", f"line {line.line_no}: item {line.item_no!r} is inactive"
                )
            if line.tax_code not in taxes:
                raise ErpValidationError(
                    None,
                    "UnknownTaxCode",
                    f"line {line.line_no}: VAT code {line.tax_code!r} has no Tryton tax",
                )
            quantity = max(line.quantity, 1)
            unit = (_major(line.net_minor, digits) / quantity).quantize(
                Decimal("0.0001"), rounding=ROUND_HALF_EVEN
            )
            lines.append(
                {
                    "type": "line",
                    "sequence": line.line_no,
                    "product": product["id"],
                    "unit": product["default_uom"],
                    "quantity": float(quantity),
                    "unit_price": unit,
                    "description": line.description or line.item_no,
                    "taxes": [["add", [taxes[line.tax_code]]]],
                    "note": json.dumps(
                        {
                            "kind": line.kind,
                            "tax_minor": line.tax_minor,
                            "unit_price_minor": line.unit_price_minor,
                        },
                        sort_keys=True,
                    ),
                }
            )
        lines.extend(self._rounding_lines(order, lines, products, digits))
        party, address = self._party(order.customer)
        created = self.rpc.model(
            "sale.sale",
            "create",
            [
                {
                    "party": party,
                    "invoice_address": address,
                    "shipment_address": address,
                    "warehouse": self._warehouse_ids([self.settings.sale_warehouse])[
                        self.settings.sale_warehouse
                    ],
                    "reference": order.external_document_number,
                    "sale_date": order.order_date,
                    "currency": currency_id,
                    "description": f"commercetools order {order.source_order_id}",
                    "comment": json.dumps(
                        {
                            "source_order_id": order.source_order_id,
                            "source_order_version": order.source_order_version,
                            "country": order.customer.country,
                            "idempotency_key": idempotency_key,
                        },
                        sort_keys=True,
                    ),
                    "lines": [["create", lines]],
                }
            ],
        )
        sale_id = int(created[0])
        self._check_amounts(sale_id, order, digits)
        return sale_id

    def _rounding_lines(
        self,
        order: SalesOrderDraft,
        lines: list[dict[str, Any]],
        products: dict[str, dict[str, Any]],
        digits: int,
    ) -> list[dict[str, Any]]:
        """Lines that make Tryton's VAT per code what commercetools charged: per code with a
        difference, the rounding item at no net with as many penny taxes as pennies differ."""
        rounding_taxes, method = self._rounding()
        item = products.get(self.settings.rounding_item)
        if not rounding_taxes or item is None:
            return []  # a shop set up without them: Tryton's own VAT stands
        tryton = tryton_vat_minor(
            [
                (
                    draft.tax_code,
                    self._rates.get(draft.tax_code, Decimal(0)),
                    row["unit_price"],
                    int(row["quantity"]),
                )
                for draft, row in zip(order.lines, lines, strict=True)
            ],
            digits,
            method,
        )
        charged: dict[str, int] = {}
        for draft in order.lines:
            charged[draft.tax_code] = charged.get(draft.tax_code, 0) + draft.tax_minor
        penny = Decimal(1).scaleb(-digits)
        extra: list[dict[str, Any]] = []
        for code in sorted(charged):
            difference = charged[code] - tryton.get(code, 0)
            sign = 1 if difference > 0 else -1
            tax = rounding_taxes.get((code, sign))
            if not difference or tax is None or tax[1] != penny * sign:
                continue
            extra.append(
                {
                    "type": "line",
                    "sequence": len(order.lines) + 1 + len(extra),
                    "product": item["id"],
                    "unit": item["default_uom"],
                    "quantity": float(abs(difference)),
                    "unit_price": Decimal(0),
                    "description": f"VAT rounding {code}: commercetools charged "
                    f"{difference:+d} minor units more than Tryton computes on the net",
                    "taxes": [["add", [tax[0]]]],
                    "note": json.dumps({"kind": "vat_rounding", "code": code}, sort_keys=True),
                }
            )
        return extra

    def _check_amounts(self, sale_id: int, order: SalesOrderDraft, digits: int) -> None:
        """Tryton computes the net from quantity x unit price; it must match the order's net."""
        sale = self.rpc.model("sale.sale", "read", [sale_id], ["untaxed_amount"])[0]
        net = _minor(sale["untaxed_amount"] or Decimal(0), digits)
        if net != order.totals.net_minor:
            self.rpc.model("sale.sale", "delete", [sale_id])
            raise ErpValidationError(
                None,
                "AmountMismatch",
                f"Tryton's net {net} differs from the order's {order.totals.net_minor}",
            )

    def iter_sales_orders(self, order_date: dt.date) -> Iterator[ErpSalesOrder]:
        sales = [
            row
            for row in self._sales([("sale_date", "=", order_date), ("reference", "!=", None)])
            if row["state"] != "cancelled"
        ]
        for start in range(0, len(sales), PAGE):
            chunk = sales[start : start + PAGE]
            lines = self._lines_of(chunk)
            for sale in chunk:
                yield self._to_sales_order(sale, lines[sale["id"]])

    # -- shipments -----------------------------------------------------------------------------

    def shipments_since(self, cursor: str | None, limit: int = 500) -> ShipmentPage:
        after = _parse_cursor(cursor)
        rows = self.rpc.search_read(
            "stock.shipment.out",
            [("state", "=", "done"), *([_after(after)] if after else [])],
            [
                "number",
                "reference",
                "carrier.party.name",
                "outgoing_moves",
                "effective_date",
                "write_date",
                "create_date",
                "shipping_reference",
            ],
            limit=limit + 1,
            order=[("write_date", "ASC"), ("id", "ASC")],
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        move_ids = [move_id for row in rows for move_id in row["outgoing_moves"]]
        moves = {
            move["id"]: move
            for move in (
                self.rpc.model(
                    "stock.move", "read", move_ids, ["product.code", "quantity", "origin", "state"]
                )
                if move_ids
                else []
            )
        }
        sale_line_ids = sorted(
            {
                int(str(m["origin"]).split(",")[1])
                for m in moves.values()
                if str(m.get("origin") or "").startswith("sale.line,")
            }
        )
        reference_of_line = {
            line["id"]: (line.get("sale.") or {}).get("reference")
            for line in (
                self.rpc.model("sale.line", "read", sale_line_ids, ["sale.reference"])
                if sale_line_ids
                else []
            )
        }
        packages: dict[int, list[str]] = {}
        if rows:
            shipment_refs = [f"stock.shipment.out,{row['id']}" for row in rows]
            for package in self.rpc.search_read(
                "stock.package",
                [("shipment", "in", shipment_refs)],
                ["shipment", "shipping_reference"],
                order=[("id", "ASC")],
            ):
                shipment_id = int(str(package["shipment"]).split(",")[1])
                if package.get("shipping_reference"):
                    packages.setdefault(shipment_id, []).append(package["shipping_reference"])
        shipments: list[Shipment] = []
        for row in rows:
            quantities: dict[str, int] = {}
            references: set[str] = set()
            for move_id in row["outgoing_moves"]:
                move = moves.get(move_id)
                if move is None or move["state"] == "cancelled":
                    continue
                sku = (move.get("product.") or {}).get("code")
                if sku:
                    quantities[sku] = quantities.get(sku, 0) + int(move["quantity"])
                origin = str(move.get("origin") or "")
                if origin.startswith("sale.line,"):
                    reference = reference_of_line.get(int(origin.split(",")[1]))
                    if reference:
                        references.add(reference)
            tracking = packages.get(row["id"], [])
            if not tracking and row.get("shipping_reference"):
                tracking = [row["shipping_reference"]]
            carrier = ((row.get("carrier.") or {}).get("party.") or {}).get("name")
            shipped = row.get("write_date") or row["create_date"]
            shipments.append(
                Shipment(
                    shipment_number=row["number"],
                    external_document_number=sorted(references)[0]
                    if references
                    else (row.get("reference") or ""),
                    lines=[ShipmentLine(sku=s, quantity=q) for s, q in sorted(quantities.items())],
                    carrier=carrier,
                    tracking_numbers=tracking,
                    shipped_at=_utc(shipped),
                )
            )
        next_cursor = _cursor(*_write_key(rows[-1])) if rows else cursor
        return ShipmentPage(shipments=shipments, next_cursor=next_cursor, has_more=has_more)

    # -- journals ------------------------------------------------------------------------------

    def _journal(self) -> int:
        rows = self.rpc.search_read(
            "account.journal", [("code", "=", self.settings.journal_code)], ["id"]
        )
        if not rows:
            raise ErpValidationError(
                None, "UnknownJournal", f"Tryton has no journal {self.settings.journal_code!r}"
            )
        return int(rows[0]["id"])

    _MOVE_FIELDS = (
        "number",
        "description",
        "date",
        "state",
        "post_date",
        "write_date",
        "create_date",
        "lines",
        "company.currency.code",
        "company.currency.digits",
    )

    def _moves(self, domain: list[Any]) -> list[dict[str, Any]]:
        return self.rpc.search_read(
            "account.move",
            [("journal.code", "=", self.settings.journal_code), *domain],
            list(self._MOVE_FIELDS),
            order=[("description", "ASC"), ("id", "ASC")],
        )

    def _batch_moves(self, batch_id: str) -> list[dict[str, Any]]:
        return [
            row
            for row in self._moves([("description", "like", f"[{batch_id}]%")])
            if _batch_id(row.get("description")) == batch_id
        ]

    def _move_lines(self, moves: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        ids = [line_id for move in moves for line_id in move["lines"]]
        by_move: dict[int, list[dict[str, Any]]] = {move["id"]: [] for move in moves}
        for start in range(0, len(ids), PAGE):
            for line in self.rpc.model(
                "account.move.line",
                "read",
                ids[start : start + PAGE],
                ["move", "account.code", "debit", "credit", "description"],
            ):
                by_move[line["move"]].append(line)
        return by_move

    def _posted_batch(
        self, move: dict[str, Any], lines: list[dict[str, Any]]
    ) -> PostedJournalBatch:
        currency = (move.get("company.") or {}).get("currency.") or {}
        digits = int(currency.get("digits") or 2)
        description = str(move.get("description") or "")
        batch_id = _batch_id(description) or ""
        journal_lines: list[JournalLine] = []
        for line in sorted(lines, key=lambda row: row["id"]):
            journal_lines.append(
                JournalLine(
                    line_no=len(journal_lines) + 1,
                    account=(line.get("account.") or {}).get("code") or "",
                    debit_minor=_minor(line["debit"], digits),
                    credit_minor=_minor(line["credit"], digits),
                    description=_split_text(line.get("description"))[0],
                    reference=_split_text(line.get("description"))[1],
                )
            )
        return PostedJournalBatch(
            batch_id=batch_id,
            posting_date=move["date"],
            currency=currency.get("code") or "GBP",
            fraction_digits=digits,
            description=description[len(batch_id) + 2 :].lstrip(),
            lines=journal_lines,
            journal_no=move.get("number") or f"move-{move['id']}",
            posted_at=_utc(move.get("write_date") or move["create_date"]),
        )

    @staticmethod
    def _posting(batch: PostedJournalBatch) -> JournalPosting:
        return JournalPosting(
            batch_id=batch.batch_id,
            journal_no=batch.journal_no,
            posting_date=batch.posting_date,
            currency=batch.currency,
            total_debit_minor=sum(line.debit_minor for line in batch.lines),
            total_credit_minor=sum(line.credit_minor for line in batch.lines),
            line_count=len(batch.lines),
            posted_at=batch.posted_at,
        )

    def post_journal_batch(self, batch: JournalBatch) -> JournalPosting:
        existing = self._batch_moves(batch.batch_id)
        if existing:
            move = existing[0]
            held = self._posted_batch(move, self._move_lines([move])[move["id"]])
            if _signature(held) != _signature(batch):
                raise ErpConflictError(
                    409,
                    "BatchAlreadyPosted",
                    f"journal batch {batch.batch_id} is already posted with other lines",
                )
            if move["state"] != "posted":
                self.rpc.model("account.move", "post", [move["id"]])
                return self._find(batch.batch_id) or self._posting(held)
            return self._posting(held)
        codes = sorted({line.account for line in batch.lines})
        accounts = {
            row["code"]: row
            for row in self.rpc.search_read(
                "account.account", [("code", "in", codes)], ["code", "party_required"]
            )
        }
        missing = [code for code in codes if code not in accounts]
        if missing:
            raise ErpValidationError(
                None, "UnknownAccount", f"Tryton has no account {', '.join(missing)}"
            )
        currency = self.rpc.search_read(
            "company.company", [], ["currency.code", "currency.digits"], limit=1
        )
        company_currency = (currency[0].get("currency.") or {}) if currency else {}
        if company_currency.get("code") and company_currency["code"] != batch.currency:
            raise ErpValidationError(
                None,
                "ForeignCurrency",
                f"batch in {batch.currency}, the company keeps {company_currency['code']}",
            )
        digits = batch.fraction_digits
        lines = [
            {
                "account": accounts[line.account]["id"],
                "debit": _major(line.debit_minor, digits),
                "credit": _major(line.credit_minor, digits),
                # account.move.line has no reference field: it rides in the description.
                "description": _line_text(line.description, line.reference),
            }
            for line in batch.lines
        ]
        move_id = self.rpc.model(
            "account.move",
            "create",
            [
                {
                    "journal": self._journal(),
                    # Over RPC the period defaults to today's, not the posting date's.
                    "period": self._period(batch.posting_date),
                    "date": batch.posting_date,
                    "description": f"[{batch.batch_id}] {batch.description}".rstrip(),
                    "lines": [["create", lines]],
                }
            ],
        )[0]
        self.rpc.model("account.move", "post", [move_id])
        posting = self._find(batch.batch_id)
        assert posting is not None
        return posting

    def _period(self, day: dt.date) -> int:
        """The open standard period holding ``day`` (Tryton's ``account.period.find``)."""
        rows = self.rpc.search_read(
            "account.period",
            [("start_date", "<=", day), ("end_date", ">=", day), ("type", "=", "standard")],
            ["state"],
            order=[("start_date", "DESC")],
            limit=1,
        )
        if not rows:
            raise ErpValidationError(None, "NoPeriod", f"Tryton has no accounting period for {day}")
        if rows[0]["state"] != "open":
            raise ErpValidationError(
                None, "PeriodClosed", f"Tryton's accounting period for {day} is closed"
            )
        return int(rows[0]["id"])

    def _find(self, batch_id: str) -> JournalPosting | None:
        moves = [m for m in self._batch_moves(batch_id) if m["state"] == "posted"]
        if not moves:
            return None
        move = moves[0]
        return self._posting(self._posted_batch(move, self._move_lines([move])[move["id"]]))

    def find_journal_batch(self, batch_id: str) -> JournalPosting | None:
        return self._find(batch_id)

    def iter_journal_batches(self, posting_date: dt.date) -> Iterator[PostedJournalBatch]:
        moves = [
            m
            for m in self._moves([("date", "=", posting_date), ("state", "=", "posted")])
            if _batch_id(m.get("description"))
        ]
        lines = self._move_lines(moves)
        batches = [self._posted_batch(move, lines[move["id"]]) for move in moves]
        yield from sorted(batches, key=lambda b: b.batch_id)


_REF = "#ref:"


def _line_text(description: str, reference: str | None) -> str:
    # Tryton strips Char fields, so the marker must not rely on surrounding whitespace.
    return f"{description} {_REF}{reference}".strip() if reference else description


def _split_text(text: str | None) -> tuple[str, str | None]:
    if not text:
        return "", None
    if _REF in text:
        description, reference = text.rsplit(_REF, 1)
        return description.rstrip(), reference or None
    return text, None


def _batch_id(description: str | None) -> str | None:
    if not description or not description.startswith("[") or "]" not in description:
        return None
    return description[1 : description.index("]")]


def _signature(batch: JournalBatch) -> tuple[Any, ...]:
    return (
        batch.posting_date,
        batch.currency,
        tuple(
            sorted(
                (line.account, line.debit_minor, line.credit_minor, line.reference or "")
                for line in batch.lines
            )
        ),
    )


def _meta(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _reasons(row: dict[str, Any]) -> tuple[str, str]:
    """(reason at the warehouse left, reason at the warehouse entered) of a done move."""
    shipment = str(row.get("shipment") or "")
    origin = str(row.get("origin") or "")
    if shipment.startswith("stock.shipment.out.return"):
        return "return", "return"
    if shipment.startswith("stock.shipment.out"):
        return "shipment", "shipment"
    if shipment.startswith("stock.shipment.in"):
        return "receipt", "receipt"
    if origin.startswith("stock.inventory.line"):
        return "count", "count"
    if origin.startswith("sale.line"):
        return "sale", "sale"
    return "adjustment", "adjustment"


__all__ = ["TrytonErpClient", "TrytonSettings"]
