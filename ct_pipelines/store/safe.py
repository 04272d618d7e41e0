"""Values made safe for the store before they are written, on SQLite and on PostgreSQL alike.

Text from outside (order numbers, SKUs, ERP messages) may be longer than a column, hold NUL
bytes (PostgreSQL's text and jsonb refuse them) or lone surrogates (no UTF-8 encoding exists).
Left alone, one such order fails the statement, and with it the whole day, on PostgreSQL only.

- Keys (``safe_key``): an unchanged key when it is clean and fits; otherwise a cleaned prefix and
  a hash of the original, so the result fits the column, is deterministic (the same input always
  finds the same row) and two different originals never share a row.
- Free text (``safe_text``): cleaned and cut with a marker.
- JSON (``safe_json``): every string and key cleaned, so jsonb accepts it.
- ``original_form``: the original as ASCII-escaped JSON text, kept in an exception's details
  (next to its ``payload_ref`` pointing at the source) whenever a stored value had to change.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

KEY_LENGTH = 255
_HASH_LENGTH = 16
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ORIGINAL_LENGTH = 2000


def _clean(value: str) -> str:
    # Lone surrogates cannot be encoded: written out as \udXXX escapes instead.
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def is_clean(value: str, limit: int = KEY_LENGTH) -> bool:
    return len(value) <= limit and _clean(value) == value


def safe_key(value: str, limit: int = KEY_LENGTH) -> str:
    """``value`` as a key the store can hold; unchanged when it already can."""
    if is_clean(value, limit):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LENGTH]
    return f"{_clean(value)[: limit - _HASH_LENGTH - 1]}~{digest}"


def safe_optional_key(value: str | None, limit: int = KEY_LENGTH) -> str | None:
    return None if value is None else safe_key(str(value), limit)


def safe_text(value: str | None, limit: int | None = None) -> str | None:
    """Free text cleaned of what the store cannot hold, cut to ``limit`` with a marker."""
    if value is None:
        return None
    text = _clean(str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def safe_json(value: Any) -> Any:
    """A JSON-like value with every string (and key) cleaned for jsonb."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, Mapping):
        return {_clean(str(key)): safe_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [safe_json(item) for item in value]
    return value


def original_form(value: str) -> str:
    """The original, losslessly, as ASCII-escaped JSON text (NUL becomes \\u0000), cut if huge."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= ORIGINAL_LENGTH else text[: ORIGINAL_LENGTH - 1] + "…"


def changed_originals(**values: str | None) -> dict[str, str]:
    """The originals of those ``values`` the store could not hold as they are."""
    return {
        name: original_form(value)
        for name, value in values.items()
        if value is not None and not is_clean(value)
    }


__all__ = [
    "KEY_LENGTH",
    "changed_originals",
    "is_clean",
    "original_form",
    "safe_json",
    "safe_key",
    "safe_optional_key",
    "safe_text",
]
