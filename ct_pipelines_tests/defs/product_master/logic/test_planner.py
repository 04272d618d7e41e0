from __future__ import annotations

import copy
from typing import Any

import pytest

from ct_pipelines.defs.product_master.logic.master import build_catalog
from ct_pipelines.defs.product_master.logic.planner import (
    Baseline,
    ProductOptions,
    master_values,
    next_baseline,
    plan_sync,
)
from ct_pipelines.erp.port import ErpItem, ErpPrice
from ct_pipelines_tests.defs.product_master.logic.factories import (
    catalog,
    ct_money,
    ct_price,
    ct_product,
    ct_variant,
    gbp,
    item,
    sweets_item,
    tshirt_doc,
    tshirt_items,
)

NEVER_SENT = {"removeVariant", "deleteProduct", "setSku"}


def baseline_for(items: list[ErpItem], policy: ProductOptions | None = None) -> Baseline:
    """The baseline a sync of these items would have left behind."""
    return next_baseline(None, build_catalog(items), policy or ProductOptions())


def actions_of(plan) -> list[dict[str, Any]]:
    return [a for p in plan.plans for a in p.actions]


def test_products_in_step_need_no_request() -> None:
    plan = plan_sync(build_catalog(tshirt_items()), catalog(tshirt_doc()))
    assert plan.requests == 0
    assert actions_of(plan) == []
    assert plan.issues == []


def test_in_step_with_a_baseline_also_needs_no_request() -> None:
    items = tshirt_items()
    plan = plan_sync(build_catalog(items), catalog(tshirt_doc()), baseline=baseline_for(items))
    assert plan.requests == 0


def test_a_master_price_change_is_one_request_with_change_price_then_publish() -> None:
    items = tshirt_items()
    baseline = baseline_for(items)
    changed = [items[0].model_copy(update={"prices": [gbp(2750), items[0].prices[1]]}), items[1]]

    plan = plan_sync(build_catalog(changed), catalog(tshirt_doc()), baseline=baseline)

    assert plan.requests == 1
    assert plan.update_requests == 1
    (update,) = plan.updates
    assert update.product_id == "p-tsh" and update.version == 3
    assert update.actions == [
        {
            "action": "changePrice",
            "priceId": "pr-1",
            "price": {
                "value": {
                    "type": "centPrecision",
                    "currencyCode": "GBP",
                    "centAmount": 2750,
                    "fractionDigits": 2,
                },
                "country": "GB",
            },
            "staged": True,
        },
        {"action": "publish"},
    ]
    (change,) = update.changes
    assert (change.kind, change.field, change.master, change.commercetools) == (
        "syndicate",
        "price:GBP/GB/*",
        "GBP 27.5",
        "GBP 25",
    )


def test_without_publish_the_change_stays_staged_and_is_not_repeated() -> None:
    items = tshirt_items()
    changed = [items[0].model_copy(update={"prices": [gbp(2750), items[0].prices[1]]}), items[1]]
    policy = ProductOptions(publish=False)
    plan = plan_sync(build_catalog(changed), catalog(tshirt_doc()), policy)
    assert [a["action"] for a in actions_of(plan)] == ["changePrice"]

    # The same product after that update: staged holds the new price, current the old one.
    doc = tshirt_doc()
    doc["masterData"]["staged"]["masterVariant"]["prices"][0]["value"] = ct_money(2750)
    doc["masterData"]["hasStagedChanges"] = True
    assert plan_sync(build_catalog(changed), catalog(doc), policy).requests == 0
    # Switching publishing on later publishes what is waiting, and nothing else.
    assert actions_of(plan_sync(build_catalog(changed), catalog(doc))) == [{"action": "publish"}]


