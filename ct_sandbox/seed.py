"""Seed data of the sandbox: a UK homeware, clothing and pantry shop, deterministic from a seed.

The commercetools documents follow the real API's JSON (Order with LineItems, CustomLineItems,
TaxedPrice with taxPortions, ShippingInfo, Payments with transactions, InventoryEntries,
Channels, Products with masterData current/staged, TaxCategories). Taxes are computed the way
commercetools does by default for a UK shop: prices include VAT, LineItemLevel calculation,
half-even rounding per line; the order's taxPortions are the per-rate sums of the line taxes.

The ERP mirrors every SKU as an item (item number, VAT code S/R/Z, prices), holds stock per
location (MAN, MK, LDN-STORE map to the supply channels) and already has part of the order
history as sales orders with shipments.

The seed builds those ERP documents (sales orders, via :func:`sales_order_draft`) itself rather
than with the pipelines' order-to-sales-order mapping: the sandbox is a stand-in for the outside
systems and imports nothing from ``ct_pipelines``, so it cannot call the code it is there to
test, and a seed made by that code would hide the code's bugs. The documents follow the ERP's
wire format (``ct_sandbox.erp.schema``), are checked by the ERP's own business rules
(``validate_sales_order``) when written, and the seed tests also read them with the pipelines'
ERP models, so the seeded history stays consistent with what a real export produces: one line
per line item, custom line item and shipping, net/tax/gross from each line's ``taxedPrice``,
VAT codes S/R/Z from the line's tax rate.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ct_sandbox.db import format_timestamp

GB = "GB"
CURRENCY = "GBP"

# Supply channels and the ERP/WMS locations that feed them.
LOCATION_CHANNELS: dict[str, str] = {
    "MAN": "wh-manchester",
    "MK": "wh-milton-keynes",
    "LDN-STORE": "store-london",
}
EXPORT_CHANNEL_KEY = "erp-order-export"
DISTRIBUTION_CHANNEL_KEY = "web-uk"

# ERP service items: sellable on an order, never stocked, no SKU.
SERVICE_ITEMS: dict[str, tuple[str, str]] = {
    "SHIPPING": ("Carriage", "S"),
    "CUSTOM": ("Sundry charge", "S"),
    "DISCOUNT": ("Discount", "S"),
    "GIFT-WRAP": ("Gift wrapping", "S"),
    "ENGRAVING": ("Personal engraving", "S"),
}
CUSTOM_LINE_ITEMS: dict[str, tuple[str, int, str]] = {
    # slug -> (name, unit price in pence, ERP item)
    "gift-wrap": ("Gift wrap", 350, "GIFT-WRAP"),
    "engraving": ("Personal engraving", 750, "ENGRAVING"),
}


@dataclass(frozen=True)
class TaxSpec:
    key: str
    name: str
    rate: Decimal
    erp_code: str

    @property
    def json_amount(self) -> float | int:
        # The API returns the rate as a JSON number (0.2); money never goes through float.
        return _JSON_RATES[self.rate]


_JSON_RATES = {Decimal("0.2"): 0.2, Decimal("0.05"): 0.05, Decimal("0"): 0}


TAXES: dict[str, TaxSpec] = {
    "standard": TaxSpec("standard", "UK VAT standard rate 20%", Decimal("0.2"), "S"),
    "reduced": TaxSpec("reduced", "UK VAT reduced rate 5%", Decimal("0.05"), "R"),
    "zero": TaxSpec("zero", "UK VAT zero rate 0%", Decimal("0"), "Z"),
}
IE_RATES = {"standard": Decimal("0.23"), "reduced": Decimal("0.135"), "zero": Decimal("0")}


def money(cents: int, currency: str = CURRENCY) -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": currency,
        "centAmount": cents,
        "fractionDigits": 2,
    }


def high_precision(precise: int, digits: int, currency: str = CURRENCY) -> dict[str, Any]:
    cents = int(
        (Decimal(precise).scaleb(-digits + 2)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    )
    return {
        "type": "highPrecision",
        "currencyCode": currency,
        "centAmount": cents,
        "preciseAmount": precise,
        "fractionDigits": digits,
    }


def split_gross(gross: int, rate: Decimal) -> tuple[int, int]:
    """(net, tax) of a VAT-inclusive amount in pence; net rounded half-even, per line."""
    net = int((Decimal(gross) / (1 + rate)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return net, gross - net


_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)


def new_id(rng: random.Random) -> str:
    """A random (version 4) UUID drawn from ``rng``, so seeded worlds are reproducible."""
    h = f"{(rng.getrandbits(128) & _VERSION_MASK) | _VERSION_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- catalogue ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    attributes: tuple[tuple[str, str], ...]
    price_minor: int  # GBP, VAT inclusive
    precise_gbp: int | None = None  # preciseAmount at 4 digits when the GBP price is high precision
    eur_minor: int | None = None
    precise_eur: int | None = None


@dataclass(frozen=True)
class ProductSpec:
    key: str
    name: str
    category: str
    tax: str
    variants: tuple[VariantSpec, ...]


# (code, name, category, tax, price in pence, axes)
_RANGE: list[tuple[str, str, str, str, int, list[list[str]]]] = [
    (
        "TSH",
        "Organic Cotton T-Shirt",
        "Clothing",
        "standard",
        2500,
        [["White", "Navy", "Black", "Sage"], ["S", "M", "L", "XL"]],
    ),
    (
        "BRT",
        "Breton Stripe Top",
        "Clothing",
        "standard",
        3900,
        [["Navy-Ecru", "Red-Ecru"], ["XS", "S", "M", "L"]],
    ),
    (
        "MER",
        "Merino Crew Jumper",
        "Clothing",
        "standard",
        8900,
        [["Charcoal", "Oatmeal", "Bottle Green"], ["S", "M", "L", "XL"]],
    ),
    ("SCF", "Lambswool Scarf", "Accessories", "standard", 4500, [["Tartan Red", "Grey", "Camel"]]),
    (
        "WAX",
        "Waxed Cotton Jacket",
        "Clothing",
        "standard",
        19900,
        [["Olive", "Navy"], ["S", "M", "L", "XL"]],
    ),
    (
        "HOD",
        "Heavyweight Hoodie",
        "Clothing",
        "standard",
        6500,
        [["Black", "Heather Grey", "Navy"], ["S", "M", "L", "XL"]],
    ),
    (
        "CHN",
        "Chino Trousers",
        "Clothing",
        "standard",
        5500,
        [["Stone", "Navy"], ["30", "32", "34", "36"]],
    ),
    (
        "OXF",
        "Oxford Shirt",
        "Clothing",
        "standard",
        4900,
        [["White", "Blue"], ["S", "M", "L", "XL"]],
    ),
    (
        "SOK",
        "Wool Socks 3-Pack",
        "Accessories",
        "standard",
        1800,
        [["Assorted"], ["UK 4-7", "UK 8-11"]],
    ),
    (
        "BNE",
        "Fisherman Beanie",
        "Accessories",
        "standard",
        2200,
        [["Navy", "Rust", "Grey", "Mustard"]],
    ),
    ("LIN", "Linen Shirt", "Clothing", "standard", 5900, [["White", "Sand"], ["S", "M", "L"]]),
    (
        "RNC",
        "Packable Raincoat",
        "Clothing",
        "standard",
        7900,
        [["Yellow", "Navy"], ["S", "M", "L"]],
    ),
    ("BLT", "Leather Belt", "Accessories", "standard", 3500, [["Brown", "Black"], ["S-M", "L-XL"]]),
    ("TIE", "Silk Tie", "Accessories", "standard", 3900, [["Navy", "Burgundy"]]),
    (
        "GLV",
        "Cable Knit Gloves",
        "Accessories",
        "standard",
        2400,
        [["Grey", "Navy"], ["S-M", "L-XL"]],
    ),
    (
        "KTS",
        "Kids' Stripe T-Shirt",
        "Kidswear",
        "zero",
        1200,
        [["Red", "Blue"], ["2-3Y", "4-5Y", "6-7Y", "8-9Y"]],
    ),
    (
        "KFL",
        "Kids' Fleece",
        "Kidswear",
        "zero",
        2200,
        [["Navy", "Pink"], ["2-3Y", "4-5Y", "6-7Y", "8-9Y"]],
    ),
    (
        "KWB",
        "Kids' Wellington Boots",
        "Kidswear",
        "zero",
        1800,
        [["Yellow", "Green"], ["UK 8", "UK 10", "UK 12"]],
    ),
    (
        "KPJ",
        "Kids' Pyjamas",
        "Kidswear",
        "zero",
        1600,
        [["Dinosaur", "Stars"], ["2-3Y", "4-5Y", "6-7Y", "8-9Y"]],
    ),
    (
        "KRC",
        "Kids' Raincoat",
        "Kidswear",
        "zero",
        2800,
        [["Yellow"], ["2-3Y", "4-5Y", "6-7Y", "8-9Y"]],
    ),
    (
        "MUG",
        "Stoneware Mug",
        "Kitchen",
        "standard",
        1200,
        [["Cream", "Sage", "Slate", "Terracotta"]],
    ),
    (
        "CSH",
        "Linen Cushion Cover",
        "Home",
        "standard",
        2800,
        [["Natural", "Rust", "Olive"], ["45cm", "60cm"]],
    ),
    ("CND", "Soy Wax Candle", "Home", "standard", 1800, [["Fig", "Cedar", "Sea Salt", "Lavender"]]),
    ("THR", "Wool Throw", "Home", "standard", 7500, [["Grey", "Mustard", "Navy"]]),
    ("TPT", "Enamel Teapot", "Kitchen", "standard", 3200, [["White", "Blue"]]),
    ("TTW", "Cotton Tea Towel Set", "Kitchen", "standard", 1400, [["Stripe", "Check"]]),
    (
        "POT",
        "Ceramic Plant Pot",
        "Garden",
        "standard",
        1500,
        [["White", "Speckled"], ["Small", "Medium", "Large"]],
    ),
    ("OAK", "Oak Chopping Board", "Kitchen", "standard", 3400, [["Small", "Large"]]),
    (
        "TWL",
        "Cotton Towel",
        "Bathroom",
        "standard",
        1600,
        [["White", "Grey", "Sage"], ["Hand", "Bath"]],
    ),
    ("DIF", "Reed Diffuser", "Home", "standard", 2600, [["Fig", "Cedar"]]),
    ("GLS", "Recycled Glass Tumblers (4)", "Kitchen", "standard", 2000, []),
    ("MAT", "Coir Doormat", "Home", "standard", 2500, [["Plain", "Welcome"]]),
    ("FRM", "Picture Frame", "Home", "standard", 1900, [["Oak", "Black"], ["A4", "A3"]]),
    ("LMP", "Table Lamp", "Lighting", "standard", 6900, [["Brass", "Black"]]),
    (
        "DUV",
        "Cotton Duvet Cover",
        "Bedroom",
        "standard",
        4500,
        [["White", "Grey"], ["Single", "Double", "King"]],
    ),
    ("APR", "Canvas Apron", "Kitchen", "standard", 2200, [["Denim", "Stripe"]]),
    ("SPN", "Beech Spoon Set", "Kitchen", "standard", 1100, []),
    ("JAR", "Storage Jar", "Kitchen", "standard", 1300, [["Small", "Large"]]),
    ("NAP", "Napkin Set (4)", "Kitchen", "standard", 1900, [["Linen", "Cotton"]]),
    (
        "TEA-EB",
        "English Breakfast Tea",
        "Pantry",
        "zero",
        325,
        [["40 bags", "80 bags", "240 bags"]],
    ),
    ("TEA-EG", "Earl Grey Tea", "Pantry", "zero", 350, [["40 bags", "80 bags"]]),
    ("TEA-AS", "Loose Leaf Assam", "Pantry", "zero", 650, [["100g", "250g"]]),
    ("COF-GR", "Ground Coffee", "Pantry", "zero", 550, [["227g", "454g"]]),
    ("COF-BN", "Coffee Beans", "Pantry", "zero", 850, [["250g", "1kg"]]),
    ("JAM", "Strawberry Jam", "Pantry", "zero", 375, []),
    ("MML", "Seville Orange Marmalade", "Pantry", "zero", 395, [["340g", "454g"]]),
    ("SHB", "All-Butter Shortbread", "Pantry", "zero", 425, [["150g", "300g"]]),
    # Chocolate-covered biscuits, confectionery and soft drinks are standard-rated in the UK.
    ("CHD", "Milk Chocolate Digestives", "Pantry", "standard", 299, []),
    ("CHO", "Dark Chocolate Bar", "Pantry", "standard", 350, [["70%", "85%"]]),
    ("OIL", "Cold-Pressed Rapeseed Oil", "Pantry", "zero", 495, []),
    ("OTC", "Scottish Oatcakes", "Pantry", "zero", 225, [["Plain", "Cheese"]]),
    ("HNY", "British Honey", "Pantry", "zero", 795, [["Set", "Runny"]]),
    ("ELD", "Sparkling Elderflower", "Pantry", "standard", 195, [["275ml", "750ml"]]),
    ("SWT", "Pick & Mix Sweets (per 100 g)", "Pantry", "standard", 125, []),
    ("PIC", "Piccalilli", "Pantry", "zero", 350, []),
    ("CRM", "Crumpet Mix", "Pantry", "zero", 400, []),
    ("SLT", "Sea Salt Flakes", "Pantry", "zero", 275, []),
    # Children's car seats are reduced-rated (5%).
    ("CST", "Child Car Seat", "Baby", "reduced", 14900, [["Group 1", "Group 2-3"]]),
    ("BST", "Booster Cushion", "Baby", "reduced", 2500, []),
    ("BK-BAKE", "The British Bake Book", "Books", "zero", 2000, []),
    ("BK-PEAK", "Walks in the Peak District", "Books", "zero", 1499, []),
    ("BK-GRDN", "Gardening Through the Year", "Books", "zero", 1800, []),
]

_WEARABLE = frozenset({"Clothing", "Accessories", "Kidswear"})
_SIZE_STEPS = {
    "L": 0,
    "XL": 200,
    "Large": 600,
    "Medium": 300,
    "Bath": 800,
    "Double": 1000,
    "King": 1500,
    "60cm": 700,
    "A3": 600,
    "454g": 150,
    "80 bags": 250,
    "240 bags": 800,
    "250g": 550,
    "1kg": 2400,
    "300g": 325,
    "750ml": 150,
    "Group 2-3": -2000,
}


def _code(value: str) -> str:
    return "".join(ch for ch in value.upper().replace("%", "PCT") if ch.isalnum())[:6]


def build_catalogue() -> list[ProductSpec]:
    """The shop's range: 63 products, 235 SKUs. Fixed, so SKUs are stable across seeds."""
    products: list[ProductSpec] = []
    for code, name, category, tax, base, axes in _RANGE:
        combos: list[tuple[str, ...]] = [()]
        for axis in axes:
            combos = [(*combo, value) for combo in combos for value in axis]
        if len(axes) == 2:
            names = ["colour", "size"]
        elif len(axes) == 1:
            names = ["colour"] if category in _WEARABLE else ["variant"]
        else:
            names = []
        variants = []
        for combo in combos:
            sku = "-".join([code, *(_code(v) for v in combo)])
            price = base + sum(_SIZE_STEPS.get(v, 0) for v in combo)
            precise_gbp = None
            if code == "SWT":
                # Sold by weight: a 4-digit price (1.2495 GBP) that rounds half-even to 125p.
                precise_gbp = 12495
            eur = precise_eur = None
            if category in ("Pantry",):
                # Converted at 1.1735 and kept at 4 digits, as a price feed would send them.
                precise_eur = int(
                    (Decimal(price) * Decimal("117.35")).quantize(Decimal(1), ROUND_HALF_EVEN)
                )
            elif category not in ("Books", "Baby"):
                eur = int(Decimal(price) * Decimal("1.17") / 100) * 100 + 95
            variants.append(
                VariantSpec(
                    sku=sku,
                    attributes=tuple(zip(names, combo, strict=True)),
                    price_minor=price,
                    precise_gbp=precise_gbp,
                    eur_minor=eur,
                    precise_eur=precise_eur,
                )
            )
        products.append(
            ProductSpec(
                key=code.lower(), name=name, category=category, tax=tax, variants=tuple(variants)
            )
        )
    return products


