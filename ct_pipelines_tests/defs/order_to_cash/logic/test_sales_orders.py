from decimal import Decimal

import pytest

from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping, to_sales_order
from ct_pipelines.kernel.documents import order_id_from_document_number
from ct_pipelines.kernel.tax import MappingError, TaxCodeTable
from ct_pipelines_tests.defs.order_to_cash.logic.order_factory import make_order

ITEMS = {"TSHIRT-BLK-M": "10001", "MUG-WHT": "20002", "TEA-EARLGREY": "30003", "BOOK-1": "40004"}
MAPPING = SalesOrderMapping(item_numbers=ITEMS, custom_items={"gift-wrap": "SRV-GIFTWRAP"})


def test_lines_tax_codes_shipping_and_custom_lines_add_up_to_the_order() -> None:
    order = make_order(
        [
            ("TSHIRT-BLK-M", 2, 1999, "0.2"),
            ("TEA-EARLGREY", 3, 450, "0.05"),
            ("BOOK-1", 1, 899, "0"),
        ],
        custom=[("gift-wrap", 1, 250, "0.2"), ("engraving", 1, 1000, "0.2")],
        shipping=(395, "0.2"),
    )
    draft = to_sales_order(order, MAPPING)
    assert draft.external_document_number == "UK-1001"
    assert [(line.item_no, line.kind, line.tax_code) for line in draft.lines] == [
        ("10001", "item", "S"),
        ("30003", "item", "R"),
        ("40004", "item", "Z"),
        ("SRV-GIFTWRAP", "custom", "S"),
        ("CUSTOM", "custom", "S"),  # no SKU and no mapping: the default item
        ("SHIPPING", "shipping", "S"),
    ]
    shirt = draft.lines[0]
    assert (shirt.quantity, shirt.unit_price_minor, shirt.gross_minor) == (2, 1999, 3998)
    assert (shirt.net_minor, shirt.tax_minor) == (3332, 666)  # 3998 / 1.2 = 3331.67 -> 3332
    tea = draft.lines[1]
    assert (tea.net_minor, tea.tax_minor) == (1286, 64)  # 1350 / 1.05 = 1285.71
    assert draft.lines_add_up()
    assert draft.totals.gross_minor == 3998 + 1350 + 899 + 250 + 1000 + 395
    # Only the customer reference and the country travel.
    assert draft.customer.model_dump() == {"ref": "cust-42", "country": "GB"}
    assert "jane" not in draft.model_dump_json().lower()


def test_discounted_line_becomes_list_price_plus_discount_line() -> None:
    order = make_order([("MUG-WHT", 2, 1200, "0.2")], discounts={0: 900}, shipping=None)
    draft = to_sales_order(order, MAPPING)
    item, discount = draft.lines
    assert (item.kind, item.gross_minor, item.unit_price_minor) == ("item", 2400, 1200)
    assert (discount.kind, discount.gross_minor, discount.item_no) == ("discount", -600, "DISCOUNT")
    assert item.net_minor + discount.net_minor == 1500  # charged 1800 gross incl. 20 %
    assert item.tax_minor + discount.tax_minor == 300
    assert draft.lines_add_up()


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("GBP", 2), ("KWD", 3)])
def test_order_level_discount_is_split_per_rate_and_the_lines_add_up(
    currency: str, digits: int
) -> None:
    order = make_order(
        [
            ("TSHIRT-BLK-M", 2, 1999, "0.2"),
            ("TEA-EARLGREY", 3, 450, "0.05"),
            ("BOOK-1", 1, 899, "0"),
        ],
        shipping=(395, "0.2"),
        currency=currency,
        digits=digits,
        total_discount=1000,
    )
    draft = to_sales_order(order, MAPPING)
    assert draft.lines_add_up()
    discounts = [line for line in draft.lines if line.kind == "discount"]
    assert sum(line.gross_minor for line in discounts) == -1000
    assert {line.tax_code for line in discounts} == {"S", "R", "Z"}
    portions = {
        str(p.rate.normalize()): p.amount.cent_amount for p in order.taxed_price.tax_portions
    }
    for code, rate in (("S", "0.2"), ("R", "0.05"), ("Z", "0")):
        assert (
            sum(line.tax_minor for line in draft.lines if line.tax_code == code) == portions[rate]
        )
    for line in draft.lines:
        assert line.unit_price_minor * line.quantity == line.gross_minor  # tax-inclusive prices


def test_inconsistent_order_discount_is_a_clear_validation_error() -> None:
    order = make_order([("MUG-WHT", 2, 1200, "0.2")], shipping=None, total_discount=300)
    broken = order.model_copy(
        update={
            "discount_on_total_price": {
                **(order.discount_on_total_price or {}),
                "discountedNetAmount": {"centAmount": 1, "currencyCode": "GBP"},
            }
        }
    )
    with pytest.raises(MappingError, match="discountedNetAmount is 1"):
        to_sales_order(broken, MAPPING)


