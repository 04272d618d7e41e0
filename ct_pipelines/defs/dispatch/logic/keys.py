"""Delivery and parcel keys derived from the ERP shipment number.

The key is what makes a dispatch idempotent: commercetools refuses a second delivery with the
same key in one order, and a re-read order that already holds the key tells us the shipment was
applied. Keys must match ``^[a-zA-Z0-9_-]{2,256}$`` and be unique within the order.

The shape ``shipment-<number>`` / ``parcel-<number>`` is the one the sandbox seed uses for the
dispatch history it creates, so a first run over that history recognises it instead of adding
every delivery a second time.
"""

from __future__ import annotations

import hashlib
import re

DELIVERY_KEY_PREFIX = "shipment-"
PARCEL_KEY_PREFIX = "parcel-"
MAX_KEY_LENGTH = 256
# Room for the prefixes and a parcel suffix such as "-12" inside the 256 characters.
_MAX_NUMBER_PART = 230
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")
KEY_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{2,256}$")


def shipment_key_part(shipment_number: str) -> str:
    """The shipment number as key characters; unchanged when it is already clean.

    A number that needs cleaning (``SH/001`` -> ``SH-001``) or shortening gets a short hash of the
    original appended, so two numbers that clean to the same text still get different keys.
    """
    if not shipment_number or not shipment_number.strip():
        raise ValueError("a shipment number is required to derive a delivery key")
    cleaned = _NOT_ALLOWED.sub("-", shipment_number)
    if cleaned == shipment_number and len(cleaned) <= _MAX_NUMBER_PART:
        return cleaned
    digest = hashlib.sha256(shipment_number.encode()).hexdigest()[:12]
    return f"{cleaned[: _MAX_NUMBER_PART - len(digest) - 1]}-{digest}"


def delivery_key(shipment_number: str) -> str:
    return DELIVERY_KEY_PREFIX + shipment_key_part(shipment_number)


def parcel_key(shipment_number: str, index: int) -> str:
    """Key of the shipment's ``index``-th parcel (1-based); the first has no suffix."""
    if index < 1:
        raise ValueError("parcel index starts at 1")
    base = PARCEL_KEY_PREFIX + shipment_key_part(shipment_number)
    return base if index == 1 else f"{base}-{index}"
