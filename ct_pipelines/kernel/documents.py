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
    if order.order_number:
        return str(order.order_number)
    return order.id if len(order.id) <= max_length else order.id.replace("-", "")


def order_id_from_document_number(document: str) -> str | None:
    """The commercetools order id behind a document number made from an id, else None."""
    if _UUID_HEX.match(document):
        d = document
        return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"
    if len(document) == 36 and document.count("-") == 4:
        return document
    return None