@pytest.mark.parametrize("policy", ["revert", "report"])
def test_an_edit_in_commercetools_is_drift_reverted_or_reported(policy: str) -> None:
    items = tshirt_items()
    baseline = baseline_for(items)
    doc = tshirt_doc()
    for view in ("current", "staged"):  # edited and published in the Merchant Center
        doc["masterData"][view]["variants"][0]["prices"][0]["value"] = ct_money(1999)

    plan = plan_sync(build_catalog(items), catalog(doc), ProductOptions(drift=policy), baseline)

    (drift,) = [c for c in plan.changes() if c.kind == "drift"]
    assert (drift.entity, drift.field, drift.master, drift.commercetools) == (
        "sku:TSH-WHT-M",
        "price:GBP/GB/*",
        "GBP 25",
        "GBP 19.99",
    )
    if policy == "revert":
        assert drift.applied
        assert [a["action"] for a in actions_of(plan)] == ["changePrice", "publish"]
        assert actions_of(plan)[0]["priceId"] == "pr-3"
        assert actions_of(plan)[0]["price"]["value"]["centAmount"] == 2500
        assert plan.drift_counts() == {"detected": 1, "reverted": 1, "reported": 0}
    else:
        assert not drift.applied
        assert plan.requests == 0
        assert plan.drift_counts() == {"detected": 1, "reverted": 0, "reported": 1}


def test_without_a_baseline_a_difference_is_syndication_not_drift() -> None:
    doc = tshirt_doc()
    doc["masterData"]["staged"]["variants"][0]["prices"][0]["value"] = ct_money(1999)
    doc["masterData"]["hasStagedChanges"] = True
    plan = plan_sync(build_catalog(tshirt_items()), catalog(doc), ProductOptions(drift="report"))
    assert [c.kind for c in plan.changes()] == ["syndicate"]
    assert [a["action"] for a in actions_of(plan)] == ["changePrice", "publish"]


def test_a_master_change_wins_over_an_edit_of_the_same_field() -> None:
    items = tshirt_items()
    baseline = baseline_for(items)
    doc = tshirt_doc()
    for view in ("current", "staged"):
        doc["masterData"][view]["masterVariant"]["prices"][0]["value"] = ct_money(1999)
    changed = [items[0].model_copy(update={"prices": [gbp(2750), items[0].prices[1]]}), items[1]]
    plan = plan_sync(build_catalog(changed), catalog(doc), ProductOptions(drift="report"), baseline)
    (change,) = plan.changes()
    assert change.kind == "syndicate" and change.applied
    assert actions_of(plan)[0]["price"]["value"]["centAmount"] == 2750


def test_reported_edit_waiting_in_staged_is_not_published_with_the_master_change() -> None:
    items = tshirt_items()
    baseline = baseline_for(items)
    doc = tshirt_doc()
    # Someone staged a name change (not published); the master changes a price meanwhile.
    doc["masterData"]["staged"]["name"] = {"en-GB": "Cheap T-Shirt"}
    doc["masterData"]["hasStagedChanges"] = True
    changed = [items[0].model_copy(update={"prices": [gbp(2750), items[0].prices[1]]}), items[1]]

    plan = plan_sync(build_catalog(changed), catalog(doc), ProductOptions(drift="report"), baseline)

    assert actions_of(plan) == [
        {
            "action": "changePrice",
            "priceId": "pr-1",
            "price": {"value": ct_money(2750), "country": "GB"},
            "staged": False,
        }
    ]
    assert [i.kind for i in plan.issues] == ["applied_without_publish"]
    assert plan.drift_counts()["reported"] == 1


def test_name_attribute_and_tax_changes_use_their_own_actions() -> None:
    items = tshirt_items()
    baseline = baseline_for(items)
    changed = [
        item.model_copy(
            update={
                "name": item.name.replace("Organic Cotton", "Fairtrade").replace("White", "Ivory"),
                "attributes": {**item.attributes, "colour": "Ivory"},
                "tax_code": "R",
            }
        )
        for item in items
    ]
    doc = tshirt_doc()
    doc["masterData"]["staged"]["name"]["de-DE"] = "Bio-T-Shirt"

    plan = plan_sync(build_catalog(changed), catalog(doc), baseline=baseline)

    assert actions_of(plan) == [
        {"action": "setTaxCategory", "taxCategory": {"typeId": "tax-category", "id": "tc-red"}},
        {
            "action": "changeName",
            # Locales the master does not own are kept.
            "name": {"en-GB": "Fairtrade T-Shirt", "de-DE": "Bio-T-Shirt"},
            "staged": True,
        },
        # Variants in the master's (SKU) order: TSH-WHT-M is variant 2.
        {
            "action": "setAttribute",
            "variantId": 2,
            "name": "colour",
            "value": "Ivory",
            "staged": True,
        },
        {
            "action": "setAttribute",
            "variantId": 1,
            "name": "colour",
            "value": "Ivory",
            "staged": True,
        },
        {"action": "publish"},
    ]