# -- people and places (fictional) -------------------------------------------------------------

_FIRST = [
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Noah",
    "Oliver",
    "George",
    "Arthur",
    "Leo",
    "Harry",
    "Freya",
    "Lily",
    "Grace",
    "Jack",
    "Oscar",
    "Charlie",
    "Sophie",
    "Ella",
    "Alfie",
]
_LAST = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Wright",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Khan",
    "Hughes",
    "Green",
    "Hall",
]
_PLACES = [
    ("Manchester", "M1 2AB"),
    ("Leeds", "LS1 4DY"),
    ("Bristol", "BS1 5TR"),
    ("Birmingham", "B2 4QA"),
    ("London", "N1 9GU"),
    ("London", "SE1 7PB"),
    ("Edinburgh", "EH1 1YZ"),
    ("Cardiff", "CF10 1EP"),
    ("Norwich", "NR2 1NH"),
    ("York", "YO1 7HH"),
    ("Brighton", "BN1 1AE"),
    ("Glasgow", "G1 3SL"),
    ("Belfast", "BT1 5GS"),
    ("Oxford", "OX1 2JD"),
    ("Sheffield", "S1 2HH"),
]
_STREETS = [
    "High Street",
    "Station Road",
    "Church Lane",
    "Victoria Road",
    "Park Avenue",
    "Mill Lane",
    "Queen Street",
    "Green Lane",
    "Kings Road",
    "The Crescent",
]
CARRIERS = ["Royal Mail", "DPD", "Evri"]