def test_discounted_shipping_keeps_unit_price_times_quantity() -> None:
    order = make_order([("MUG-WHT", 1, 1200, "0.2")], shipping=(0, "0.2"))
    data = order.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["shippingInfo"]["price"]["centAmount"] = 495  # the rate before free shipping
    order = type(order).model_validate(data)
    draft = to_sales_order(order, MAPPING)
    shipping, discount = draft.lines[1], draft.lines[2]
    assert (shipping.kind, shipping.unit_price_minor, shipping.gross_minor) == (
        "shipping",
        495,
        495,
    )
    assert (discount.kind, discount.gross_minor, discount.unit_price_minor) == (
        "discount",
        -495,
        -495,
    )
    assert draft.lines_add_up()


@pytest.mark.parametrize(
    ("currency", "digits", "unit"), [("JPY", 0, 1980), ("GBP", 2, 1999), ("KWD", 3, 12345)]
)
def test_currencies_with_zero_two_and_three_fraction_digits(
    currency: str, digits: int, unit: int
) -> None:
    order = make_order(
        [("MUG-WHT", 3, unit, "0.2")],
        currency=currency,
        digits=digits,
        shipping=(unit // 10, "0.2"),
    )
    draft = to_sales_order(order, MAPPING)
    assert draft.currency == currency and draft.fraction_digits == digits
    assert draft.lines[0].gross_minor == unit * 3
    assert draft.lines_add_up()


def test_high_precision_unit_price_rounds_half_even_to_minor_units() -> None:
    # 0.12345 GBP a unit (preciseAmount 12345 at 5 digits) -> 12 pence (half-even on 12.345)
    order = make_order(
        [("TEA-EARLGREY", 100, 12, "0.05")], high_precision_unit={0: (12345, 5)}, shipping=None
    )
    draft = to_sales_order(order, MAPPING)
    assert draft.lines[0].unit_price_minor == 12
    order = make_order(
        [("TEA-EARLGREY", 100, 12, "0.05")], high_precision_unit={0: (12355, 5)}, shipping=None
    )
    # 0.12355 GBP -> 12.355 pence -> 12 pence (half-even rounds on the first dropped digit, 3 < 5)
    assert to_sales_order(order, MAPPING).lines[0].unit_price_minor == 12
    order = make_order(
        [("TEA-EARLGREY", 100, 12, "0.05")], high_precision_unit={0: (12500, 5)}, shipping=None
    )
    assert to_sales_order(order, MAPPING).lines[0].unit_price_minor == 12  # 12.5p -> 12 (even)
    order = make_order(
        [("TEA-EARLGREY", 100, 14, "0.05")], high_precision_unit={0: (13500, 5)}, shipping=None
    )
    assert to_sales_order(order, MAPPING).lines[0].unit_price_minor == 14  # 13.5p -> 14 (even)


def test_unknown_sku_missing_sku_and_long_item_numbers_are_clear_errors() -> None:
    with pytest.raises(MappingError, match="SKU NOPE-1 is not an ERP item") as unknown:
        to_sales_order(make_order([("NOPE-1", 1, 100, "0.2")]), MAPPING)
    assert unknown.value.category == "unknown_sku" and unknown.value.sku == "NOPE-1"
    with pytest.raises(MappingError, match="has no SKU"):
        to_sales_order(make_order([(None, 1, 100, "0.2")]), MAPPING)
    long_items = SalesOrderMapping(item_numbers={"MUG-WHT": "X" * 21})
    with pytest.raises(MappingError, match="longer than 20 characters") as too_long:
        to_sales_order(make_order([("MUG-WHT", 1, 100, "0.2")]), long_items)
    assert too_long.value.category == "validation"


def test_unknown_tax_rate_is_a_mapping_error_naming_the_rate() -> None:
    with pytest.raises(MappingError, match=r"no ERP tax code for tax rate 0.175") as error:
        to_sales_order(make_order([("MUG-WHT", 1, 100, "0.175")]), MAPPING)
    assert error.value.category == "unknown_tax_code"
    table = TaxCodeTable(by_rate={Decimal("0.175"): "OLD"})
    draft = to_sales_order(
        make_order([("MUG-WHT", 1, 100, "0.175")], shipping=None), SalesOrderMapping(ITEMS, table)
    )
    assert draft.lines[0].tax_code == "OLD"


def test_order_without_order_number_uses_its_id() -> None:
    order = make_order([("MUG-WHT", 1, 100, "0.2")], order_number=None)
    document = to_sales_order(order, MAPPING).external_document_number
    # A UUID is 36 characters, the ERP takes 35: the id travels without hyphens, reversibly.
    assert document == order.id.replace("-", "")
    assert order_id_from_document_number(document) == order.id
    assert order_id_from_document_number("UK-1001") is None
