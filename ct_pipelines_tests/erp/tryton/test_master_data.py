"""The item attributes and other-currency prices kept in a Tryton variant's description."""

from __future__ import annotations

from ct_pipelines.erp.tryton.master_data import description_text, split_description


def test_description_attributes_and_prices_round_trip() -> None:
    attributes = {"product_key": "apr", "variant": "Denim", "category": "Kitchen"}
    prices = [{"currency": "EUR", "amount_minor": 2595, "fraction_digits": 2, "country": "IE"}]
    text = description_text("Kitchen: Canvas Apron", attributes, prices)
    assert text is not None and text.splitlines()[0] == "Kitchen: Canvas Apron"
    assert split_description(text) == ("Kitchen: Canvas Apron", attributes, prices)
    assert split_description(description_text(None, {"product_key": "bk"})) == (
        None,
        {"product_key": "bk"},
        [],
    )
    assert description_text(None, {}) is None
    assert split_description(None) == (None, {}, [])


def test_a_description_typed_in_tryton_is_kept_whole() -> None:
    typed = "Hand-thrown.\nDishwasher safe"
    assert split_description(typed) == (typed, {}, [])
    assert split_description("Mug\n#master:{broken") == ("Mug\n#master:{broken", {}, [])
    assert split_description('Mug\n#master:["a", "list"]') == ('Mug\n#master:["a", "list"]', {}, [])