def tracking_number(rng: random.Random, carrier: str) -> str:
    if carrier == "Royal Mail":
        return (
            f"{rng.choice('ABFJKLMRTV')}{rng.choice('BDFHJLNPRT')}{rng.randrange(10**8, 10**9)}GB"
        )
    if carrier == "DPD":
        return f"1550{rng.randrange(10**9, 10**10)}"
    return f"H0{rng.randrange(10**13, 10**14)}"


def address(rng: random.Random, first: str, last: str) -> dict[str, Any]:
    city, postcode = rng.choice(_PLACES)
    return {
        "firstName": first,
        "lastName": last,
        "streetNumber": str(rng.randrange(1, 180)),
        "streetName": rng.choice(_STREETS),
        "postalCode": postcode,
        "city": city,
        "country": GB,
    }


# -- reference documents -----------------------------------------------------------------------


@dataclass
class Reference:
    """Ids the documents point at, fixed at seed time."""

    tax_categories: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> doc
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> doc
    product_type_id: str = ""
    shipping_method_ids: dict[str, str] = field(default_factory=dict)
    cart_discount_id: str = ""
    state_initial_id: str = ""
    store_key: str = "uk-web"


def tax_category_docs(rng: random.Random, at: str) -> list[dict[str, Any]]:
    docs = []
    for spec in TAXES.values():
        ie = IE_RATES[spec.key]
        docs.append(
            {
                "id": new_id(rng),
                "version": 1,
                "key": spec.key,
                "name": spec.name.replace("UK VAT ", "").capitalize(),
                "description": f"{spec.name} (and the Irish equivalent for EUR prices)",
                "rates": [
                    {
                        "id": rng.randbytes(4).hex(),
                        "key": f"gb-{spec.key}",
                        "name": spec.name,
                        "amount": spec.json_amount,
                        "includedInPrice": True,
                        "country": GB,
                        "subRates": [],
                    },
                    {
                        "id": rng.randbytes(4).hex(),
                        "key": f"ie-{spec.key}",
                        "name": f"IE VAT {ie * 100:g}%",
                        "amount": int(ie) if ie == 0 else float(ie),
                        "includedInPrice": True,
                        "country": "IE",
                        "subRates": [],
                    },
                ],
                "createdAt": at,
                "lastModifiedAt": at,
            }
        )
    return docs


