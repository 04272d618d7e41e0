"""Canonical forms of mastered values, so that equal values compare equal across both systems.

Each mastered field is reduced to one string: the planner compares these strings (master vs
commercetools) and the sync baseline stores them. Two representations of one value must give one
string (``19.90`` and ``19.9``; an enum ``{"key": "red", "label": "Red"}`` and ``"red"``),
otherwise a sync with nothing to do would still send updates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ct_pipelines.kernel.money import CURRENCY_FRACTION_DIGITS

CENT = "cent"
HIGH = "high"


def decimal_text(value: Decimal) -> str:
    """A Decimal without trailing zeros or exponent: 19.90 -> '19.9', 1E+2 -> '100'."""
    normalized = value.normalize()
    if normalized == 0:
        return "0"
    return format(normalized, "f")


def money_text(currency: str, amount: Decimal) -> str:
    """'GBP 19.99'. Equal amounts compare equal whatever their precision type: a high-precision
    price of exactly 29.33 is the same price as 2933 cents, so nothing needs sending."""
    return f"{currency.upper()} {decimal_text(amount)}"


def ct_money_amount(money: Mapping[str, Any]) -> tuple[str, str, Decimal]:
    """(currency, precision, exact amount) of a commercetools TypedMoney or Money JSON."""
    currency = str(money["currencyCode"]).upper()
    digits = money.get("fractionDigits")
    if money.get("type") == "highPrecision":
        if digits is None:  # the API always sends it for high-precision money
            raise ValueError(f"{currency} high-precision money without fractionDigits")
        return currency, HIGH, Decimal(int(money["preciseAmount"])).scaleb(-int(digits))
    if digits is None:
        digits = CURRENCY_FRACTION_DIGITS.get(currency, 2)
    return currency, CENT, Decimal(int(money["centAmount"])).scaleb(-int(digits))


def ct_money_text(money: Mapping[str, Any]) -> str:
    currency, _, amount = ct_money_amount(money)
    return money_text(currency, amount)


def _number_text(value: int | float | Decimal) -> str:
    try:
        return decimal_text(Decimal(str(value)))
    except InvalidOperation:  # nan / inf have no canonical decimal form
        return str(value)


def _plain(value: Any) -> Any:
    """JSON-ready value with numbers, enums and sets made canonical."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return {"$number": _number_text(value)}
    if isinstance(value, Mapping):
        # An enum attribute reads back as {key, label} but is set by its key.
        if "key" in value and set(value) <= {"key", "label"}:
            return _plain(value["key"])
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def attribute_text(value: Any) -> str | None:
    """Canonical text of an attribute value; None means "no value" (attribute absent).

    Strings and numbers stay distinct in general, but a number and its decimal string
    compare equal ("1.50" and 1.5), because ERPs commonly hand attributes over as text.
    """
    if value is None:
        return None
    plain = _plain(value)
    if isinstance(plain, str):
        try:
            return "n:" + decimal_text(Decimal(plain)) if plain.strip() else "s:" + plain
        except InvalidOperation:
            return "s:" + plain
    if isinstance(plain, dict) and set(plain) == {"$number"}:
        return "n:" + plain["$number"]
    if isinstance(plain, bool):
        return "b:" + ("true" if plain else "false")
    return "j:" + json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
