"""The one tax-code table: commercetools tax category or rate -> ERP tax code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class MappingError(ValueError):
    """An order the ERP cannot take as it is; permanent until the mapping or the order changes."""

    def __init__(self, category: str, reason: str, *, sku: str | None = None) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason
        self.sku = sku


@dataclass(frozen=True)
class TaxCodeTable:
    """commercetools tax category (key or name) or rate -> ERP tax code."""

    by_rate: Mapping[Decimal, str] = field(
        default_factory=lambda: {Decimal("0.2"): "S", Decimal("0.05"): "R", Decimal("0"): "Z"}
    )
    by_category: Mapping[str, str] = field(default_factory=dict)

    def code_for(self, rate: Any, category: str | None = None) -> str:
        if category and category in self.by_category:
            return self.by_category[category]
        if rate is None:
            raise MappingError(
                "unknown_tax_code", "line has no tax rate, so no ERP tax code applies"
            )
        amount = Decimal(str(getattr(rate, "amount", rate))).normalize()
        for known, code in self.by_rate.items():
            if Decimal(known).normalize() == amount:
                return code
        name = getattr(rate, "name", None)
        raise MappingError(
            "unknown_tax_code",
            f"no ERP tax code for tax rate {amount}"
            + (f" ({name})" if name else "")
            + "; add it to the tax code table",
        )