_CHANNELS = [
    (
        "wh-manchester",
        ["InventorySupply", "Primary"],
        "Manchester warehouse",
        "Trafford Park",
        (-2.32, 53.46),
    ),
    (
        "wh-milton-keynes",
        ["InventorySupply"],
        "Milton Keynes warehouse",
        "Milton Keynes",
        (-0.76, 52.04),
    ),
    (
        "store-london",
        ["InventorySupply", "ProductDistribution"],
        "Covent Garden store",
        "London",
        (-0.12, 51.51),
    ),
    ("web-uk", ["ProductDistribution"], "UK web shop", None, None),
    ("erp-order-export", ["OrderExport"], "ERP order export", None, None),
]


def channel_docs(rng: random.Random, at: str) -> list[dict[str, Any]]:
    docs = []
    for key, roles, name, city, point in _CHANNELS:
        doc: dict[str, Any] = {
            "id": new_id(rng),
            "version": 1,
            "key": key,
            "roles": roles,
            "name": {"en-GB": name},
            "createdAt": at,
            "lastModifiedAt": at,
        }
        if city:
            doc["address"] = {"city": city, "country": GB}
        if point:
            doc["geoLocation"] = {"type": "Point", "coordinates": list(point)}
        docs.append(doc)
    return docs


def _price(rng: random.Random, value: dict[str, Any], country: str | None) -> dict[str, Any]:
    price: dict[str, Any] = {"id": new_id(rng), "value": value}
    if country:
        price["country"] = country
    return price


def variant_prices(rng: random.Random, spec: VariantSpec) -> list[dict[str, Any]]:
    gbp = (
        high_precision(spec.precise_gbp, 4)
        if spec.precise_gbp is not None
        else money(spec.price_minor)
    )
    prices = [_price(rng, gbp, GB)]
    if spec.precise_eur is not None:
        prices.append(_price(rng, high_precision(spec.precise_eur, 4, "EUR"), "IE"))
    elif spec.eur_minor is not None:
        prices.append(_price(rng, money(spec.eur_minor, "EUR"), "IE"))
    return prices


