"""Pydantic models of the commercetools resources the flows read.

Fields are snake_case in Python and camelCase on the wire. ``extra="allow"`` keeps fields the
API adds later (and ones we do not model) instead of failing, so a new API field never breaks
a sync. Fields the API marks optional are optional here, notably ``Order.orderNumber``,
``shipmentState``, ``paymentState``, ``taxedPrice`` and ``LineItem.variant.sku``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

LocalizedString = dict[str, str]

# ISO 4217 minor units of the currencies a UK/EU shop meets, plus the 0- and 3-digit cases.
# Needed to round high-precision amounts to the currency's minor units.
CURRENCY_FRACTION_DIGITS: dict[str, int] = {
    "GBP": 2, "EUR": 2, "USD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "HUF": 2, "RON": 2, "AUD": 2, "CAD": 2, "NZD": 2,
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0,
    "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


class CtModel(BaseModel):
    """Base for every commercetools model: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
    )


# --- enums -----------------------------------------------------------------------------------


class OrderState(StrEnum):
    OPEN = "Open"
    CONFIRMED = "Confirmed"
    COMPLETE = "Complete"
    CANCELLED = "Cancelled"  # two Ls here ...


class ShipmentState(StrEnum):
    SHIPPED = "Shipped"
    DELIVERED = "Delivered"
    READY = "Ready"
    PENDING = "Pending"
    DELAYED = "Delayed"
    PARTIAL = "Partial"
    BACKORDER = "Backorder"
    CANCELED = "Canceled"  # ... one L here: the API spells it both ways.


class PaymentState(StrEnum):
    BALANCE_DUE = "BalanceDue"
    FAILED = "Failed"
    PENDING = "Pending"
    CREDIT_OWED = "CreditOwed"
    PAID = "Paid"


class TransactionType(StrEnum):
    AUTHORIZATION = "Authorization"
    CANCEL_AUTHORIZATION = "CancelAuthorization"
    CHARGE = "Charge"
    REFUND = "Refund"
    CHARGEBACK = "Chargeback"


class TransactionState(StrEnum):
    INITIAL = "Initial"
    PENDING = "Pending"
    SUCCESS = "Success"
    FAILURE = "Failure"


class ChannelRole(StrEnum):
    INVENTORY_SUPPLY = "InventorySupply"
    PRODUCT_DISTRIBUTION = "ProductDistribution"
    ORDER_EXPORT = "OrderExport"
    ORDER_IMPORT = "OrderImport"
    PRIMARY = "Primary"


class RoundingMode(StrEnum):
    HALF_EVEN = "HalfEven"
    HALF_UP = "HalfUp"
    HALF_DOWN = "HalfDown"


class TaxMode(StrEnum):
    PLATFORM = "Platform"
    EXTERNAL = "External"
    EXTERNAL_AMOUNT = "ExternalAmount"
    DISABLED = "Disabled"


class TaxCalculationMode(StrEnum):
    LINE_ITEM_LEVEL = "LineItemLevel"
    UNIT_PRICE_LEVEL = "UnitPriceLevel"


# --- money -----------------------------------------------------------------------------------


def _money_draft(data: Any) -> Any:
    """Money drafts (``{centAmount, currencyCode}``) omit ``fractionDigits``: cent precision
    implies the currency's default. Only reached for input that is neither API money form."""
    if isinstance(data, dict) and "fractionDigits" not in data and "fraction_digits" not in data:
        currency = str(data.get("currencyCode") or data.get("currency_code") or "").upper()
        if (
            data.get("type", "centPrecision") == "centPrecision"
            and currency in CURRENCY_FRACTION_DIGITS
        ):
            return {**data, "fractionDigits": CURRENCY_FRACTION_DIGITS[currency]}
    return data


