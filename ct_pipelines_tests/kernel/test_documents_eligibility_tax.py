"""The kernel's shared rules on their own: document numbers, eligibility, the tax-code table."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from ct_pipelines.kernel.documents import (
    external_document_number,
    id_document_numbers,
    order_id_from_document_number,
)
from ct_pipelines.kernel.eligibility import EligibilityRule, eligibility
from ct_pipelines.kernel.tax import MappingError, TaxCodeTable

ORDER_ID = "0b7e3b2a-6c1d-4f7e-9a55-3d2c1b0a9f88"


def _order(**fields: object) -> SimpleNamespace:
    base = {"id": ORDER_ID, "order_number": None, "order_state": "Open", "payment_state": None}
    return SimpleNamespace(**{**base, **fields}, payment_info=None)


def test_the_document_number_is_the_order_number_else_the_id_that_fits() -> None:
    assert external_document_number(_order(order_number="UK-1001")) == "UK-1001"
    # A blank number is no number: the id travels instead.
    assert external_document_number(_order(order_number="  ")) == ORDER_ID.replace("-", "")
    assert external_document_number(_order(), max_length=36) == ORDER_ID
    for document in id_document_numbers(ORDER_ID):
        assert order_id_from_document_number(document) == ORDER_ID
    assert order_id_from_document_number("UK-1001") is None


def test_eligible_when_paid_or_authorised_and_never_when_cancelled() -> None:
    assert eligibility(_order(payment_state="Paid")).eligible
    assert not eligibility(_order(payment_state="Pending")).eligible
    assert not eligibility(_order(payment_state="Paid", order_state="Cancelled")).eligible
    strict = EligibilityRule(payment_states=frozenset(), transaction_types=frozenset({"Charge"}))
    verdict = eligibility(_order(payment_state="Paid"), strict)
    assert not verdict.eligible and "Paid" in verdict.reason


def test_the_tax_table_prefers_the_category_then_matches_the_rate_exactly() -> None:
    table = TaxCodeTable(by_category={"books": "Z"})
    assert table.code_for(Decimal("0.20")) == "S"
    assert table.code_for(SimpleNamespace(amount=0.05, name="Reduced")) == "R"
    assert table.code_for(Decimal("0.2"), category="books") == "Z"
    with pytest.raises(MappingError, match=r"no ERP tax code for tax rate 0.081 \(CH\)"):
        table.code_for(SimpleNamespace(amount=Decimal("0.081"), name="CH"))
    with pytest.raises(MappingError, match="no tax rate"):
        table.code_for(None)