def product_doc(rng: random.Random, spec: ProductSpec, ref: Reference, at: str) -> dict[str, Any]:
    variants = []
    for index, variant in enumerate(spec.variants, start=1):
        variants.append(
            {
                "id": index,
                "sku": variant.sku,
                "key": variant.sku.lower(),
                "prices": variant_prices(rng, variant),
                "images": [],
                "attributes": [{"name": n, "value": v} for n, v in variant.attributes],
                "assets": [],
            }
        )
    data = {
        "name": {"en-GB": spec.name},
        "description": {"en-GB": f"{spec.name} from our {spec.category.lower()} range."},
        "categories": [],
        "categoryOrderHints": {},
        "slug": {
            "en-GB": spec.key + "-" + spec.name.lower().replace(" ", "-").replace("'", "")[:40]
        },
        "masterVariant": variants[0],
        "variants": variants[1:],
        "searchKeywords": {},
        "attributes": [],
    }
    return {
        "id": new_id(rng),
        "version": 3,
        "key": spec.key,
        "productType": {"typeId": "product-type", "id": ref.product_type_id},
        "taxCategory": {"typeId": "tax-category", "id": ref.tax_categories[spec.tax]["id"]},
        "priceMode": "Embedded",
        "masterData": {
            "published": True,
            "hasStagedChanges": False,
            "current": data,
            "staged": copy.deepcopy(data),
        },
        "createdAt": at,
        "lastModifiedAt": at,
    }


# The attributes the seeded variants carry (see build_catalogue); the master's other item
# attributes (category, product_key) are master-only data, not commercetools attributes; the
# shop flags discontinued variants with a boolean ``discontinued`` (the product sync's default).
PRODUCT_TYPE_ATTRIBUTES = ("colour", "size", "variant")


def product_type_doc(ref: Reference, at: str) -> dict[str, Any]:
    """The one product type every seeded product uses, stored so drafts are checked against it."""
    return {
        "id": ref.product_type_id,
        "version": 1,
        "key": "merchandise",
        "name": "Merchandise",
        "description": "Everything the UK shop sells: variants differ by colour, size or variant.",
        "attributes": [
            {
                "name": name,
                "label": {"en-GB": name.capitalize()},
                "type": {"name": "text"},
                "isRequired": False,
                "attributeConstraint": "None",
                "inputHint": "SingleLine",
                "isSearchable": True,
            }
            for name in PRODUCT_TYPE_ATTRIBUTES
        ]
        + [
            {
                "name": "discontinued",
                "label": {"en-GB": "Discontinued"},
                "type": {"name": "boolean"},
                "isRequired": False,
                "attributeConstraint": "None",
                "inputHint": "SingleLine",
                "isSearchable": False,
            }
        ],
        "createdAt": at,
        "lastModifiedAt": at,
    }


def tax_rate_json(ref: Reference, tax: str) -> dict[str, Any]:
    spec = TAXES[tax]
    rate = ref.tax_categories[tax]["rates"][0]
    return {
        "id": rate["id"],
        "name": spec.name,
        "amount": spec.json_amount,
        "includedInPrice": True,
        "country": GB,
        "subRates": [],
    }


# -- orders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkuEntry:
    sku: str
    item_no: str
    product_id: str
    product_key: str
    name: dict[str, str]
    slug: dict[str, str]
    variant: dict[str, Any]  # shared, never mutated
    price: dict[str, Any]  # the GBP Price
    unit_minor: int
    precise: int | None  # preciseAmount at 4 digits, GBP
    tax: TaxSpec
    tax_rate: dict[str, Any]


_RATE_PRICES = {"standard": 395, "next-day": 695, "click-collect": 0}

PAYMENT_MIX: list[tuple[str, float]] = [
    ("paid", 0.60),
    ("authorised", 0.22),
    ("pending", 0.08),
    ("failed", 0.06),
    ("refunded", 0.03),
    ("chargeback", 0.01),
]


def pick_payment_kind(rng: random.Random, mix: Sequence[tuple[str, float]] = PAYMENT_MIX) -> str:
    value = rng.random()
    edge = 0.0
    for kind, share in mix:
        edge += share
        if value < edge:
            return kind
    return mix[-1][0]


@dataclass
class BuiltOrder:
    order: dict[str, Any]
    payments: list[dict[str, Any]]
    payment_kind: str