class TypedMoney(CtModel):
    """A ``CentPrecisionMoney`` or ``HighPrecisionMoney``.

    ``centAmount`` is in the currency's minor units at ``fractionDigits`` (cent precision).
    High precision adds ``preciseAmount`` in units of 10**-fractionDigits, where
    ``fractionDigits`` exceeds the currency's own digits; its ``centAmount`` is still present.

    Validation happens in pydantic's core, with no Python code per amount: a ``TypedMoney``
    field (or ``TypedMoney.model_validate``) is the union of :class:`CentPrecisionMoney` and
    :class:`HighPrecisionMoney` (which requires ``preciseAmount``), tried in that order;
    ``fractionDigits`` must not be negative. A money *draft* without ``fractionDigits`` (and
    without ``type``, or cent precision) gets the currency's default digits, the only case in
    which a Python function runs.

    Conversions never use float:

    - :meth:`to_decimal` is the exact amount (``preciseAmount`` scaled for high precision).
    - :meth:`minor_units` is an integer in the currency's minor units. For high precision it is
      ``preciseAmount`` rounded **half-even** (banker's rounding) to the currency's digits, the
      mode commercetools uses when it derives ``centAmount`` itself: 1.005 GBP -> 100 pence,
      1.015 GBP -> 102 pence. We round ourselves rather than trusting ``centAmount`` because a
      client may have supplied either neighbouring rounding in the draft.
    """

    # Built on first use: the schema names the two subclasses, defined below.
    model_config = ConfigDict(defer_build=True)

    type: Literal["centPrecision", "highPrecision"] = "centPrecision"
    currency_code: str
    cent_amount: int
    fraction_digits: Annotated[int, Field(ge=0)]
    precise_amount: int | None = None

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        if cls is not TypedMoney:
            return handler(source)
        cent = handler.generate_schema(CentPrecisionMoney)
        return core_schema.union_schema(
            [
                cent,
                handler.generate_schema(HighPrecisionMoney),
                core_schema.no_info_before_validator_function(_money_draft, cent),
            ],
            mode="left_to_right",
        )

    @property
    def currency_digits(self) -> int:
        """The currency's own fraction digits (its minor units)."""
        if self.type == "centPrecision":
            return self.fraction_digits
        try:
            return CURRENCY_FRACTION_DIGITS[self.currency_code.upper()]
        except KeyError:
            raise ValueError(
                f"fraction digits of {self.currency_code!r} unknown; cannot round high-precision money"
            ) from None

    def to_decimal(self) -> Decimal:
        """The exact amount in major units (1.23 for 123 pence)."""
        if self.type == "highPrecision":
            if self.precise_amount is None:
                raise ValueError("highPrecision money without preciseAmount")
            return Decimal(self.precise_amount).scaleb(-self.fraction_digits)
        return Decimal(self.cent_amount).scaleb(-self.fraction_digits)

    def minor_units(self) -> int:
        """Integer minor units of the currency; high precision rounded half-even (see class doc)."""
        if self.type == "centPrecision":
            return self.cent_amount
        digits = self.currency_digits
        rounded = self.to_decimal().quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_EVEN)
        return int(rounded.scaleb(digits))


class CentPrecisionMoney(TypedMoney):
    type: Literal["centPrecision"] = "centPrecision"


class HighPrecisionMoney(TypedMoney):
    type: Literal["highPrecision"]
    precise_amount: int


# --- references and common types ------------------------------------------------------------


class Reference(CtModel):
    """A reference to another resource; ``obj`` is present only when expanded."""

    type_id: str
    id: str
    obj: dict[str, Any] | None = None


class KeyReference(CtModel):
    type_id: str
    key: str


class CustomFields(CtModel):
    type: Reference
    fields: dict[str, Any] = Field(default_factory=dict)


class Address(CtModel):
    """Only the country is modelled: the integration passes no other personal data on."""

    country: str
    id: str | None = None
    key: str | None = None


class TaxRate(CtModel):
    """``amount`` is a fraction between 0 and 1 (0.2 for 20 %)."""

    id: str | None = None
    key: str | None = None
    name: str
    amount: Decimal
    included_in_price: bool
    country: str
    state: str | None = None
    sub_rates: list[dict[str, Any]] = Field(default_factory=list)


class TaxCategory(CtModel):
    id: str
    version: int
    key: str | None = None
    name: str
    description: str | None = None
    rates: list[TaxRate] = Field(default_factory=list)
    created_at: datetime | None = None
    last_modified_at: datetime | None = None


class TaxCategoryReference(Reference):
    obj: TaxCategory | None = None  # type: ignore[assignment]


class TaxPortion(CtModel):
    name: str | None = None
    rate: Decimal
    amount: TypedMoney


class TaxedPrice(CtModel):
    """Net, gross and tax; if ``totalTax`` is missing it is ``totalGross - totalNet``."""

    total_net: TypedMoney
    total_gross: TypedMoney
    tax_portions: list[TaxPortion] = Field(default_factory=list)
    total_tax: TypedMoney | None = None


class TaxedItemPrice(TaxedPrice):
    """A line's taxed price (same shape as the order's)."""


# --- channels, inventory ---------------------------------------------------------------------


class Channel(CtModel):
    id: str
    version: int
    key: str
    roles: list[ChannelRole] = Field(default_factory=list)
    name: LocalizedString | None = None
    description: LocalizedString | None = None
    address: Address | None = None
    custom: CustomFields | None = None
    created_at: datetime | None = None
    last_modified_at: datetime | None = None


class ChannelReference(Reference):
    obj: Channel | None = None  # type: ignore[assignment]


class InventoryEntry(CtModel):
    """Stock of one SKU, either global (no ``supplyChannel``) or in one supply channel."""

    id: str
    version: int
    key: str | None = None
    sku: str
    supply_channel: ChannelReference | None = None
    quantity_on_stock: int
    available_quantity: int
    restockable_in_days: int | None = None
    expected_delivery: datetime | None = None
    custom: CustomFields | None = None
    created_at: datetime | None = None
    last_modified_at: datetime | None = None


