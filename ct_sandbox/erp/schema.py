"""The sandbox ERP's request schema: the JSON bodies its REST API accepts, as pydantic models.

This is the server's side of the wire format, written down independently of any client (the
sandbox imports nothing from ``ct_pipelines``): a client that sends something else gets the
422 ``ValidationFailed`` a real ERP would send, instead of the sandbox sharing the client's
assumptions. Field names, types and limits are the REST API's:

``PUT /erp/sales-orders/{external_document_number}``::

    {"external_document_number": str (1+), "order_date": "YYYY-MM-DD",
     "currency": str (3), "fraction_digits": int 0..20,
     "customer": {"ref": str, "country": str | null},
     "lines": [{"line_no": int >= 1, "item_no": str (1+), "description": str = "",
                "quantity": int >= 0, "unit_price_minor": int, "net_minor": int,
                "tax_minor": int, "gross_minor": int, "tax_code": str,
                "kind": "item" | "custom" | "shipping" | "discount" = "item"}],
     "totals": {"net_minor": int, "tax_minor": int, "gross_minor": int},
     "source_order_id": str, "source_order_version": int}

``POST /erp/journal-batches``::

    {"batch_id": str (1..64), "posting_date": "YYYY-MM-DD", "currency": str (3),
     "fraction_digits": int 0..20, "description": str = "",
     "lines": [{"line_no": int >= 1, "account": str (1+), "debit_minor": int >= 0 = 0,
                "credit_minor": int >= 0 = 0, "description": str = "",
                "reference": str | null}]  (1+ lines, each one-sided, debits == credits)}

Amounts are strict integers in minor units (a float or a bool is refused). Unknown fields are
ignored, as a newer client's extra fields would be. Business rules (known items and tax codes,
totals adding up, document number length, chart of accounts) are checked afterwards in
``ct_sandbox.erp_app`` with readable per-field problems.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

MinorUnits = StrictInt
FractionDigits = Annotated[StrictInt, Field(ge=0, le=20)]
Quantity = Annotated[StrictInt, Field(ge=0)]
LineNo = Annotated[StrictInt, Field(ge=1)]
LineKind = Literal["item", "custom", "shipping", "discount"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SalesOrderLineBody(_Body):
    line_no: LineNo
    item_no: str = Field(min_length=1)
    description: str = ""
    quantity: Quantity
    unit_price_minor: MinorUnits
    net_minor: MinorUnits
    tax_minor: MinorUnits
    gross_minor: MinorUnits
    tax_code: str
    kind: LineKind = "item"


class SalesOrderCustomerBody(_Body):
    ref: str
    country: str | None = None


class SalesOrderTotalsBody(_Body):
    net_minor: MinorUnits
    tax_minor: MinorUnits
    gross_minor: MinorUnits


class SalesOrderBody(_Body):
    """The body of ``PUT /erp/sales-orders/{external_document_number}``."""

    external_document_number: str = Field(min_length=1)
    order_date: date
    currency: str = Field(min_length=3, max_length=3)
    fraction_digits: FractionDigits
    customer: SalesOrderCustomerBody
    lines: list[SalesOrderLineBody]
    totals: SalesOrderTotalsBody
    source_order_id: str
    source_order_version: StrictInt


class JournalLineBody(_Body):
    line_no: LineNo
    account: str = Field(min_length=1)
    debit_minor: Annotated[StrictInt, Field(ge=0)] = 0
    credit_minor: Annotated[StrictInt, Field(ge=0)] = 0
    description: str = ""
    reference: str | None = None

    @model_validator(mode="after")
    def _one_side(self) -> JournalLineBody:
        if (self.debit_minor == 0) == (self.credit_minor == 0):
            raise ValueError(
                "a journal line has either a debit or a credit amount, not both or neither"
            )
        return self


class JournalBatchBody(_Body):
    """The body of ``POST /erp/journal-batches``; ``batch_id`` makes a repeat a no-op."""

    batch_id: str = Field(min_length=1, max_length=64)
    posting_date: date
    currency: str = Field(min_length=3, max_length=3)
    fraction_digits: FractionDigits
    description: str = ""
    lines: list[JournalLineBody] = Field(min_length=1)

    @model_validator(mode="after")
    def _balanced(self) -> JournalBatchBody:
        debit = sum(line.debit_minor for line in self.lines)
        credit = sum(line.credit_minor for line in self.lines)
        if debit != credit:
            raise ValueError(f"journal batch does not balance: debits {debit} != credits {credit}")
        return self


__all__ = [
    "JournalBatchBody",
    "JournalLineBody",
    "SalesOrderBody",
    "SalesOrderCustomerBody",
    "SalesOrderLineBody",
    "SalesOrderTotalsBody",
]
