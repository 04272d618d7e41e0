from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ct_pipelines.kernel.money import (
    MoneyError,
    currency_fraction_digits,
    format_money,
    precise_to_minor,
    tax_from_net,
    to_decimal,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("precise", "digits", "expected"),
    [
        (10050, 4, 100),  # 1.0050 -> 1.00: half goes to the even neighbour
        (10150, 4, 102),  # 1.0150 -> 1.02
        (10051, 4, 101),  # above half rounds up
        (10049, 4, 100),
        (-10050, 4, -100),  # symmetric for credits
        (123456, 7, 1),  # the API reference's example: 0.0123456 EUR -> 1 cent
    ],
)
def test_high_precision_rounds_half_even_to_pence(precise: int, digits: int, expected: int) -> None:
    assert precise_to_minor(precise, digits, 2) == expected


def test_currencies_with_zero_two_and_three_fraction_digits() -> None:
    assert currency_fraction_digits("JPY") == 0
    assert currency_fraction_digits("gbp") == 2
    assert currency_fraction_digits("KWD") == 3
    # 1234.5 JPY at 1 extra digit -> 1234 (even), 1235.5 -> 1236
    assert precise_to_minor(12345, 1, 0) == 1234
    assert precise_to_minor(12355, 1, 0) == 1236
    # 1.23450 KWD -> 1.234 (even), 1.23550 -> 1.236
    assert precise_to_minor(123450, 5, 3) == 1234
    assert precise_to_minor(123550, 5, 3) == 1236
    assert format_money(500, "JPY") == "500 JPY"
    assert format_money(1234, "KWD") == "1.234 KWD"
    assert format_money(-5, "GBP") == "-0.05 GBP"


def test_to_minor_units_reads_json_and_rejects_floats() -> None:
    assert (
        to_minor_units(
            {
                "type": "centPrecision",
                "currencyCode": "GBP",
                "centAmount": 1299,
                "fractionDigits": 2,
            }
        )
        == 1299
    )
    assert (
        to_minor_units(
            {
                "type": "highPrecision",
                "currencyCode": "GBP",
                "centAmount": 100,
                "preciseAmount": 99995,
                "fractionDigits": 5,
            }
        )
        == 100
    )
    with pytest.raises(MoneyError, match="integer"):
        to_minor_units({"currencyCode": "GBP", "centAmount": 12.99})
    with pytest.raises(MoneyError, match="preciseAmount"):
        to_minor_units({"type": "highPrecision", "currencyCode": "GBP", "centAmount": 1})
    with pytest.raises(MoneyError, match="unknown currency"):
        to_minor_units(
            {
                "type": "highPrecision",
                "currencyCode": "XXX",
                "preciseAmount": 1,
                "fractionDigits": 4,
            }
        )
    with pytest.raises(MoneyError, match="fewer"):
        precise_to_minor(1, 1, 2)


def test_tax_from_net_rounds_half_even() -> None:
    assert tax_from_net(1250, Decimal("0.2")) == 250
    assert tax_from_net(1, Decimal("0.5")) == 0  # 0.5p -> 0 (even)
    assert tax_from_net(3, Decimal("0.5")) == 2  # 1.5p -> 2 (even)
    assert to_decimal(1999, 2) == Decimal("19.99")


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=2, max_value=20))
def test_precise_to_minor_matches_decimal_half_even(precise: int, digits: int) -> None:
    expected = (Decimal(precise) / Decimal(10) ** digits).quantize(
        Decimal("0.01"), rounding="ROUND_HALF_EVEN"
    )
    assert precise_to_minor(precise, digits, 2) == int(expected * 100)


def test_tax_split_follows_the_orders_rounding_and_calculation_modes() -> None:
    from decimal import Decimal

    from ct_pipelines.kernel.money import tax_split

    # commercetools' own example (TaxCalculationMode.raml): $1.08 x 3 at 19 %, net prices.
    assert tax_split(324, Decimal("0.19"), False, 3, "LineItemLevel") == (324, 62, 386)
    assert tax_split(324, Decimal("0.19"), False, 3, "UnitPriceLevel") == (324, 63, 387)
    # 250 net at 5 % = 12.5 tax: half-even 12, half-up 13, half-down 12.
    assert tax_split(250, Decimal("0.05"), False)[1] == 12
    assert tax_split(250, Decimal("0.05"), False, rounding_mode="HalfUp")[1] == 13
    assert tax_split(250, Decimal("0.05"), False, rounding_mode="HalfDown")[1] == 12
    # 350 net at 5 % = 17.5: half-even 18.
    assert tax_split(350, Decimal("0.05"), False)[1] == 18
    # Tax-inclusive: 105 gross at 5 % -> 100 net.
    assert tax_split(105, Decimal("0.05"), True) == (100, 5, 105)


def test_allocate_shares_add_up_exactly() -> None:
    from ct_pipelines.kernel.money import allocate

    assert allocate(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert allocate(-100, {"a": 1, "b": 1, "c": 1}) == {"a": -34, "b": -33, "c": -33}
    assert allocate(7, {"a": 0, "b": 0}) == {"a": 7, "b": 0}
    assert allocate(5, {}) == {}
    shares = allocate(999, {"x": 3332, "y": 1286, "z": 899})
    assert sum(shares.values()) == 999


@pytest.mark.parametrize(
    ("text", "digits", "minor"),
    [("1980", 0, 1980), ("19.99", 2, 1999), ("-19.9", 2, -1990), ("12.345", 3, 12345),
     ("0.001", 3, 1), ("+5", 0, 5), ("-0.00", 2, 0)],
)  # fmt: skip
def test_decimal_text_becomes_exact_minor_units(text: str, digits: int, minor: int) -> None:
    from ct_pipelines.kernel.money import decimal_text_to_minor, minor_to_decimal_text

    assert decimal_text_to_minor(text, digits) == minor
    assert decimal_text_to_minor(minor_to_decimal_text(minor, digits), digits) == minor


@pytest.mark.parametrize(
    "text", ["12.345", "1,000.00", "1e3", "", " ", "nan", "inf", "12.", ".5", "--1", "1²", "1 000"]
)
def test_decimal_text_that_is_not_exact_is_refused_not_rounded(text: str) -> None:
    from ct_pipelines.kernel.money import MoneyError, decimal_text_to_minor

    with pytest.raises(MoneyError):
        decimal_text_to_minor(text, 2)