# --- products --------------------------------------------------------------------------------


class Price(CtModel):
    id: str | None = None
    key: str | None = None
    value: TypedMoney
    country: str | None = None
    customer_group: Reference | None = None
    channel: ChannelReference | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    discounted: dict[str, Any] | None = None
    tiers: list[dict[str, Any]] | None = None
    custom: CustomFields | None = None


class Attribute(CtModel):
    name: str
    value: Any = None


class ProductVariant(CtModel):
    """A variant; ``sku`` is optional in the API (and on order line items)."""

    id: int
    sku: str | None = None
    key: str | None = None
    prices: list[Price] = Field(default_factory=list)
    attributes: list[Attribute] = Field(default_factory=list)
    images: list[dict[str, Any]] = Field(default_factory=list)
    availability: dict[str, Any] | None = None

    def attribute(self, name: str, default: Any = None) -> Any:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute.value
        return default


class _HasVariants(CtModel):
    # Modular catalog projects omit masterVariant (variants live in the Variants API).
    master_variant: ProductVariant | None = None
    variants: list[ProductVariant] = Field(default_factory=list)

    def all_variants(self) -> list[ProductVariant]:
        return ([self.master_variant] if self.master_variant else []) + list(self.variants)


class ProductData(_HasVariants):
    name: LocalizedString = Field(default_factory=dict)
    slug: LocalizedString = Field(default_factory=dict)
    description: LocalizedString | None = None
    categories: list[Reference] = Field(default_factory=list)


class ProductCatalogData(CtModel):
    published: bool
    current: ProductData
    staged: ProductData
    has_staged_changes: bool


class Product(CtModel):
    id: str
    version: int
    key: str | None = None
    product_type: Reference
    master_data: ProductCatalogData
    tax_category: TaxCategoryReference | None = None
    price_mode: str | None = None
    created_at: datetime
    last_modified_at: datetime


class ProductProjection(_HasVariants):
    """Current (``staged=false``) or staged data of a product, flattened."""

    id: str
    version: int
    key: str | None = None
    product_type: Reference
    name: LocalizedString = Field(default_factory=dict)
    slug: LocalizedString = Field(default_factory=dict)
    description: LocalizedString | None = None
    categories: list[Reference] = Field(default_factory=list)
    tax_category: TaxCategoryReference | None = None
    published: bool | None = None
    has_staged_changes: bool | None = None
    created_at: datetime
    last_modified_at: datetime


# --- payments --------------------------------------------------------------------------------


class PaymentMethodInfo(CtModel):
    payment_interface: str | None = None
    method: str | None = None
    name: LocalizedString | None = None


class PaymentStatus(CtModel):
    interface_code: str | None = None
    interface_text: str | None = None
    state: Reference | None = None


class Transaction(CtModel):
    id: str
    timestamp: datetime | None = None
    type: TransactionType
    amount: TypedMoney
    interaction_id: str | None = None
    state: TransactionState
    interface_id: str | None = None
    custom: CustomFields | None = None


class Payment(CtModel):
    id: str
    version: int
    key: str | None = None
    customer: Reference | None = None
    interface_id: str | None = None
    amount_planned: TypedMoney
    payment_method_info: PaymentMethodInfo = Field(default_factory=PaymentMethodInfo)
    payment_status: PaymentStatus | None = None
    transactions: list[Transaction] = Field(default_factory=list)
    custom: CustomFields | None = None
    created_at: datetime
    last_modified_at: datetime


class PaymentReference(Reference):
    obj: Payment | None = None  # type: ignore[assignment]


class PaymentInfo(CtModel):
    payments: list[PaymentReference] = Field(default_factory=list)


# --- orders ----------------------------------------------------------------------------------


class ItemState(CtModel):
    quantity: int
    state: Reference


class LineItem(CtModel):
    id: str
    product_id: str
    product_key: str | None = None
    name: LocalizedString = Field(default_factory=dict)
    variant: ProductVariant
    price: Price
    quantity: int
    total_price: TypedMoney
    taxed_price: TaxedItemPrice | None = None
    tax_rate: TaxRate | None = None
    discounted_price_per_quantity: list[dict[str, Any]] = Field(default_factory=list)
    supply_channel: ChannelReference | None = None
    distribution_channel: ChannelReference | None = None
    price_mode: str | None = None
    line_item_mode: str | None = None
    state: list[ItemState] = Field(default_factory=list)
    custom: CustomFields | None = None

    @property
    def sku(self) -> str | None:
        return self.variant.sku