class OrderFactory:
    """Builds orders whose money adds up, fast enough for bulk inserts."""

    def __init__(self, entries: Sequence[SkuEntry], ref: Reference) -> None:
        self.entries = list(entries)
        self.ref = ref
        self._tax_rates = {key: tax_rate_json(ref, key) for key in TAXES}
        self._tax_category_refs = {
            key: {"typeId": "tax-category", "id": ref.tax_categories[key]["id"]} for key in TAXES
        }
        self._product_type = {"typeId": "product-type", "id": ref.product_type_id}
        self._initial_state = {"typeId": "state", "id": ref.state_initial_id}
        self._export_channel = {"typeId": "channel", "id": ref.channels[EXPORT_CHANNEL_KEY]["id"]}

    # One line: price x quantity (optionally discounted), VAT split per line, half-even.
    def _line_item(
        self, rng: random.Random, entry: SkuEntry, quantity: int, at: str, discount: bool
    ) -> tuple[dict[str, Any], int, int, TaxSpec]:
        if entry.precise is not None:
            exact = Decimal(entry.precise * quantity).scaleb(-2)
            gross = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
            discount = False
        else:
            gross = entry.unit_minor * quantity
        discounted: list[dict[str, Any]] = []
        if discount:
            unit = entry.unit_minor - entry.unit_minor // 10
            discounted = [
                {
                    "quantity": quantity,
                    "discountedPrice": {
                        "value": money(unit),
                        "includedDiscounts": [
                            {
                                "discount": {
                                    "typeId": "cart-discount",
                                    "id": self.ref.cart_discount_id,
                                },
                                "discountedAmount": money(entry.unit_minor - unit),
                            }
                        ],
                    },
                }
            ]
            gross = unit * quantity
        net, tax = split_gross(gross, entry.tax.rate)
        line = {
            "id": new_id(rng),
            "productId": entry.product_id,
            "productKey": entry.product_key,
            "name": entry.name,
            "productType": self._product_type,
            "productSlug": entry.slug,
            "variant": entry.variant,
            "price": entry.price,
            "quantity": quantity,
            "discountedPricePerQuantity": discounted,
            "totalPrice": money(gross),
            "taxRate": entry.tax_rate,
            "taxedPrice": {
                "totalNet": money(net),
                "totalGross": money(gross),
                "totalTax": money(tax),
                "taxPortions": [
                    {"rate": entry.tax.json_amount, "amount": money(tax), "name": entry.tax.name}
                ],
            },
            "taxedPricePortions": [],
            "state": [{"quantity": quantity, "state": self._initial_state}],
            "perMethodTaxRate": [],
            "priceMode": "Platform",
            "lineItemMode": "Standard",
            "inventoryMode": "None",
            "addedAt": at,
            "lastModifiedAt": at,
        }
        return line, gross, tax, entry.tax

    def _custom_line(
        self, rng: random.Random, slug: str, at: str
    ) -> tuple[dict[str, Any], int, int, TaxSpec]:
        name, unit, _ = CUSTOM_LINE_ITEMS[slug]
        spec = TAXES["standard"]
        net, tax = split_gross(unit, spec.rate)
        line = {
            "id": new_id(rng),
            "name": {"en-GB": name},
            "money": money(unit),
            "totalPrice": money(unit),
            "slug": slug,
            "quantity": 1,
            "state": [{"quantity": 1, "state": self._initial_state}],
            "taxCategory": self._tax_category_refs["standard"],
            "taxRate": self._tax_rates["standard"],
            "taxedPrice": {
                "totalNet": money(net),
                "totalGross": money(unit),
                "totalTax": money(tax),
                "taxPortions": [
                    {"rate": spec.json_amount, "amount": money(tax), "name": spec.name}
                ],
            },
            "discountedPricePerQuantity": [],
            "perMethodTaxRate": [],
            "priceMode": "Standard",
        }
        return line, unit, tax, spec

    def build(
        self,
        rng: random.Random,
        created: datetime,
        order_number: str | None,
        *,
        payment_kind: str | None = None,
        with_payment: bool = True,
        tax_disabled: bool = False,
        extras: bool = True,
    ) -> BuiltOrder:
        at = format_timestamp(created)
        kind = payment_kind or pick_payment_kind(rng)
        lines: list[dict[str, Any]] = []
        portions: dict[str, list[int]] = {}  # tax key -> [tax]
        gross_total = 0
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
            entry = rng.choice(self.entries)
            quantity = rng.choice((1, 1, 1, 1, 2, 2, 3))
            line, gross, tax, spec = self._line_item(
                rng, entry, quantity, at, discount=extras and rng.random() < 0.06
            )
            lines.append(line)
            gross_total += gross
            portions.setdefault(spec.key, []).append(tax)
        custom: list[dict[str, Any]] = []
        if extras:
            for slug, share in (("gift-wrap", 0.08), ("engraving", 0.03)):
                if rng.random() < share:
                    line, gross, tax, spec = self._custom_line(rng, slug, at)
                    custom.append(line)
                    gross_total += gross
                    portions.setdefault(spec.key, []).append(tax)
        method = rng.random()
        if method < 0.2:
            method_name, shipping_minor, method_key = "Next Day Delivery", 695, "next-day"
        elif method < 0.27:
            method_name, shipping_minor, method_key = "Click & Collect", 0, "click-collect"
        else:
            method_name, method_key = "Standard Delivery", "standard"
            shipping_minor = 0 if gross_total >= 5000 else 395
        standard = TAXES["standard"]
        ship_net, ship_tax = split_gross(shipping_minor, standard.rate)
        gross_total += shipping_minor
        portions.setdefault("standard", []).append(ship_tax)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        shipping_address = address(rng, first, last)
        guest = rng.random() < 0.3
        order_id = new_id(rng)
        taxed_shipping = {
            "totalNet": money(ship_net),
            "totalGross": money(shipping_minor),
            "totalTax": money(ship_tax),
            "taxPortions": [
                {"rate": standard.json_amount, "amount": money(ship_tax), "name": standard.name}
            ],
        }
        order: dict[str, Any] = {
            "type": "Order",
            "id": order_id,
            "version": 1,
            "createdAt": at,
            "lastModifiedAt": at,
            "lastModifiedBy": {"clientId": "storefront-checkout", "isPlatformClient": False},
            "createdBy": {"clientId": "storefront-checkout", "isPlatformClient": False},
            "customerEmail": f"{first}.{last}{rng.randrange(1, 999)}@example.co.uk".lower(),
            "lineItems": lines,
            "customLineItems": custom,
            "totalPrice": money(gross_total),
            "shippingMode": "Single",
            "shippingInfo": {
                "shippingMethodName": method_name,
                "price": money(shipping_minor),
                "shippingRate": {
                    "price": money(_RATE_PRICES[method_key]),
                    "freeAbove": money(5000),
                    "isMatching": True,
                    "tiers": [],
                },
                "taxRate": self._tax_rates["standard"],
                "taxCategory": self._tax_category_refs["standard"],
                "taxedPrice": taxed_shipping,
                "shippingMethod": {
                    "typeId": "shipping-method",
                    "id": self.ref.shipping_method_ids[method_key],
                },
                "deliveries": [],
                "shippingMethodState": "MatchesCart",
            },
            "taxedShippingPrice": taxed_shipping,
            "shippingAddress": shipping_address,
            "billingAddress": shipping_address
            if rng.random() < 0.85
            else address(rng, first, last),
            "country": GB,
            "taxMode": "Platform",
            "taxRoundingMode": "HalfEven",
            "taxCalculationMode": "LineItemLevel",
            "inventoryMode": "None",
            "priceRoundingMode": "HalfEven",
            "origin": "Customer",
            "orderState": "Open",
            "syncInfo": [],
            "returnInfo": [],
            "discountCodes": [],
            "directDiscounts": [],
            "itemShippingAddresses": [],
            "refusedGifts": [],
            "cart": {"typeId": "cart", "id": new_id(rng)},
            "store": {"typeId": "store", "key": self.ref.store_key},
            "lastMessageSequenceNumber": 1,
        }
        if order_number is not None:
            order["orderNumber"] = order_number
        if not guest:
            order["customerId"] = new_id(rng)
        else:
            order["anonymousId"] = new_id(rng)
        if tax_disabled:
            # Tax calculation switched off for this order (e.g. an imported marketplace order):
            # no taxedPrice, no tax rates on the lines.
            order["taxMode"] = "Disabled"
            for line in [*lines, *custom]:
                line.pop("taxRate", None)
                line.pop("taxedPrice", None)
            order["shippingInfo"].pop("taxRate", None)
            order["shippingInfo"].pop("taxedPrice", None)
            order.pop("taxedShippingPrice", None)
        else:
            tax_total = 0
            tax_portions = []
            for key, taxes in portions.items():
                amount = sum(taxes)
                tax_total += amount
                tax_portions.append(
                    {
                        "rate": TAXES[key].json_amount,
                        "amount": money(amount),
                        "name": TAXES[key].name,
                    }
                )
            order["taxedPrice"] = {
                "totalNet": money(gross_total - tax_total),
                "totalGross": money(gross_total),
                "totalTax": money(tax_total),
                "taxPortions": tax_portions,
            }
        payments = []
        if with_payment:
            payment = self.payment(rng, kind, gross_total, created, order.get("customerId"))
            payments.append(payment)
            order["paymentInfo"] = {"payments": [{"typeId": "payment", "id": payment["id"]}]}
        apply_payment_state(order, kind)
        return BuiltOrder(order, payments, kind)

    def payment(
        self,
        rng: random.Random,
        kind: str,
        amount: int,
        created: datetime,
        customer_id: str | None,
    ) -> dict[str, Any]:
        method = rng.random()
        if method < 0.7:
            interface, name, method_code = "stripe", "Card", "card"
        elif method < 0.9:
            interface, name, method_code = "paypal", "PayPal", "paypal"
        else:
            interface, name, method_code = "klarna", "Klarna Pay in 3", "klarna"
        transactions: list[dict[str, Any]] = []

        def tx(kind_: str, state: str, cents: int, delay_minutes: float) -> None:
            transactions.append(
                {
                    "id": new_id(rng),
                    "timestamp": format_timestamp(created + timedelta(minutes=delay_minutes)),
                    "type": kind_,
                    "amount": money(cents),
                    "interactionId": f"{interface[:2]}_{rng.randbytes(8).hex()}",
                    "state": state,
                }
            )

        if kind == "failed":
            tx("Authorization", "Failure", amount, 0.1)
            status = ("declined", "Card declined")
        elif kind == "pending":
            tx("Authorization", "Pending", amount, 0.1)
            status = ("pending", "Awaiting confirmation")
        else:
            tx("Authorization", "Success", amount, 0.1)
            status = ("authorised", "Authorised")
            if kind in ("paid", "refunded", "chargeback"):
                tx("Charge", "Success", amount, rng.uniform(5, 120))
                status = ("captured", "Captured")
            if kind == "refunded":
                tx("Refund", "Success", max(1, amount // 3), rng.uniform(600, 2000))
                status = ("refunded", "Partially refunded")
            if kind == "chargeback":
                tx("Chargeback", "Success", amount, rng.uniform(600, 2000))
                status = ("chargeback", "Disputed by the card holder")
        last = max(t["timestamp"] for t in transactions)
        payment: dict[str, Any] = {
            "id": new_id(rng),
            "version": 1 + len(transactions),
            "createdAt": format_timestamp(created),
            "lastModifiedAt": last,
            "interfaceId": f"{interface[:2]}_{rng.randbytes(10).hex()}",
            "amountPlanned": money(amount),
            "paymentMethodInfo": {
                "paymentInterface": interface,
                "method": method_code,
                "name": {"en-GB": name},
            },
            "paymentStatus": {"interfaceCode": status[0], "interfaceText": status[1]},
            "transactions": transactions,
            "interfaceInteractions": [],
        }
        if customer_id:
            payment["customer"] = {"typeId": "customer", "id": customer_id}
        return payment


def apply_payment_state(order: dict[str, Any], kind: str) -> None:
    """Order and payment state as a checkout integration leaves them."""
    if kind in ("paid", "refunded", "chargeback"):
        order["paymentState"] = "Paid"
        order["orderState"] = "Confirmed"
    elif kind == "authorised" or kind == "pending":
        order["paymentState"] = "Pending"
        order["orderState"] = "Open"
    else:
        order["paymentState"] = "Failed"
        order["orderState"] = "Open"


# -- ERP documents derived from the catalogue and orders ---------------------------------------


def erp_item_rows(
    catalogue: Sequence[ProductSpec], at: str, inactive: Iterable[str] = ()
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, str]]:
    """(item rows, price rows, sku -> item_no) for erp_items / erp_item_prices."""
    blocked = set(inactive)
    items: list[tuple[Any, ...]] = []
    prices: list[tuple[Any, ...]] = []
    numbers: dict[str, str] = {}
    counter = 10000
    for product in catalogue:
        for variant in product.variants:
            counter += 1
            item_no = str(counter)
            numbers[variant.sku] = item_no
            label = ", ".join(v for _, v in variant.attributes)
            attributes = {name: value for name, value in variant.attributes}
            attributes["category"] = product.category
            attributes["product_key"] = product.key
            items.append(
                (
                    item_no,
                    variant.sku,
                    f"{product.name}, {label}" if label else product.name,
                    f"{product.category}: {product.name}",
                    json.dumps(attributes, sort_keys=True),
                    TAXES[product.tax].erp_code,
                    0 if variant.sku in blocked else 1,
                    "inventory",
                    at,
                )
            )
            precise_gbp = (
                str(Decimal(variant.precise_gbp).scaleb(-4)) if variant.precise_gbp else None
            )
            gbp = (
                high_precision(variant.precise_gbp, 4)["centAmount"]
                if variant.precise_gbp
                else variant.price_minor
            )
            prices.append((item_no, "GBP", GB, "", gbp, 2, precise_gbp))
            if variant.precise_eur is not None:
                eur = high_precision(variant.precise_eur, 4, "EUR")["centAmount"]
                prices.append(
                    (item_no, "EUR", "IE", "", eur, 2, str(Decimal(variant.precise_eur).scaleb(-4)))
                )
            elif variant.eur_minor is not None:
                prices.append((item_no, "EUR", "IE", "", variant.eur_minor, 2, None))
    for item_no, (name, code) in SERVICE_ITEMS.items():
        items.append((item_no, None, name, "Service item", "{}", code, 1, "service", at))
    return items, prices, numbers


_CODE_BY_RATE = {spec.rate: spec.erp_code for spec in TAXES.values()}


def sales_order_draft(order: dict[str, Any], item_numbers: dict[str, str]) -> dict[str, Any]:
    """The ERP sales order for a seeded order, as wire JSON (``ct_sandbox.erp.schema``).

    Built here, not by the pipelines' mapping (see the module docstring): the same shape the
    integration's export sends, from the order's own taxed amounts.
    """
    lines: list[dict[str, Any]] = []

    def add(
        item: str,
        description: str,
        quantity: int,
        unit: int,
        taxed: dict[str, Any],
        rate: Any,
        kind: str,
    ) -> None:
        code = _CODE_BY_RATE[Decimal(str(rate))]
        net = taxed["totalNet"]["centAmount"]
        gross = taxed["totalGross"]["centAmount"]
        lines.append(
            {
                "line_no": len(lines) + 1,
                "item_no": item,
                "description": description[:100],
                "quantity": quantity,
                "unit_price_minor": unit,
                "net_minor": net,
                "tax_minor": gross - net,
                "gross_minor": gross,
                "tax_code": code,
                "kind": kind,
            }
        )

    for line in order["lineItems"]:
        add(
            item_numbers[line["variant"]["sku"]],
            line["name"]["en-GB"],
            line["quantity"],
            line["price"]["value"]["centAmount"],
            line["taxedPrice"],
            line["taxRate"]["amount"],
            "item",
        )
    for line in order["customLineItems"]:
        add(
            CUSTOM_LINE_ITEMS[line["slug"]][2],
            line["name"]["en-GB"],
            line["quantity"],
            line["money"]["centAmount"],
            line["taxedPrice"],
            line["taxRate"]["amount"],
            "custom",
        )
    shipping = order["shippingInfo"]
    add(
        "SHIPPING",
        shipping["shippingMethodName"],
        1,
        shipping["price"]["centAmount"],
        shipping["taxedPrice"],
        shipping["taxRate"]["amount"],
        "shipping",
    )
    taxed = order["taxedPrice"]
    return {
        "external_document_number": order.get("orderNumber") or order["id"],
        "order_date": order["createdAt"][:10],
        "currency": order["totalPrice"]["currencyCode"],
        "fraction_digits": 2,
        "customer": {"ref": order.get("customerId") or "guest", "country": GB},
        "lines": lines,
        "totals": {
            "net_minor": taxed["totalNet"]["centAmount"],
            "tax_minor": taxed["totalTax"]["centAmount"],
            "gross_minor": taxed["totalGross"]["centAmount"],
        },
        "source_order_id": order["id"],
        "source_order_version": order["version"],
    }


def shipped_lines(order: dict[str, Any]) -> list[dict[str, Any]]:
    """What a full shipment of the order carries: its SKU lines."""
    return [
        {"sku": line["variant"]["sku"], "quantity": line["quantity"]}
        for line in order["lineItems"]
        if line.get("variant", {}).get("sku")
    ]


def add_delivery(
    order: dict[str, Any],
    rng: random.Random,
    shipment_number: str,
    carrier: str,
    tracking: str,
    at: str,
) -> None:
    """The dispatch update as the integration applies it: delivery + parcel + Shipped."""
    items = [{"id": line["id"], "quantity": line["quantity"]} for line in order["lineItems"]]
    order["shippingInfo"]["deliveries"].append(
        {
            "id": new_id(rng),
            "key": f"shipment-{shipment_number}",
            "createdAt": at,
            "items": items,
            "parcels": [
                {
                    "id": new_id(rng),
                    "key": f"parcel-{shipment_number}",
                    "createdAt": at,
                    "trackingData": {"trackingId": tracking, "carrier": carrier, "isReturn": False},
                    "items": items,
                }
            ],
        }
    )
    order["shipmentState"] = "Shipped"
    order["version"] += 2
    order["lastModifiedAt"] = max(order["lastModifiedAt"], at)