def test_new_variant_new_product_and_new_price() -> None:
    items = tshirt_items()
    added = item(
        "TSH-WHT-L",
        product="tsh",
        name="Organic Cotton T-Shirt, White, L",
        attributes={"colour": "White", "size": "L"},
        prices=[gbp(2500)],
    )
    mug = item("MUG-1", name="Stoneware Mug", prices=[gbp(1200)], tax_code="S")
    store_price = gbp(2400).model_copy(update={"channel_key": "store-london"})
    first = items[0].model_copy(update={"prices": [*items[0].prices, store_price]})

    plan = plan_sync(build_catalog([first, items[1], added, mug]), catalog(tshirt_doc()))

    assert plan.requests == 2
    (create,) = plan.creates
    assert create.draft == {
        "key": "MUG-1",
        "productType": {"typeId": "product-type", "id": "pt-1"},
        "name": {"en-GB": "Stoneware Mug"},
        "slug": {"en-GB": "stoneware-mug-mug-1"},
        "masterVariant": {
            "sku": "MUG-1",
            "prices": [{"value": ct_money(1200), "country": "GB"}],
            "attributes": [],
        },
        "variants": [],
        "publish": True,
        "taxCategory": {"typeId": "tax-category", "id": "tc-std"},
    }
    (update,) = plan.updates
    assert update.actions == [
        {
            "action": "addVariant",
            "sku": "TSH-WHT-L",
            "prices": [{"value": ct_money(2500), "country": "GB"}],
            "attributes": [{"name": "colour", "value": "White"}, {"name": "size", "value": "L"}],
            "staged": True,
        },
        {
            "action": "addPrice",
            "variantId": 1,
            "price": {
                "value": ct_money(2400),
                "country": "GB",
                "channel": {"typeId": "channel", "id": "ch-store"},
            },
            "staged": True,
        },
        {"action": "publish"},
    ]


def test_high_precision_prices_round_trip_without_updates() -> None:
    doc = ct_product(
        "p-swt",
        "SWT",
        "Pick & Mix Sweets (per 100 g)",
        [
            ct_variant(
                1,
                "SWT",
                [
                    ct_price(
                        "pr-s",
                        {
                            "type": "highPrecision",
                            "currencyCode": "GBP",
                            "centAmount": 125,
                            "preciseAmount": 12495,
                            "fractionDigits": 4,
                        },
                    )
                ],
            )
        ],
    )
    assert plan_sync(build_catalog([sweets_item()]), catalog(doc)).requests == 0

    plan = plan_sync(build_catalog([sweets_item("1.24951", 125)]), catalog(doc))
    (action, _publish) = actions_of(plan)
    assert action["action"] == "changePrice"
    assert action["price"]["value"] == {
        "type": "highPrecision",
        "currencyCode": "GBP",
        "fractionDigits": 5,
        "preciseAmount": 124951,
        "centAmount": 125,
    }


def test_a_precise_amount_that_fits_the_currency_is_a_cent_price() -> None:
    master = build_catalog([sweets_item("1.2500", 125)])
    (price,) = master.products[0].variants[0].prices
    assert price.money_draft() == ct_money(125) | {"type": "centPrecision"}
    assert price.precise is None


def test_extra_commercetools_price_is_removed_by_the_master_or_reported_as_drift() -> None:
    items = tshirt_items()
    doc = tshirt_doc()
    extra = ct_price("pr-x", ct_money(999), country=None, channel="ch-web")
    for view in ("current", "staged"):
        doc["masterData"][view]["masterVariant"]["prices"].append(copy.deepcopy(extra))

    first = plan_sync(build_catalog(items), catalog(doc))
    assert actions_of(first) == [
        {"action": "removePrice", "priceId": "pr-x", "staged": True},
        {"action": "publish"},
    ]
    reported = plan_sync(
        build_catalog(items), catalog(doc), ProductOptions(drift="report"), baseline_for(items)
    )
    assert reported.requests == 0
    (drift,) = reported.changes()
    assert (drift.kind, drift.field, drift.master) == ("drift", "price:GBP/*/web-uk", None)


