"""Parsing realistic commercetools JSON, including missing optional fields and high-precision money."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from ct_pipelines.commercetools.models import (
    Channel,
    ChannelRole,
    InventoryEntry,
    Order,
    OrderState,
    PaymentState,
    Product,
    ProductProjection,
    ShipmentState,
    TaxCategory,
    TransactionState,
    TransactionType,
    TypedMoney,
)


def gbp(cents: int) -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": "GBP",
        "centAmount": cents,
        "fractionDigits": 2,
    }


TAX_20 = {
    "name": "Standard",
    "amount": 0.2,
    "includedInPrice": True,
    "country": "GB",
    "id": "rate-s",
    "subRates": [],
}

ORDER: dict[str, Any] = {
    "type": "Order",
    "id": "5b5f6d2e-4b9f-4d3c-9f0a-0c3a2e1d7b11",
    "version": 7,
    "versionModifiedAt": "2024-05-02T09:00:00.000Z",
    "lastMessageSequenceNumber": 4,
    "createdAt": "2024-05-01T10:15:30.123Z",
    "lastModifiedAt": "2024-05-02T09:00:00.000Z",
    "lastModifiedBy": {"clientId": "storefront", "isPlatformClient": False},
    "orderNumber": "UK-100042",
    "customerId": "c-1",
    "customerEmail": "someone@example.com",
    "totalPrice": gbp(4798),
    "taxedPrice": {
        "totalNet": gbp(3998),
        "totalGross": gbp(4798),
        "taxPortions": [{"rate": 0.2, "amount": gbp(800), "name": "Standard"}],
        "totalTax": gbp(800),
    },
    "country": "GB",
    "orderState": "Confirmed",
    "shipmentState": "Partial",
    "paymentState": "Paid",
    "taxMode": "Platform",
    "taxRoundingMode": "HalfEven",
    "taxCalculationMode": "LineItemLevel",
    "inventoryMode": "None",
    "origin": "Customer",
    "store": {"typeId": "store", "key": "uk-web"},
    "shippingAddress": {"country": "GB", "firstName": "Ada", "streetName": "Somewhere"},
    "billingAddress": {"country": "GB"},
    "lineItems": [
        {
            "id": "li-1",
            "productId": "p-1",
            "productKey": "tee",
            "name": {"en-GB": "Tee"},
            "productType": {"typeId": "product-type", "id": "pt-1"},
            "variant": {
                "id": 1,
                "sku": "TEE-BLK-M",
                "prices": [],
                "attributes": [{"name": "size", "value": "M"}],
                "images": [],
            },
            "price": {"id": "price-1", "value": gbp(1999)},
            "quantity": 2,
            "discountedPricePerQuantity": [],
            "supplyChannel": {"typeId": "channel", "id": "ch-wh"},
            "taxRate": TAX_20,
            "perMethodTaxRate": [],
            "state": [{"quantity": 2, "state": {"typeId": "state", "id": "st-initial"}}],
            "priceMode": "Platform",
            "lineItemMode": "Standard",
            "totalPrice": gbp(3998),
            "taxedPrice": {"totalNet": gbp(3332), "totalGross": gbp(3998), "totalTax": gbp(666)},
        },
        {
            # A variant without SKU: allowed by the API.
            "id": "li-2",
            "productId": "p-2",
            "name": {"en-GB": "Sticker"},
            "variant": {"id": 3},
            "price": {"id": "price-2", "value": gbp(0)},
            "quantity": 1,
            "totalPrice": gbp(0),
            "state": [],
        },
    ],
    "customLineItems": [
        {
            "id": "cli-1",
            "name": {"en-GB": "Gift wrap"},
            "money": gbp(400),
            "slug": "gift-wrap",
            "quantity": 2,
            "totalPrice": gbp(800),
            "taxCategory": {"typeId": "tax-category", "id": "tc-std"},
            "taxRate": TAX_20,
            "state": [],
            "discountedPricePerQuantity": [],
        }
    ],
    "shippingInfo": {
        "shippingMethodName": "Royal Mail 48",
        "price": gbp(0),
        "shippingRate": {"price": gbp(399), "freeAbove": gbp(3000), "tiers": []},
        "taxRate": TAX_20,
        "taxCategory": {"typeId": "tax-category", "id": "tc-std"},
        "deliveries": [
            {
                "id": "del-1",
                "createdAt": "2024-05-02T08:00:00.000Z",
                "items": [{"id": "li-1", "quantity": 1}],
                "parcels": [
                    {
                        "id": "par-1",
                        "createdAt": "2024-05-02T08:01:00.000Z",
                        "trackingData": {
                            "trackingId": "RM123456785GB",
                            "carrier": "Royal Mail",
                            "isReturn": False,
                        },
                        "items": [{"id": "li-1", "quantity": 1}],
                    }
                ],
            }
        ],
        "shippingMethodState": "MatchesCart",
    },
    "paymentInfo": {
        "payments": [
            {
                "typeId": "payment",
                "id": "pay-1",
                "obj": {
                    "id": "pay-1",
                    "version": 3,
                    "createdAt": "2024-05-01T10:15:00.000Z",
                    "lastModifiedAt": "2024-05-01T10:16:00.000Z",
                    "amountPlanned": gbp(4798),
                    "paymentMethodInfo": {"paymentInterface": "stripe", "method": "card"},
                    "paymentStatus": {"interfaceCode": "succeeded"},
                    "transactions": [
                        {
                            "id": "tx-1",
                            "timestamp": "2024-05-01T10:15:10.000Z",
                            "type": "Authorization",
                            "amount": gbp(4798),
                            "state": "Success",
                        },
                        {"id": "tx-2", "type": "Charge", "amount": gbp(4798), "state": "Success"},
                        {
                            "id": "tx-3",
                            "type": "Chargeback",
                            "amount": gbp(1000),
                            "state": "Pending",
                        },
                    ],
                    "interfaceInteractions": [],
                },
            }
        ]
    },
    "syncInfo": [
        {
            "channel": {"typeId": "channel", "id": "ch-erp"},
            "externalId": "SO-1",
            "syncedAt": "2024-05-01T11:00:00.000Z",
        }
    ],
    "refusedGifts": [],
    "itemShippingAddresses": [],
}


def test_full_order_parses() -> None:
    order = Order.model_validate(ORDER)
    assert order.order_number == "UK-100042"
    assert order.order_state is OrderState.CONFIRMED
    assert order.shipment_state is ShipmentState.PARTIAL
    assert order.payment_state is PaymentState.PAID
    assert order.created_at.isoformat() == "2024-05-01T10:15:30.123000+00:00"
    assert order.taxed_price is not None and order.taxed_price.total_tax is not None
    assert order.taxed_price.total_tax.minor_units() == 800
    assert order.taxed_price.tax_portions[0].rate == Decimal("0.2")
    assert [li.sku for li in order.line_items] == ["TEE-BLK-M", None]
    assert order.line_items[0].tax_rate is not None and order.line_items[
        0
    ].tax_rate.amount == Decimal("0.2")
    assert order.line_items[0].variant.attribute("size") == "M"
    assert order.custom_line_items[0].slug == "gift-wrap"
    assert not hasattr(order.custom_line_items[0], "sku")
    assert order.custom_line_items[0].money.minor_units() == 400
    parcel = order.shipping_info.deliveries[0].parcels[0]  # type: ignore[union-attr]
    assert parcel.tracking_data is not None and parcel.tracking_data.tracking_id == "RM123456785GB"
    (payment,) = order.payments
    assert [(t.type, t.state) for t in payment.transactions] == [
        (TransactionType.AUTHORIZATION, TransactionState.SUCCESS),
        (TransactionType.CHARGE, TransactionState.SUCCESS),
        (TransactionType.CHARGEBACK, TransactionState.PENDING),
    ]
    assert order.store is not None and order.store.key == "uk-web"
    assert order.sync_info[0].external_id == "SO-1"
    assert order.shipping_address is not None and order.shipping_address.country == "GB"


def test_unknown_fields_are_kept_not_rejected() -> None:
    doc = {**ORDER, "aBrandNewField": {"x": 1}}
    order = Order.model_validate(doc)
    assert order.model_extra is not None and order.model_extra["aBrandNewField"] == {"x": 1}
    # Round trip keeps the camelCase wire names.
    dumped = order.model_dump(mode="json", exclude_none=True)
    assert dumped["orderNumber"] == "UK-100042"
    assert dumped["aBrandNewField"] == {"x": 1}


def test_minimal_order_with_every_optional_field_missing() -> None:
    minimal = {
        "id": "o-min",
        "version": 1,
        "createdAt": "2024-05-01T00:00:00Z",
        "lastModifiedAt": "2024-05-01T00:00:00Z",
        "totalPrice": gbp(100),
        "orderState": "Open",
    }
    order = Order.model_validate(minimal)
    assert order.order_number is None
    assert order.shipment_state is None
    assert order.payment_state is None
    assert order.taxed_price is None
    assert order.shipping_info is None
    assert order.payment_info is None
    assert order.payments == []
    assert order.line_items == [] and order.custom_line_items == []


def test_unexpanded_payment_reference_has_no_obj() -> None:
    doc = copy.deepcopy(ORDER)
    doc["paymentInfo"] = {"payments": [{"typeId": "payment", "id": "pay-1"}]}
    order = Order.model_validate(doc)
    assert order.payment_info is not None and order.payment_info.payments[0].obj is None
    assert order.payments == []


def test_cancelled_order_state_and_canceled_shipment_state_are_spelled_as_the_api_does() -> None:
    doc = {**ORDER, "orderState": "Cancelled", "shipmentState": "Canceled"}
    order = Order.model_validate(doc)
    assert order.order_state is OrderState.CANCELLED
    assert order.shipment_state is ShipmentState.CANCELED
    with pytest.raises(ValidationError):
        Order.model_validate({**ORDER, "orderState": "Canceled"})
    with pytest.raises(ValidationError):
        Order.model_validate({**ORDER, "shipmentState": "Cancelled"})


def test_line_item_without_variant_sku_and_without_tax() -> None:
    doc = copy.deepcopy(ORDER)
    doc.pop("taxedPrice")
    doc["lineItems"][0].pop("taxRate")
    doc["lineItems"][0].pop("taxedPrice")
    doc["lineItems"][0]["variant"].pop("sku")
    order = Order.model_validate(doc)
    assert order.line_items[0].sku is None
    assert order.line_items[0].tax_rate is None
    assert order.taxed_price is None


# --- money -------------------------------------------------------------------------------------


def test_cent_precision_money() -> None:
    money = TypedMoney.model_validate(gbp(1999))
    assert money.to_decimal() == Decimal("19.99")
    assert money.minor_units() == 1999


def test_zero_and_three_digit_currencies() -> None:
    yen = TypedMoney.model_validate(
        {"type": "centPrecision", "currencyCode": "JPY", "centAmount": 5, "fractionDigits": 0}
    )
    assert yen.to_decimal() == Decimal(5) and yen.minor_units() == 5
    dinar = TypedMoney.model_validate(
        {"type": "centPrecision", "currencyCode": "KWD", "centAmount": 1234, "fractionDigits": 3}
    )
    assert dinar.to_decimal() == Decimal("1.234")


def test_money_draft_without_fraction_digits_gets_the_currency_default() -> None:
    assert TypedMoney.model_validate({"currencyCode": "GBP", "centAmount": 5}).fraction_digits == 2
    assert TypedMoney.model_validate({"currencyCode": "JPY", "centAmount": 5}).fraction_digits == 0


def test_high_precision_money_from_the_api_reference() -> None:
    money = TypedMoney.model_validate(
        {
            "type": "highPrecision",
            "currencyCode": "EUR",
            "centAmount": 1,
            "preciseAmount": 123456,
            "fractionDigits": 7,
        }
    )
    assert money.to_decimal() == Decimal("0.0123456")
    assert money.minor_units() == 1


@pytest.mark.parametrize(
    ("precise", "digits", "expected_minor"),
    [
        (1005, 3, 100),  # 1.005 -> 1.00 (half to even)
        (1015, 3, 102),  # 1.015 -> 1.02
        (1025, 3, 102),  # 1.025 -> 1.02
        (10051, 4, 101),  # 1.0051 is above the half
        (-1005, 3, -100),  # refunds round the same way
        (123456789, 6, 12346),  # 123.456789 -> 123.46
    ],
)
def test_high_precision_rounds_half_even_to_minor_units(
    precise: int, digits: int, expected_minor: int
) -> None:
    money = TypedMoney.model_validate(
        # centAmount deliberately the other neighbour: the conversion must not trust it.
        {
            "type": "highPrecision",
            "currencyCode": "GBP",
            "centAmount": 0,
            "preciseAmount": precise,
            "fractionDigits": digits,
        }
    )
    assert money.minor_units() == expected_minor
    assert money.to_decimal() == Decimal(precise).scaleb(-digits)


def test_high_precision_without_precise_amount_is_rejected() -> None:
    with pytest.raises(ValidationError):
        TypedMoney.model_validate(
            {"type": "highPrecision", "currencyCode": "GBP", "centAmount": 1, "fractionDigits": 4}
        )


def test_high_precision_in_an_unknown_currency_refuses_to_guess() -> None:
    money = TypedMoney.model_validate(
        {
            "type": "highPrecision",
            "currencyCode": "XYZ",
            "centAmount": 1,
            "preciseAmount": 12345,
            "fractionDigits": 4,
        }
    )
    assert money.to_decimal() == Decimal("1.2345")
    with pytest.raises(ValueError, match="XYZ"):
        money.minor_units()


# --- catalogue, inventory, channels, tax -------------------------------------------------------

VARIANT = {
    "id": 1,
    "sku": "TEE-BLK-M",
    "key": "tee-blk-m",
    "prices": [
        {"id": "pr-1", "value": gbp(1999), "country": "GB"},
        {
            "id": "pr-2",
            "value": {
                "type": "highPrecision",
                "currencyCode": "EUR",
                "centAmount": 2299,
                "preciseAmount": 229875,
                "fractionDigits": 4,
            },
            "channel": {"typeId": "channel", "id": "ch-eu"},
        },
    ],
    "attributes": [{"name": "colour", "value": {"key": "black", "label": "Black"}}],
}


def test_product_projection_with_high_precision_price_and_variant_without_sku() -> None:
    projection = ProductProjection.model_validate(
        {
            "id": "p-1",
            "version": 12,
            "key": "tee",
            "productType": {"typeId": "product-type", "id": "pt-1"},
            "name": {"en-GB": "Tee"},
            "slug": {"en-GB": "tee"},
            "categories": [],
            "masterVariant": VARIANT,
            "variants": [{"id": 2, "prices": [], "attributes": []}],
            "taxCategory": {"typeId": "tax-category", "id": "tc-std"},
            "published": True,
            "hasStagedChanges": False,
            "createdAt": "2024-01-01T00:00:00.000Z",
            "lastModifiedAt": "2024-05-01T00:00:00.000Z",
        }
    )
    assert [v.sku for v in projection.all_variants()] == ["TEE-BLK-M", None]
    eur = projection.master_variant.prices[1].value  # type: ignore[union-attr]
    assert eur.to_decimal() == Decimal("22.9875")
    assert eur.minor_units() == 2299  # 22.9875 -> 22.99 (above the half)


def test_modular_catalog_projection_without_master_variant() -> None:
    projection = ProductProjection.model_validate(
        {
            "id": "p-2",
            "version": 1,
            "productType": {"typeId": "product-type", "id": "pt-1"},
            "createdAt": "2024-01-01T00:00:00.000Z",
            "lastModifiedAt": "2024-01-01T00:00:00.000Z",
        }
    )
    assert projection.all_variants() == []


def test_product_with_current_and_staged_data() -> None:
    staged_variant = {**VARIANT, "prices": [{"id": "pr-3", "value": gbp(1799)}]}
    product = Product.model_validate(
        {
            "id": "p-1",
            "version": 13,
            "productType": {"typeId": "product-type", "id": "pt-1"},
            "masterData": {
                "published": True,
                "hasStagedChanges": True,
                "current": {
                    "name": {"en-GB": "Tee"},
                    "slug": {"en-GB": "tee"},
                    "masterVariant": VARIANT,
                    "variants": [],
                    "categories": [],
                },
                "staged": {
                    "name": {"en-GB": "Tee"},
                    "slug": {"en-GB": "tee"},
                    "masterVariant": staged_variant,
                    "variants": [],
                    "categories": [],
                },
            },
            "taxCategory": {"typeId": "tax-category", "id": "tc-std"},
            "priceMode": "Embedded",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "lastModifiedAt": "2024-05-01T00:00:00.000Z",
        }
    )
    assert product.master_data.has_staged_changes
    assert product.master_data.current.master_variant.prices[0].value.minor_units() == 1999  # type: ignore[union-attr]
    assert product.master_data.staged.master_variant.prices[0].value.minor_units() == 1799  # type: ignore[union-attr]


def test_inventory_entry_with_and_without_supply_channel() -> None:
    entries = [
        InventoryEntry.model_validate(
            {
                "id": "inv-1",
                "version": 4,
                "sku": "TEE-BLK-M",
                "supplyChannel": {"typeId": "channel", "id": "ch-wh"},
                "quantityOnStock": 10,
                "availableQuantity": 8,
                "reservations": [],
                "createdAt": "2024-01-01T00:00:00.000Z",
                "lastModifiedAt": "2024-05-01T00:00:00.000Z",
            }
        ),
        # removeQuantity may take stock below zero.
        InventoryEntry.model_validate(
            {
                "id": "inv-2",
                "version": 1,
                "sku": "TEE-BLK-M",
                "quantityOnStock": -2,
                "availableQuantity": -2,
            }
        ),
    ]
    assert entries[0].supply_channel is not None and entries[0].supply_channel.id == "ch-wh"
    assert entries[1].supply_channel is None and entries[1].quantity_on_stock == -2


def test_channel_roles_and_tax_category_rates() -> None:
    channel = Channel.model_validate(
        {
            "id": "ch-wh",
            "version": 1,
            "key": "warehouse-leeds",
            "roles": ["InventorySupply", "Primary"],
            "name": {"en-GB": "Leeds"},
        }
    )
    assert channel.roles == [ChannelRole.INVENTORY_SUPPLY, ChannelRole.PRIMARY]
    category = TaxCategory.model_validate(
        {
            "id": "tc-std",
            "version": 2,
            "key": "standard",
            "name": "Standard",
            "rates": [
                TAX_20,
                {"name": "Reduced", "amount": 0.05, "includedInPrice": True, "country": "GB"},
            ],
        }
    )
    assert [r.amount for r in category.rates] == [Decimal("0.2"), Decimal("0.05")]
