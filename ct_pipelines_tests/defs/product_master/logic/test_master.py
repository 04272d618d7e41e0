from __future__ import annotations

from decimal import Decimal

import pytest

from ct_pipelines.defs.product_master.logic.master import (
    CatalogRules,
    build_catalog,
    product_key,
    product_name,
)
from ct_pipelines.defs.product_master.logic.values import attribute_text, ct_money_text
from ct_pipelines.erp.port import ErpPrice
from ct_pipelines_tests.defs.product_master.logic.factories import (
    gbp,
    item,
    sweets_item,
    tshirt_items,
)


def test_items_sharing_a_product_key_become_one_product_named_without_the_variant_label() -> None:
    master = build_catalog([item("MUG-1", name="Stoneware Mug"), *reversed(tshirt_items())])
    assert [p.key for p in master.products] == ["MUG-1", "tsh"]
    tshirt = master.products[1]
    assert tshirt.name == {"en-GB": "Organic Cotton T-Shirt"}
    assert tshirt.skus == ("TSH-WHT-M", "TSH-WHT-S")
    # Grouping and master-only attributes are not commercetools attributes.
    assert dict(tshirt.variants[0].attributes) == {"colour": "White", "size": "M"}
    assert master.attribute_names == frozenset({"colour", "size"})
    assert tshirt.tax_category_key == "standard"
    assert master.issues == []


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("Organic Cotton T-Shirt, White, S", ["White", "S"], "Organic Cotton T-Shirt"),
        ("Napkin Set (4), Linen", ["Linen"], "Napkin Set (4)"),
        ("Salt, Pepper, Mill", ["Large"], "Salt, Pepper, Mill"),
        ("White", ["White"], "White"),
    ],
)
def test_product_name(name: str, values: list[str], expected: str) -> None:
    assert product_name(name, values) == expected


def test_product_name_attribute_wins_and_tax_table_is_configurable() -> None:
    rules = CatalogRules(tax_categories={"S": "uk-standard"}, locale="en")
    master = build_catalog([item("A-1", attributes={"product_name": "Apron"})], rules)
    (product,) = master.products
    assert product.name == {"en": "Apron"}
    assert product.tax_category_key == "uk-standard"


def test_master_problems_are_issues() -> None:
    items = [
        item("A-1", product="aa", tax_code="S"),
        item("A-2", product="aa", tax_code="Z"),
        item("A-2", product="aa"),
        item("B-1", tax_code="Q"),
        item("C-1", prices=[gbp(100), gbp(200)]),
    ]
    master = build_catalog(items)
    assert sorted((i.kind, i.entity) for i in master.issues) == [
        ("duplicate_price_scope", "C-1"),
        ("duplicate_sku", "A-2"),
        ("mixed_tax_codes", "aa"),
        ("unknown_tax_code", "B-1"),
    ]
    assert master.duplicate_skus == ["A-2"]
    assert master.sku_count == 4


def test_keys_are_valid_commercetools_keys() -> None:
    assert product_key("tea eb/40") == "tea-eb-40"
    assert product_key("x") == "x-p"


def test_high_precision_master_price() -> None:
    (price,) = build_catalog([sweets_item()]).products[0].variants[0].prices
    assert price.precise == Decimal("1.2495")
    assert price.text() == "GBP 1.2495"
    assert price.money_draft()["preciseAmount"] == 12495
    zero_digit = ErpPrice(currency="JPY", amount_minor=500, fraction_digits=0)
    (yen,) = build_catalog([item("J-1", prices=[zero_digit])]).products[0].variants[0].prices
    assert yen.text() == "JPY 500"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"key": "red", "label": "Red"}, "red"),
        (1.5, "1.50"),
        (2, 2.0),
        ({"en-GB": "x", "de": "y"}, {"de": "y", "en-GB": "x"}),
    ],
)
def test_equal_attribute_values_compare_equal(left: object, right: object) -> None:
    assert attribute_text(left) == attribute_text(right)


@pytest.mark.parametrize(("left", "right"), [(True, "true"), ("S", "M"), (1, 2), ([1, 2], [2, 1])])
def test_different_attribute_values_differ(left: object, right: object) -> None:
    assert attribute_text(left) != attribute_text(right)


def test_money_text_ignores_the_precision_type_of_equal_amounts() -> None:
    high = {
        "type": "highPrecision",
        "currencyCode": "EUR",
        "centAmount": 2933,
        "preciseAmount": 293300,
        "fractionDigits": 4,
    }
    cent = {"type": "centPrecision", "currencyCode": "EUR", "centAmount": 2933, "fractionDigits": 2}
    assert ct_money_text(high) == ct_money_text(cent) == "EUR 29.33"
