"""Money rules, written down once.

- Amounts travel as integers in the currency's minor units (``centAmount``) with the currency code
  and its number of fraction digits; arithmetic on them is integer arithmetic.
- High-precision amounts (``preciseAmount`` with more ``fractionDigits`` than the currency has)
  become minor units by rounding half to even (banker's rounding), which is what commercetools
  does when it derives ``centAmount`` itself: 1.005 GBP -> 100 pence, 1.015 GBP -> 102 pence.
- Where a ratio is needed (tax on a net amount) the result is a ``Decimal`` rounded half-even to
  minor units at the point where commercetools rounds (per line by default).
- ``float`` never appears: it cannot represent 0.1 exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

# ISO 4217 minor units for the currencies a UK/EU shop meets, plus the 0- and 3-digit cases.
CURRENCY_FRACTION_DIGITS: dict[str, int] = {
    "GBP": 2,
    "EUR": 2,
    "USD": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "AUD": 2,
    "CAD": 2,
    "NZD": 2,
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "CLP": 0,
    "KWD": 3,
    "BHD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
}


class MoneyError(ValueError):
    """Money that cannot be converted exactly or safely."""


def currency_fraction_digits(currency: str) -> int:
    try:
        return CURRENCY_FRACTION_DIGITS[currency.upper()]
    except KeyError:
        raise MoneyError(
            f"unknown currency {currency!r}: its fraction digits are not configured"
        ) from None


def round_half_even(amount: Decimal, fraction_digits: int) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-fraction_digits), rounding=ROUND_HALF_EVEN)


def precise_to_minor(precise_amount: int, precise_digits: int, currency_digits: int) -> int:
    """``preciseAmount`` at ``precise_digits`` to minor units at ``currency_digits``, half-even."""
    if precise_digits < currency_digits:
        raise MoneyError(
            f"high-precision amount has {precise_digits} fraction digits, fewer than the currency's {currency_digits}"
        )
    exact = Decimal(precise_amount).scaleb(-precise_digits)
    return int(round_half_even(exact, currency_digits).scaleb(currency_digits))


def _get(money: Any, attr: str, alias: str) -> Any:
    if isinstance(money, Mapping):
        return money.get(alias)
    return getattr(money, attr, None)


def to_minor_units(money: Any) -> int:
    """Minor units of a commercetools TypedMoney (model or JSON dict), by the rules above."""
    currency = _get(money, "currency_code", "currencyCode")
    kind = _get(money, "type", "type") or "centPrecision"
    if kind == "highPrecision":
        precise = _get(money, "precise_amount", "preciseAmount")
        digits = _get(money, "fraction_digits", "fractionDigits")
        if precise is None or digits is None:
            raise MoneyError("highPrecision money without preciseAmount/fractionDigits")
        return precise_to_minor(int(precise), int(digits), currency_fraction_digits(str(currency)))
    cents = _get(money, "cent_amount", "centAmount")
    if cents is None:
        raise MoneyError("money without centAmount")
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise MoneyError(f"centAmount must be an integer, got {type(cents).__name__}")
    return cents


def to_decimal(minor_units: int, fraction_digits: int) -> Decimal:
    """Minor units as a Decimal in major units (1234, 2 -> Decimal('12.34'))."""
    return Decimal(minor_units).scaleb(-fraction_digits)


def format_money(minor_units: int, currency: str) -> str:
    digits = currency_fraction_digits(currency)
    return f"{to_decimal(minor_units, digits):.{digits}f} {currency}"


def display_money(minor_units: int, currency: str) -> str:
    """Minor units as people read them: ``display_money(1270282, "GBP") == "GBP 12,702.82"``.

    The currency code goes first (finance's convention, and unambiguous across currencies),
    with thousands separators; an unknown currency shows its minor units rather than failing.
    """
    try:
        digits = currency_fraction_digits(currency)
    except MoneyError:
        return f"{currency} {minor_units:,} (minor units)"
    sign = "-" if minor_units < 0 else ""
    return f"{currency} {sign}{to_decimal(abs(minor_units), digits):,.{digits}f}"


def display_amounts(amounts: Mapping[str, int]) -> str:
    """Amounts by currency as one line: ``GBP 12,702.82; EUR 310.00`` (``none`` when empty)."""
    if not amounts:
        return "none"
    return "; ".join(display_money(int(v), str(c)) for c, v in sorted(amounts.items()))


def tax_from_net(net_minor: int, rate: Decimal) -> int:
    """Tax on a net amount, rounded half-even to minor units (commercetools' default mode)."""
    return int((Decimal(net_minor) * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
