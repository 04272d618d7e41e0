"""How the designated master's items become commercetools products, per deployment."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from ct_pipelines.defs.product_master.logic.master import DEFAULT_TAX_CATEGORIES, CatalogRules


class ProductCatalogResource(dg.ConfigurableResource):
    """Grouping, naming, tax category table and product type for product syndication.

    Shared by the sync asset and the parity checks so both read the master the same way.
    """

    product_key_attribute: str = "product_key"
    product_name_attribute: str = "product_name"
    locale: str = "en-GB"
    # The master's tax code -> commercetools tax category key (UK: S 20 %, R 5 %, Z 0 %).
    tax_categories: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TAX_CATEGORIES))
    # Master attributes that are not commercetools attributes.
    excluded_attributes: list[str] = Field(default_factory=lambda: ["category"])
    # Product type of products the sync creates; unset reuses the type existing products have.
    product_type_key: str | None = None
    # What the parity checks compare: the live (current) data, or staged data when the sync
    # runs without publishing.
    parity_view: Literal["current", "staged"] = "current"

    def rules(self) -> CatalogRules:
        return CatalogRules(
            product_key_attribute=self.product_key_attribute,
            product_name_attribute=self.product_name_attribute,
            locale=self.locale,
            tax_categories=dict(self.tax_categories),
            excluded_attributes=frozenset(self.excluded_attributes),
        )
