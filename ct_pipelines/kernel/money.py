"""Money rules, written down once, with their sources.

Sources: commercetools' API specs (commercetools/commercetools-api-reference, ``api-specs/api/``):
``types/common/TypedMoney.raml``, ``HighPrecisionMoney.raml``, ``types/cart/RoundingMode.raml``,
``TaxCalculationMode.raml``, ``TaxedPrice.raml``, ``DiscountOnTotalPrice.raml``,
``DiscountedTotalPricePortion.raml``; docs.commercetools.com/api/projects/carts#discountontotalprice
and the release note 2023-09-28 "Added support for discounting the Cart total".

- Amounts travel as integers in the currency's minor units (``centAmount``) with the currency code
  and its number of fraction digits (ISO 4217: 0 for JPY, 2 for GBP, 3 for KWD); arithmetic on
  them is integer arithmetic. ``float`` never appears: it cannot represent 0.1 exactly.
- High-precision amounts (``preciseAmount`` with more ``fractionDigits`` than the currency has)
  become minor units by rounding half to even (banker's rounding), which is what commercetools
  does when it derives ``centAmount`` itself: 1.005 GBP -> 100 pence, 1.015 GBP -> 102 pence.
- Cart and order totals, line ``totalPrice`` and every ``taxedPrice`` are cent precision. Where
  commercetools gives a figure we take it (line and order ``taxedPrice``, ``taxPortions``,
  ``discountOnTotalPrice.discountedNetAmount`` / ``discountedGrossAmount``); we re-derive only
  what it does not give, and then with the order's own settings:
  - ``taxRoundingMode`` (``HalfEven`` default, ``HalfUp``, ``HalfDown``) rounds taxes;
    ``priceRoundingMode`` (same values, ``HalfEven`` default) rounds prices (``round_minor``).
  - ``taxCalculationMode`` ``LineItemLevel`` (default) taxes the line total once
    (``($1.08*3)*1.19 = $3.86``); ``UnitPriceLevel`` taxes one unit, rounds, and multiplies by
    the quantity (``($1.08*1.19 -> $1.29)*3 = $3.87``) (``tax_split``).
  - A tax-inclusive amount's net is ``gross / (1 + rate)`` rounded, its tax ``gross - net``; a
    net amount's tax is ``net * rate`` rounded, its gross ``net + tax``.
  - A tax rate's ``taxRoundingTarget`` (release note 2026-09-21, "Configurable tax rounding
    target"; ``Net`` by default) decides, for tax-inclusive prices, whether the net or the tax is
    the rounded figure (``Tax``: tax ``gross * rate / (1 + rate)`` rounded, net ``gross - tax``).
    Lines and portions carry commercetools' own result, which we take; where a list price and
    its discount are split again, the discount line takes the difference to commercetools' line
    figures, so either target adds up to the minor unit (the property test generates both).
- An order-level cart discount (``discountOnTotalPrice``, a Cart Discount targeting the total
  price) leaves every line's ``totalPrice`` and ``taxedPrice`` as they were: only the order's
  ``totalPrice``, ``taxedPrice`` and ``taxPortions`` are discounted. ``discountedNetAmount`` and
  ``discountedGrossAmount`` are the discount on the total net and gross ("the same percentage of
  discount applies as on the discountedAmount"). So, per tax rate:
  - the discount's tax is the rate's ``taxPortion`` minus the lines' tax at that rate
    (commercetools' figures, nothing re-derived);
  - the discount's net is ``discountedNetAmount`` (or lines' net minus ``totalNet``) shared out
    over the rates in proportion to the lines' net at each rate, largest remainder first
    (``allocate``), so the shares add up to commercetools' figure exactly.
- An ERP line's unit price times its quantity is its amount (gross for tax-inclusive prices,
  net otherwise). Where commercetools charged less than list price times quantity (product
  discounts, free shipping, high-precision rounding) the line stays at list price and a
  discount line carries the difference, so the lines add up to the order's totals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
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


ROUNDING = {"HalfEven": ROUND_HALF_EVEN, "HalfUp": ROUND_HALF_UP, "HalfDown": ROUND_HALF_DOWN}


def rounding_of(mode: Any) -> str:
    """A commercetools RoundingMode (enum, text or None) as a ``decimal`` rounding constant."""
    text = str(getattr(mode, "value", mode) or "HalfEven")
    try:
        return ROUNDING[text]
    except KeyError:
        raise MoneyError(f"unknown rounding mode {text!r}") from None


def round_minor(amount: Decimal, mode: Any = None) -> int:
    """An amount in minor units (possibly fractional) rounded to a whole minor unit."""
    return int(amount.quantize(Decimal(1), rounding=rounding_of(mode)))


def rate_text(rate: Any) -> str:
    """A tax rate as a stable text key: 0.2, 0.05, 0 (never 0.20 or 2E-1)."""
    value = Decimal(str(getattr(rate, "amount", rate)))
    text = format(value.normalize(), "f")
    return "0" if Decimal(text) == 0 else text


def tax_split(
    amount_minor: int,
    rate: Decimal,
    included: bool,
    quantity: int = 1,
    calculation_mode: Any = None,
    rounding_mode: Any = None,
) -> tuple[int, int, int]:
    """(net, tax, gross) of a line whose price times quantity is ``amount_minor``.

    ``included``: the amount is tax-inclusive (gross), else net. ``calculation_mode`` is the
    order's taxCalculationMode: at ``UnitPriceLevel`` one unit is split and multiplied by the
    quantity (the amount must then divide by it); ``rounding_mode`` the order's taxRoundingMode.
    """
    unit_level = str(getattr(calculation_mode, "value", calculation_mode)) == "UnitPriceLevel"
    if unit_level and quantity > 1 and amount_minor % quantity == 0:
        net, tax, gross = tax_split(
            amount_minor // quantity, rate, included, 1, None, rounding_mode
        )
        return net * quantity, tax * quantity, gross * quantity
    if included:
        net = round_minor(Decimal(amount_minor) / (1 + rate), rounding_mode)
        return net, amount_minor - net, amount_minor
    tax = round_minor(Decimal(amount_minor) * rate, rounding_mode)
    return amount_minor, tax, amount_minor + tax


def allocate(total: int, weights: Mapping[Any, int]) -> dict[Any, int]:
    """``total`` shared out in proportion to ``weights``, in whole minor units adding up to it.

    Largest remainder: every share is rounded down, then the units left over go to the largest
    remainders (ties to the larger weight, then the key order). With no weight at all the total
    goes to the first key.
    """
    keys = list(weights)
    if not keys:
        return {}
    base = sum(weights.values())
    if base == 0:
        return {key: (total if index == 0 else 0) for index, key in enumerate(keys)}
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = {key: magnitude * weights[key] // base for key in keys}
    remainders = {key: magnitude * weights[key] % base for key in keys}
    left = magnitude - sum(shares.values())
    ranked = sorted(keys, key=lambda k: (-remainders[k], -weights[k], keys.index(k)))
    for key in ranked[:left]:
        shares[key] += 1
    return {key: sign * shares[key] for key in keys}


_PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def decimal_text_to_minor(text: str, fraction_digits: int) -> int:
    """A decimal amount as a report writes it (``"-12.34"``, ``"1980"``) in exact minor units.

    Settlement files (Stripe's balance reports, Adyen's settlement details) give amounts in
    major units with at most the currency's fraction digits: ``"12.34"`` GBP is 1234 pence,
    ``"1980"`` JPY is 1980 yen, ``"12.345"`` KWD is 12345 fils. More digits than the currency
    has, exponents, thousands separators, blanks, NaN or infinity are refused (``MoneyError``),
    never rounded: a settlement amount is a fact, not an estimate.
    """
    cleaned = text.strip()
    if not cleaned:
        raise MoneyError("amount is empty")
    if _PLAIN_DECIMAL.fullmatch(cleaned) is None:
        raise MoneyError(f"amount {text!r} is not a plain decimal number")
    body = cleaned[1:] if cleaned[0] in "+-" else cleaned
    whole, _, fraction = body.partition(".")
    if len(fraction) > fraction_digits:
        raise MoneyError(
            f"amount {text!r} has {len(fraction)} fraction digits; the currency has "
            f"{fraction_digits}"
        )
    magnitude = int(whole) * 10**fraction_digits + int(fraction.ljust(fraction_digits, "0") or "0")
    return -magnitude if cleaned[0] == "-" else magnitude


def minor_to_decimal_text(minor_units: int, fraction_digits: int) -> str:
    """Minor units as a plain decimal (``1234, 2 -> "12.34"``; ``1980, 0 -> "1980"``)."""
    return f"{to_decimal(minor_units, fraction_digits):.{fraction_digits}f}"