def test_deactivated_product_is_unpublished_never_deleted() -> None:
    items = [i.model_copy(update={"active": False}) for i in tshirt_items()]
    plan = plan_sync(build_catalog(items), catalog(tshirt_doc()))
    assert actions_of(plan) == [{"action": "unpublish"}]

    already = tshirt_doc()
    already["masterData"]["published"] = False
    assert plan_sync(build_catalog(items), catalog(already)).requests == 0


def test_deactivated_product_is_flagged_when_the_policy_says_flag() -> None:
    items = [i.model_copy(update={"active": False}) for i in tshirt_items()]
    policy = ProductOptions(deactivation="flag")
    plan = plan_sync(build_catalog(items), catalog(tshirt_doc()), policy)
    assert actions_of(plan) == [
        {
            "action": "setAttribute",
            "variantId": 2,
            "name": "discontinued",
            "value": True,
            "staged": True,
        },
        {
            "action": "setAttribute",
            "variantId": 1,
            "name": "discontinued",
            "value": True,
            "staged": True,
        },
        {"action": "publish"},
    ]
    assert not {a["action"] for a in actions_of(plan)} & NEVER_SENT


def test_one_deactivated_variant_of_a_live_product_is_flagged_and_reactivation_clears_it() -> None:
    items = tshirt_items()
    items[1] = items[1].model_copy(update={"active": False})
    plan = plan_sync(build_catalog(items), catalog(tshirt_doc()))
    assert [(a["action"], a.get("variantId"), a.get("value")) for a in actions_of(plan)] == [
        ("setAttribute", 2, True),
        ("publish", None, None),
    ]
    flagged = tshirt_doc()
    for view in ("current", "staged"):
        flagged["masterData"][view]["variants"][0]["attributes"].append(
            {"name": "discontinued", "value": True}
        )
    again = plan_sync(build_catalog(tshirt_items()), catalog(flagged))
    assert [(a["action"], a.get("value")) for a in actions_of(again)] == [
        ("setAttribute", False),
        ("publish", None),
    ]


def test_inactive_items_are_not_created() -> None:
    mug = item("MUG-1", name="Stoneware Mug", active=False)
    assert plan_sync(build_catalog([mug]), catalog()).requests == 0


def test_reactivated_product_is_published_again_but_an_unpublish_in_commercetools_is_drift() -> (
    None
):
    items = tshirt_items()
    doc = tshirt_doc()
    doc["masterData"]["published"] = False
    inactive = [i.model_copy(update={"active": False}) for i in items]

    # The master deactivated it last time and now reactivates it: publish.
    plan = plan_sync(build_catalog(items), catalog(doc), baseline=baseline_for(inactive))
    assert actions_of(plan) == [{"action": "publish"}]
    # The master kept it active: someone unpublished it in commercetools.
    reported = plan_sync(
        build_catalog(items), catalog(doc), ProductOptions(drift="report"), baseline_for(items)
    )
    assert reported.requests == 0
    assert [(c.kind, c.field) for c in reported.changes()] == [("drift", "published")]


def test_a_variant_deleted_in_commercetools_is_drift() -> None:
    items = tshirt_items()
    doc = tshirt_doc()
    for view in ("current", "staged"):
        doc["masterData"][view]["variants"] = []
    plan = plan_sync(
        build_catalog(items), catalog(doc), ProductOptions(drift="report"), baseline_for(items)
    )
    assert [(c.kind, c.entity, c.field) for c in plan.changes()] == [
        ("drift", "sku:TSH-WHT-M", "exists")
    ]
    assert plan.requests == 0
    reverted = plan_sync(build_catalog(items), catalog(doc), baseline=baseline_for(items))
    assert [a["action"] for a in actions_of(reverted)] == ["addVariant", "publish"]


def test_sku_of_another_product_is_an_issue_not_an_action() -> None:
    other = ct_product("p-x", "other", "Other", [ct_variant(1, "TSH-WHT-M", [])])
    doc = tshirt_doc()
    for view in ("current", "staged"):
        doc["masterData"][view]["variants"] = []
    plan = plan_sync(build_catalog(tshirt_items()), catalog(doc, other))
    assert plan.requests == 0
    (issue,) = plan.issues
    assert issue.kind == "sku_in_other_product"


def test_products_without_key_are_found_by_sku() -> None:
    doc = tshirt_doc()
    doc.pop("key")
    plan = plan_sync(build_catalog(tshirt_items()), catalog(doc))
    assert plan.requests == 0 and plan.creates == []