class CustomLineItem(CtModel):
    """A line without a product (and so without SKU): gift wrap, fees, services."""

    id: str
    key: str | None = None
    name: LocalizedString = Field(default_factory=dict)
    money: TypedMoney
    slug: str
    quantity: int
    total_price: TypedMoney
    taxed_price: TaxedItemPrice | None = None
    tax_category: TaxCategoryReference | None = None
    tax_rate: TaxRate | None = None
    discounted_price_per_quantity: list[dict[str, Any]] = Field(default_factory=list)
    price_mode: str | None = None
    state: list[ItemState] = Field(default_factory=list)
    custom: CustomFields | None = None


class TrackingData(CtModel):
    tracking_id: str | None = None
    carrier: str | None = None
    provider: str | None = None
    provider_transaction: str | None = None
    is_return: bool | None = None


class DeliveryItem(CtModel):
    id: str
    quantity: int


class Parcel(CtModel):
    id: str
    key: str | None = None
    created_at: datetime | None = None
    measurements: dict[str, Any] | None = None
    tracking_data: TrackingData | None = None
    items: list[DeliveryItem] = Field(default_factory=list)
    custom: CustomFields | None = None


class Delivery(CtModel):
    id: str
    key: str | None = None
    created_at: datetime | None = None
    items: list[DeliveryItem] = Field(default_factory=list)
    parcels: list[Parcel] = Field(default_factory=list)
    address: Address | None = None
    custom: CustomFields | None = None


class ShippingInfo(CtModel):
    shipping_method_name: str | None = None
    price: TypedMoney | None = None
    shipping_rate: dict[str, Any] | None = None
    taxed_price: TaxedItemPrice | None = None
    tax_rate: TaxRate | None = None
    tax_category: TaxCategoryReference | None = None
    shipping_method: Reference | None = None
    deliveries: list[Delivery] = Field(default_factory=list)
    shipping_method_state: str | None = None


class SyncInfo(CtModel):
    channel: ChannelReference
    external_id: str | None = None
    synced_at: datetime


class Order(CtModel):
    """An order; orderNumber, shipmentState, paymentState and taxedPrice may all be missing."""

    id: str
    version: int
    order_number: str | None = None
    purchase_order_number: str | None = None
    created_at: datetime
    last_modified_at: datetime
    completed_at: datetime | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    line_items: list[LineItem] = Field(default_factory=list)
    custom_line_items: list[CustomLineItem] = Field(default_factory=list)
    total_price: TypedMoney
    taxed_price: TaxedPrice | None = None
    taxed_shipping_price: TaxedPrice | None = None
    discount_on_total_price: dict[str, Any] | None = None
    shipping_info: ShippingInfo | None = None
    payment_info: PaymentInfo | None = None
    order_state: OrderState
    shipment_state: ShipmentState | None = None
    payment_state: PaymentState | None = None
    state: Reference | None = None
    sync_info: list[SyncInfo] = Field(default_factory=list)
    billing_address: Address | None = None
    shipping_address: Address | None = None
    country: str | None = None
    tax_mode: TaxMode | None = None
    tax_rounding_mode: RoundingMode | None = None
    price_rounding_mode: RoundingMode | None = None
    tax_calculation_mode: TaxCalculationMode | None = None
    inventory_mode: str | None = None
    origin: str | None = None
    store: KeyReference | None = None
    custom: CustomFields | None = None

    @property
    def payments(self) -> list[Payment]:
        """The expanded payments (empty when the query did not expand paymentInfo.payments[*])."""
        if self.payment_info is None:
            return []
        return [ref.obj for ref in self.payment_info.payments if ref.obj is not None]


__all__ = [
    "CURRENCY_FRACTION_DIGITS",
    "Address",
    "Attribute",
    "CentPrecisionMoney",
    "Channel",
    "ChannelReference",
    "ChannelRole",
    "CtModel",
    "CustomFields",
    "CustomLineItem",
    "Delivery",
    "DeliveryItem",
    "HighPrecisionMoney",
    "InventoryEntry",
    "ItemState",
    "KeyReference",
    "LineItem",
    "LocalizedString",
    "Order",
    "OrderState",
    "Parcel",
    "Payment",
    "PaymentInfo",
    "PaymentMethodInfo",
    "PaymentReference",
    "PaymentState",
    "PaymentStatus",
    "Price",
    "Product",
    "ProductCatalogData",
    "ProductData",
    "ProductProjection",
    "ProductVariant",
    "Reference",
    "RoundingMode",
    "ShipmentState",
    "ShippingInfo",
    "SyncInfo",
    "TaxCalculationMode",
    "TaxCategory",
    "TaxCategoryReference",
    "TaxMode",
    "TaxPortion",
    "TaxRate",
    "TaxedItemPrice",
    "TaxedPrice",
    "TrackingData",
    "Transaction",
    "TransactionState",
    "TransactionType",
    "TypedMoney",
]
