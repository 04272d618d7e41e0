"""The ERP's external document number for a commercetools order, and back."""

from __future__ import annotations

import re
from typing import Any

ERP_DOCUMENT_NUMBER_LENGTH = 35


_UUID_HEX = re.compile(r"^[0-9a-f]{32}$")


def external_document_number(order: Any, max_length: int = ERP_DOCUMENT_NUMBER_LENGTH) -> str:
    """The ERP's external document number: ``orderNumber``, or the order id when it has none.

    An id is a UUID of 36 characters, one more than many ERPs take (35), so when it does not fit
    it travels without its hyphens: still the id, and ``order_id_from_document_number`` restores it.
    """
    if order.order_number and str(order.order_number).strip():
        return str(order.order_number)
    return order.id if len(order.id) <= max_length else order.id.replace("-", "")


def id_document_numbers(order_id: str) -> tuple[str, ...]:
    """Every document number an order may have had before its ``orderNumber``: its id, with and
    without hyphens (which one depends on the ERP's length limit at the time)."""
    return tuple(dict.fromkeys((order_id, order_id.replace("-", ""))))


def order_id_from_document_number(document: str) -> str | None:
    """The commercetools order id behind a document number made from an id, else None."""
    if _UUID_HEX.match(document):
        d = document
        return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"
    if len(document) == 36 and document.count("-") == 4:
        return document
    return None