def test_unknown_tax_code_and_channel_are_issues() -> None:
    odd = item(
        "ODD-1", tax_code="X", prices=[gbp(100).model_copy(update={"channel_key": "nowhere"})]
    )
    plan = plan_sync(build_catalog([odd]), catalog(), ProductOptions(product_type_key="goods"))
    kinds = sorted(i.kind for i in plan.issues)
    assert kinds == ["unknown_channel", "unknown_tax_code", "unresolved_tax_category"]
    (create,) = plan.creates
    assert "taxCategory" not in create.draft
    assert create.draft["publish"] is False  # never on sale without a tax category
    assert create.draft["masterVariant"]["prices"] == []


def test_more_than_500_actions_count_as_several_requests() -> None:
    sizes = [f"S{n}" for n in range(260)]
    items = [
        item(f"BIG-{s}", product="big", name=f"Big, {s}", attributes={"size": s}) for s in sizes
    ]
    docs = ct_product(
        "p-big",
        "big",
        "Big",
        [
            ct_variant(n + 1, f"BIG-{s}", [ct_price(f"p{n}", ct_money(1000))], {"size": s})
            for n, s in enumerate(sizes)
        ],
    )
    items = [
        i.model_copy(
            update={
                "name": i.name + "x",
                "prices": [gbp(1999)],
                "attributes": {**i.attributes, "size": i.attributes["size"] + "x"},
            }
        )
        for i in items
    ]
    plan = plan_sync(build_catalog(items), catalog(docs))
    assert len(actions_of(plan)) == 521
    assert plan.requests == 2


def test_next_baseline_keeps_the_old_values_of_failed_products() -> None:
    items = tshirt_items()
    old = baseline_for(items)
    changed = [i.model_copy(update={"prices": [gbp(3000)]}) for i in items]
    master = build_catalog(changed)
    kept = next_baseline(old, master, ProductOptions(), failed_products=["tsh"])
    assert kept == old
    fresh = next_baseline(old, master, ProductOptions())
    assert fresh["sku:TSH-WHT-S"]["price:GBP/GB/*"] == "GBP 30"
    assert fresh == master_values(master.products[0], ProductOptions(), master.attribute_names)


def test_eur_prices_per_country_and_channel_are_separate_scopes() -> None:
    web = ErpPrice(
        currency="EUR", amount_minor=2995, fraction_digits=2, country="IE", channel_key="web-uk"
    )
    items = tshirt_items()
    items[0] = items[0].model_copy(update={"prices": [*items[0].prices, web]})
    plan = plan_sync(build_catalog(items), catalog(tshirt_doc()))
    (action, _) = actions_of(plan)
    assert action["action"] == "addPrice"
    assert action["price"]["channel"] == {"typeId": "channel", "id": "ch-web"}


def test_attribute_misfits_name_undefined_attributes_and_enum_values() -> None:
    from ct_pipelines.defs.product_master.logic.planner import attribute_misfit

    product_type = {
        "key": "goods",
        "attributes": [
            {"name": "colour", "type": {"name": "lenum", "values": [{"key": "red"}]}},
            {
                "name": "sizes",
                "type": {"name": "set", "elementType": {"name": "enum", "values": [{"key": "S"}]}},
            },
            {"name": "note", "type": {"name": "text"}},
        ],
    }
    assert attribute_misfit(product_type, "note", "anything") is None
    assert attribute_misfit(product_type, "colour", {"key": "red"}) is None
    assert "'blue' is not among the enum values" in str(
        attribute_misfit(product_type, "colour", "blue")
    )
    assert "'M'" in str(attribute_misfit(product_type, "sizes", ["S", "M"]))
    assert "not defined by product type 'goods'" in str(
        attribute_misfit(product_type, "fabric", "silk")
    )


def test_an_unpublished_product_without_tax_category_is_not_published_by_an_update() -> None:
    docs = ct_product("p1", "odd", "ODD-1", [ct_variant(1, "ODD-1", [])], published=False)
    docs["taxCategory"] = None
    odd = item("ODD-1", product="odd", tax_code="X", prices=[])
    plan = plan_sync(build_catalog([odd]), catalog(docs))
    assert {"action": "publish"} not in actions_of(plan)
    assert "unresolved_tax_category" in {i.kind for i in plan.issues}
