"""The port's models: exact money, tolerant of new fields, strict where a bug would hide."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import SecretStr, ValidationError

from ct_pipelines.erp.port import (
    ErpPort,
    ErpPrice,
    JournalBatch,
    JournalLine,
    SalesOrderDraft,
    SalesOrderLine,
)
from ct_pipelines.erp.rest import RestErpClient


def _line(line_no: int = 1, net: int = 1000, tax: int = 200, **overrides: object) -> dict:
    return {
        "line_no": line_no,
        "item_no": "10001",
        "description": "Organic Cotton T-Shirt",
        "quantity": 1,
        "unit_price_minor": net + tax,
        "net_minor": net,
        "tax_minor": tax,
        "gross_minor": net + tax,
        "tax_code": "S",
        "kind": "item",
        **overrides,
    }


def _draft(**overrides: object) -> dict:
    return {
        "external_document_number": "UK-100001",
        "order_date": "2026-03-01",
        "currency": "GBP",
        "fraction_digits": 2,
        "customer": {"ref": "guest", "country": "GB"},
        "lines": [_line()],
        "totals": {"net_minor": 1000, "tax_minor": 200, "gross_minor": 1200},
        "source_order_id": "order-1",
        "source_order_version": 3,
        **overrides,
    }


def test_sales_order_round_trips_through_json_unchanged() -> None:
    draft = SalesOrderDraft.model_validate(_draft())
    again = SalesOrderDraft.model_validate_json(draft.model_dump_json())
    assert again == draft
    assert again.order_date == date(2026, 3, 1)
    assert draft.lines_add_up()


def test_minor_units_reject_floats_and_bools() -> None:
    with pytest.raises(ValidationError):
        SalesOrderLine.model_validate(_line(net_minor=10.0))
    with pytest.raises(ValidationError):
        SalesOrderLine.model_validate(_line(tax_minor=True))


def test_unknown_line_kind_is_rejected() -> None:
    with pytest.raises(ValidationError):
        SalesOrderLine.model_validate(_line(kind="freebie"))


def test_lines_add_up_detects_a_penny_off() -> None:
    draft = SalesOrderDraft.model_validate(
        _draft(totals={"net_minor": 1000, "tax_minor": 201, "gross_minor": 1201})
    )
    assert not draft.lines_add_up()


def test_new_fields_from_a_newer_erp_are_ignored() -> None:
    price = ErpPrice.model_validate(
        {
            "currency": "EUR",
            "amount_minor": 381,
            "fraction_digits": 2,
            "precise_amount": "3.8139",
            "price_list": "IE-2026",
        }
    )
    assert price.precise_amount == Decimal("3.8139")
    assert price.to_decimal() == Decimal("3.8139")
    assert ErpPrice(currency="GBP", amount_minor=125, fraction_digits=2).to_decimal() == Decimal(
        "1.25"
    )


def test_journal_batch_must_balance_and_lines_have_one_side() -> None:
    line = {"account": "1200", "debit_minor": 500, "description": "PSP settlement"}
    with pytest.raises(ValidationError, match="does not balance"):
        JournalBatch.model_validate(
            {
                "batch_id": "b1",
                "posting_date": "2026-03-01",
                "currency": "GBP",
                "fraction_digits": 2,
                "lines": [{"line_no": 1, **line}],
            }
        )
    with pytest.raises(ValidationError, match="either a debit or a credit"):
        JournalLine(line_no=1, account="1200", debit_minor=5, credit_minor=5)
    batch = JournalBatch.model_validate(
        {
            "batch_id": "b1",
            "posting_date": "2026-03-01",
            "currency": "GBP",
            "fraction_digits": 2,
            "lines": [
                {"line_no": 1, **line},
                {"line_no": 2, "account": "1100", "credit_minor": 500},
            ],
        }
    )
    assert len(batch.lines) == 2


def test_rest_client_satisfies_the_port_and_hides_its_token() -> None:
    client = RestErpClient("http://erp.example/api", SecretStr("tok-very-secret"))
    try:
        assert isinstance(client, ErpPort)
        assert "tok-very-secret" not in repr(client)
    finally:
        client.close()
