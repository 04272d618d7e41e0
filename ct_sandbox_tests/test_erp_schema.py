"""The sandbox ERP's own request schema against the pipelines' ERP models: one wire format.

The sandbox validates with its own models (it imports nothing from ``ct_pipelines``); this test
is the contract that keeps the two sides describing the same JSON.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ct_pipelines.erp.port import JournalBatch, SalesOrderDraft
from ct_sandbox.erp.schema import JournalBatchBody, SalesOrderBody


def _shape(model: type[BaseModel]) -> dict[str, Any]:
    """Field names, required fields and JSON types of a model and its nested models."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return strip(defs[node["$ref"].split("/")[-1]])
            return {k: strip(v) for k, v in node.items() if k not in ("title", "description")}
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    return {k: strip(v) for k, v in schema.items() if k not in ("title", "description", "$defs")}


@pytest.mark.parametrize(
    ("sandbox", "client"), [(SalesOrderBody, SalesOrderDraft), (JournalBatchBody, JournalBatch)]
)
def test_the_sandbox_schema_describes_the_json_the_client_sends(
    sandbox: type[BaseModel], client: type[BaseModel]
) -> None:
    assert _shape(sandbox) == _shape(client)


def test_journal_batches_must_balance_and_lines_be_one_sided() -> None:
    line = {"line_no": 1, "account": "1100", "debit_minor": 100}
    base = {"batch_id": "b1", "posting_date": "2026-03-01", "currency": "GBP"}
    with pytest.raises(ValidationError, match="does not balance"):
        JournalBatchBody.model_validate({**base, "fraction_digits": 2, "lines": [line]})
    with pytest.raises(ValidationError, match="either a debit or a credit"):
        JournalBatchBody.model_validate(
            {**base, "fraction_digits": 2, "lines": [{**line, "credit_minor": 100}]}
        )
    with pytest.raises(ValidationError):  # a float is not minor units
        JournalBatchBody.model_validate(
            {**base, "fraction_digits": 2, "lines": [{**line, "debit_minor": 1.0}]}
        )
