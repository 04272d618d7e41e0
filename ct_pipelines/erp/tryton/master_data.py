"""The item master data Tryton's installed modules have no field for, kept on the variant.

The shop groups SKUs into commercetools products by a ``product_key`` attribute, carries
variant attributes (colour, size, ...) and sells in more than the company currency (EUR in
Ireland). Tryton holds those with its ``product_attribute`` and ``sale_price_list`` modules,
which are not among the modules this adapter installs; so the variant's own ``description`` (a
Text field, which Tryton does not strip as it strips Char fields) holds the readable description,
then one line ``#master:{json}`` with ``attributes`` and ``prices`` (those not in the company
currency; the company currency's price is the template's list price). ``ct-pipelines tryton
setup`` writes it, the adapter reads it back; someone editing the item in Tryton edits that line.
"""

from __future__ import annotations

import json
from typing import Any

MARKER = "#master:"


def description_text(
    description: str | None,
    attributes: dict[str, Any],
    prices: list[dict[str, Any]] | None = None,
) -> str | None:
    """What goes into ``product.product.description``."""
    lines = [description] if description else []
    data: dict[str, Any] = {}
    if attributes:
        data["attributes"] = attributes
    if prices:
        data["prices"] = prices
    if data:
        lines.append(MARKER + json.dumps(data, sort_keys=True, separators=(",", ":")))
    return "\n".join(lines) or None


def split_description(text: str | None) -> tuple[str | None, dict[str, Any], list[dict[str, Any]]]:
    """(description, attributes, other prices) from ``product.product.description``; a
    description someone typed in Tryton without the marker line is kept whole."""
    if not text:
        return None, {}, []
    head, _, last = text.rpartition("\n")
    if last.startswith(MARKER):
        try:
            data = json.loads(last[len(MARKER) :])
        except ValueError:
            return text, {}, []
        if isinstance(data, dict):
            attributes = data.get("attributes") or {}
            prices = data.get("prices") or []
            if isinstance(attributes, dict) and isinstance(prices, list):
                return head or None, attributes, prices
    return text, {}, []
