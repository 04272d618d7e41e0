"""The ERP/WMS port: what every flow needs from the ERP, independent of any vendor.

Flows depend on ``ErpPort`` and these models only. The REST adapter (``erp/rest.py``) implements
it against the sandbox's REST API; a vendor adapter (Business Central, NetSuite, a WMS) implements
the same Protocol and plugs in through the ``erp`` resource without touching a flow.

Money is integer minor units plus the currency's fraction digits; a price more precise than the
currency (``precise_amount``) is a ``Decimal`` in major units. No float anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

# Minor units must be exact integers: a float (or a bool) here is a bug upstream, not a value.
MinorUnits = StrictInt
FractionDigits = Annotated[StrictInt, Field(ge=0, le=20)]
Quantity = Annotated[StrictInt, Field(ge=0)]

LineKind = Literal["item", "custom", "shipping", "discount"]


class _Model(BaseModel):
    # Unknown fields from a newer ERP API version are tolerated, not fatal.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ErpPrice(_Model):
    """A sales price of an item in one scope (currency, optional distribution channel, country)."""

    currency: str = Field(min_length=3, max_length=3)
    amount_minor: MinorUnits
    fraction_digits: FractionDigits
    # Exact amount in major units when the ERP keeps more digits than the currency (e.g. 0.1234 GBP).
    precise_amount: Decimal | None = None
    channel_key: str | None = None
    country: str | None = None

    def to_decimal(self) -> Decimal:
        if self.precise_amount is not None:
            return self.precise_amount
        return Decimal(self.amount_minor).scaleb(-self.fraction_digits)


class ErpItem(_Model):
    item_no: str
    sku: str
    name: str
    description: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    prices: list[ErpPrice] = Field(default_factory=list)
    tax_code: str  # the ERP's VAT code: S standard, R reduced, Z zero (UK)
    active: bool = True
    updated_at: datetime


class StockLevel(_Model):
    sku: str
    location: str  # ERP/WMS location code, mapped to a commercetools supply channel
    on_hand: StrictInt
    reserved: StrictInt
    available: StrictInt
    updated_at: datetime


class StockMovement(_Model):
    """One change of stock at a location, in the order the WMS recorded it."""

    movement_id: StrictInt
    sku: str
    location: str
    quantity: StrictInt  # signed delta: receipts positive, sales and shipments negative
    reason: str  # receipt, sale, shipment, adjustment, return, count
    reference: str | None = None
    on_hand_after: StrictInt
    occurred_at: datetime


class StockMovementPage(_Model):
    movements: list[StockMovement]
    # Pass back to continue after this page; equals the cursor given when nothing new arrived,
    # so it can always be stored as the checkpoint.
    next_cursor: str | None
    has_more: bool = False


class SalesOrderLine(_Model):
    line_no: Annotated[StrictInt, Field(ge=1)]
    item_no: str = Field(min_length=1)
    description: str = ""
    quantity: Quantity
    unit_price_minor: MinorUnits
    net_minor: MinorUnits
    tax_minor: MinorUnits
    gross_minor: MinorUnits
    tax_code: str
    kind: LineKind = "item"


class SalesOrderCustomer(_Model):
    """Only a reference and a country: the ERP needs no more personal data for the order."""

    ref: str
    country: str | None = None


class SalesOrderTotals(_Model):
    net_minor: MinorUnits
    tax_minor: MinorUnits
    gross_minor: MinorUnits


class SalesOrderDraft(_Model):
    # Business checks (known items, totals adding up, length limits) are the ERP's to make: it
    # answers with a readable validation error, which the flow parks as a permanent failure.
    external_document_number: str = Field(min_length=1)
    order_date: date
    currency: str = Field(min_length=3, max_length=3)
    fraction_digits: FractionDigits
    customer: SalesOrderCustomer
    lines: list[SalesOrderLine]
    totals: SalesOrderTotals
    source_order_id: str
    source_order_version: StrictInt

    def lines_add_up(self) -> bool:
        return (
            sum(line.net_minor for line in self.lines) == self.totals.net_minor
            and sum(line.tax_minor for line in self.lines) == self.totals.tax_minor
            and sum(line.gross_minor for line in self.lines) == self.totals.gross_minor
        )


class ErpSalesOrder(SalesOrderDraft):
    """A sales order as the ERP holds it."""

    sales_order_no: str  # the ERP's own number
    status: str  # open, released, shipped, cancelled
    created_at: datetime
    updated_at: datetime


class ShipmentLine(_Model):
    sku: str
    quantity: Annotated[StrictInt, Field(ge=1)]


class Shipment(_Model):
    shipment_number: str
    external_document_number: str
    lines: list[ShipmentLine]
    carrier: str | None = None
    tracking_numbers: list[str] = Field(default_factory=list)
    shipped_at: datetime


class ShipmentPage(_Model):
    shipments: list[Shipment]
    next_cursor: str | None
    has_more: bool = False


class JournalLine(_Model):
    line_no: Annotated[StrictInt, Field(ge=1)]
    account: str = Field(min_length=1)
    debit_minor: Annotated[StrictInt, Field(ge=0)] = 0
    credit_minor: Annotated[StrictInt, Field(ge=0)] = 0
    description: str = ""
    reference: str | None = None  # order number, payment id, settlement id

    @model_validator(mode="after")
    def _one_side(self) -> JournalLine:
        if (self.debit_minor == 0) == (self.credit_minor == 0):
            raise ValueError(
                "a journal line has either a debit or a credit amount, not both or neither"
            )
        return self


class JournalBatch(_Model):
    """A balanced set of postings, sent once: ``batch_id`` makes a repeat a no-op."""

    batch_id: str = Field(min_length=1, max_length=64)
    posting_date: date
    currency: str = Field(min_length=3, max_length=3)
    fraction_digits: FractionDigits
    description: str = ""
    lines: list[JournalLine] = Field(min_length=1)

    @model_validator(mode="after")
    def _balanced(self) -> JournalBatch:
        debit = sum(line.debit_minor for line in self.lines)
        credit = sum(line.credit_minor for line in self.lines)
        if debit != credit:
            raise ValueError(f"journal batch does not balance: debits {debit} != credits {credit}")
        return self


class PostedJournalBatch(JournalBatch):
    """A journal batch as the ERP holds it, lines included (for reconciliation)."""

    journal_no: str
    posted_at: datetime


class JournalPosting(_Model):
    batch_id: str
    journal_no: str
    posting_date: date
    currency: str
    total_debit_minor: StrictInt
    total_credit_minor: StrictInt
    line_count: StrictInt
    posted_at: datetime


@runtime_checkable
class ErpPort(Protocol):
    """What flows may ask of the ERP/WMS. Implementations raise ``ct_pipelines.erp.errors``."""

    def iter_items(self) -> Iterator[ErpItem]: ...

    def iter_stock(self, locations: Sequence[str] | None = None) -> Iterator[StockLevel]: ...

    def stock_movements_since(self, cursor: str | None, limit: int = 1000) -> StockMovementPage: ...

    def find_sales_order(self, external_document_number: str) -> ErpSalesOrder | None: ...

    def upsert_sales_order(
        self, order: SalesOrderDraft, *, idempotency_key: str
    ) -> ErpSalesOrder: ...

    def shipments_since(self, cursor: str | None, limit: int = 500) -> ShipmentPage: ...

    def post_journal_batch(self, batch: JournalBatch) -> JournalPosting: ...

    def find_journal_batch(self, batch_id: str) -> JournalPosting | None: ...

    def iter_sales_orders(self, order_date: date) -> Iterator[ErpSalesOrder]:
        """Every sales order of one order date, in sales order number order."""
        ...

    def iter_journal_batches(self, posting_date: date) -> Iterator[PostedJournalBatch]:
        """Every journal batch posted for one posting date, with its lines, by batch id."""
        ...


def find_sales_orders(
    port: ErpPort, external_document_numbers: Sequence[str]
) -> dict[str, ErpSalesOrder]:
    """The ERP's sales orders for those document numbers that exist, by document number.

    In bulk where the adapter offers it (``find_sales_orders``, e.g. the REST adapter: one
    request per batch); otherwise (e.g. Tryton) one ``find_sales_order`` per number. Not part of
    the Protocol, so adapters without a bulk lookup stay valid ports.
    """
    bulk = getattr(port, "find_sales_orders", None)
    if bulk is not None:
        found: dict[str, ErpSalesOrder] = bulk(external_document_numbers)
        return found
    result: dict[str, ErpSalesOrder] = {}
    for number in dict.fromkeys(external_document_numbers):
        order = port.find_sales_order(number)
        if order is not None:
            result[number] = order
    return result


__all__ = [
    "ErpItem",
    "ErpPort",
    "ErpPrice",
    "ErpSalesOrder",
    "JournalBatch",
    "JournalLine",
    "JournalPosting",
    "LineKind",
    "PostedJournalBatch",
    "SalesOrderCustomer",
    "SalesOrderDraft",
    "SalesOrderLine",
    "SalesOrderTotals",
    "Shipment",
    "ShipmentLine",
    "ShipmentPage",
    "StockLevel",
    "StockMovement",
    "StockMovementPage",
    "find_sales_orders",
]
