"""The product master: items of the designated master system grouped into products.

The master (the ERP by default, a PIM later) speaks in items: one SKU each, with a name,
attributes, prices per scope, a tax code and an active flag. commercetools speaks in products
with variants. ``build_catalog`` groups items into products by a product-key attribute (items
without one are single-variant products keyed by their SKU) and maps the master's tax codes to
commercetools tax category keys. Anything the master gets wrong for commercetools (two tax codes
in one product, a duplicate SKU, an unknown tax code) becomes an issue, not an exception: one
bad item must not stop the other 19,999.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from ct_pipelines.defs.product_master.logic.values import CENT, HIGH, money_text

DEFAULT_TAX_CATEGORIES: dict[str, str] = {"S": "standard", "R": "reduced", "Z": "zero"}
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


class MasterSource(Protocol):
    """The designated master system: the ERP port today, a PIM adapter later."""

    def iter_items(self) -> Iterator[Any]: ...


@dataclass(frozen=True, slots=True)
class CatalogRules:
    """How master items become commercetools products; configurable per deployment."""

    # Items sharing this attribute's value are variants of one product.
    product_key_attribute: str = "product_key"
    # The product's name, when the items carry one (else the first variant's item name).
    product_name_attribute: str = "product_name"
    locale: str = "en-GB"
    tax_categories: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TAX_CATEGORIES))
    # Item attributes that are master-only data, not commercetools attributes (the category
    # becomes a commercetools category, not an attribute).
    excluded_attributes: frozenset[str] = frozenset({"category"})
    # None: every attribute the master carries is mastered; else only these names.
    mastered_attributes: frozenset[str] | None = None

    def is_syndicated_attribute(self, name: str) -> bool:
        if name in (self.product_key_attribute, self.product_name_attribute):
            return False
        if name in self.excluded_attributes:
            return False
        return self.mastered_attributes is None or name in self.mastered_attributes


class PriceScope(NamedTuple):
    """commercetools' price scope: one price per currency, country, channel, group, validity.

    A tuple, because the planner hashes one per price: 60,000 for 20,000 SKUs.
    """

    currency: str
    country: str | None = None
    channel_key: str | None = None
    customer_group: str | None = None
    valid_from: str | None = None
    valid_until: str | None = None

    def label(self) -> str:
        parts = [self.currency, self.country or "*", self.channel_key or "*"]
        if self.customer_group or self.valid_from or self.valid_until:
            parts += [self.customer_group or "*", self.valid_from or "*", self.valid_until or "*"]
        return "/".join(parts)


@dataclass(frozen=True, slots=True)
class MasterPrice:
    scope: PriceScope
    amount_minor: int  # currency minor units (half-even of ``precise`` when that is set)
    fraction_digits: int  # the currency's digits
    precise: Decimal | None = None  # major units, set only when finer than the currency

    @property
    def precision(self) -> str:
        return HIGH if self.precise is not None else CENT

    def amount(self) -> Decimal:
        if self.precise is not None:
            return self.precise
        return Decimal(self.amount_minor).scaleb(-self.fraction_digits)

    def text(self) -> str:
        return money_text(self.scope.currency, self.amount())

    def money_draft(self) -> dict[str, Any]:
        """A commercetools Money draft: cent precision, or high precision with preciseAmount."""
        if self.precise is None:
            return {
                "type": "centPrecision",
                "currencyCode": self.scope.currency,
                "centAmount": self.amount_minor,
                "fractionDigits": self.fraction_digits,
            }
        digits = max(-self.precise.normalize().as_tuple().exponent, self.fraction_digits + 1)  # type: ignore[operator]
        return {
            "type": "highPrecision",
            "currencyCode": self.scope.currency,
            "fractionDigits": digits,
            "preciseAmount": int(self.precise.scaleb(digits)),
            # Stated so the draft is explicit; it is the half-even rounding commercetools accepts.
            "centAmount": self.amount_minor,
        }


@dataclass(frozen=True, slots=True)
class MasterVariant:
    sku: str
    item_no: str
    name: str
    attributes: Mapping[str, Any]
    prices: tuple[MasterPrice, ...]
    tax_code: str
    active: bool


@dataclass(frozen=True, slots=True)
class MasterProduct:
    key: str
    name: Mapping[str, str]  # LocalizedString, the mastered locales only
    slug: Mapping[str, str]
    variants: tuple[MasterVariant, ...]  # the first is the master variant on creation
    tax_code: str
    tax_category_key: str | None

    @property
    def active(self) -> bool:
        """A product is deactivated when the master has deactivated all its items."""
        return any(v.active for v in self.variants)

    @property
    def skus(self) -> tuple[str, ...]:
        return tuple(v.sku for v in self.variants)


@dataclass(frozen=True, slots=True)
class MasterIssue:
    """Something in the master that cannot be syndicated as it stands."""

    kind: str  # duplicate_sku, mixed_tax_codes, unknown_tax_code, invalid_price
    entity: str  # product key or SKU
    detail: str


@dataclass(slots=True)
class MasterCatalog:
    products: list[MasterProduct]
    issues: list[MasterIssue] = field(default_factory=list)
    duplicate_skus: list[str] = field(default_factory=list)
    attribute_names: frozenset[str] = frozenset()

    def variants(self) -> Iterator[tuple[MasterProduct, MasterVariant]]:
        for product in self.products:
            for variant in product.variants:
                yield product, variant

    def product_keys(self) -> dict[str, str]:
        """SKU -> the key of the product it belongs to."""
        return {v.sku: p.key for p in self.products for v in p.variants}

    @property
    def sku_count(self) -> int:
        return sum(len(p.variants) for p in self.products)


def product_key(value: str) -> str:
    """A valid commercetools key (``^[A-Za-z0-9_-]{2,256}$``) from a master value."""
    key = _KEY_UNSAFE.sub("-", value.strip()).strip("-") or "product"
    return (key if len(key) >= 2 else f"{key}-p")[:256]


def slug(name: str, key: str) -> str:
    """A slug unique by construction: the name for people, the key for uniqueness."""
    readable = _SLUG_UNSAFE.sub("-", name.lower()).strip("-")[:200]
    suffix = _SLUG_UNSAFE.sub("-", key.lower()).strip("-")
    return f"{readable}-{suffix}" if readable else suffix


def product_name(item_name: str, variant_values: Iterable[Any]) -> str:
    """The product's name from an item name of the form "<product>, <value>, <value>".

    ERPs name each item after its product followed by its variant label ("Organic Cotton
    T-Shirt, Navy, M"); commercetools names the product once. Trailing parts equal to one of the
    item's variant attribute values are dropped; anything else is kept as it is.
    """
    labels = {str(v) for v in variant_values if isinstance(v, str | int)}
    parts = item_name.split(", ")
    while len(parts) > 1 and parts[-1] in labels:
        parts.pop()
    return ", ".join(parts)


def _master_price(price: Any) -> MasterPrice:
    precise = getattr(price, "precise_amount", None)
    digits = int(price.fraction_digits)
    if precise is not None:
        precise = Decimal(precise)
        # A "precise" amount that fits the currency's digits is an ordinary cent price.
        if precise == precise.quantize(Decimal(1).scaleb(-digits)):
            precise = None
    return MasterPrice(
        scope=PriceScope(
            currency=str(price.currency).upper(),
            country=getattr(price, "country", None) or None,
            channel_key=getattr(price, "channel_key", None) or None,
        ),
        amount_minor=int(price.amount_minor),
        fraction_digits=digits,
        precise=precise,
    )


def master_variant(item: Any, rules: CatalogRules) -> tuple[MasterVariant, list[MasterIssue]]:
    issues: list[MasterIssue] = []
    prices: dict[PriceScope, MasterPrice] = {}
    for raw in item.prices:
        price = _master_price(raw)
        if price.scope in prices:
            issues.append(
                MasterIssue(
                    "duplicate_price_scope", item.sku, f"two prices for {price.scope.label()}"
                )
            )
            continue
        prices[price.scope] = price
    attributes = {
        name: value
        for name, value in sorted((item.attributes or {}).items())
        if rules.is_syndicated_attribute(name) and value is not None
    }
    variant = MasterVariant(
        sku=item.sku,
        item_no=item.item_no,
        name=item.name,
        attributes=attributes,
        prices=tuple(prices[s] for s in sorted(prices, key=PriceScope.label)),
        tax_code=item.tax_code,
        active=bool(item.active),
    )
    return variant, issues


def build_catalog(items: Iterable[Any], rules: CatalogRules | None = None) -> MasterCatalog:
    """Group master items into products, in a stable order (products and variants by key/SKU)."""
    rules = rules or CatalogRules()
    issues: list[MasterIssue] = []
    groups: dict[str, list[Any]] = defaultdict(list)
    seen: dict[str, str] = {}
    duplicates: set[str] = set()
    for item in items:
        if item.sku in seen:
            duplicates.add(item.sku)
            issues.append(
                MasterIssue(
                    "duplicate_sku",
                    item.sku,
                    f"items {seen[item.sku]} and {item.item_no} share SKU {item.sku}; the first wins",
                )
            )
            continue
        seen[item.sku] = item.item_no
        attributes = item.attributes or {}
        group = attributes.get(rules.product_key_attribute) or item.sku
        groups[product_key(str(group))].append(item)

    products: list[MasterProduct] = []
    attribute_names: set[str] = set()
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda i: i.sku)
        variants: list[MasterVariant] = []
        for item in members:
            variant, variant_issues = master_variant(item, rules)
            variants.append(variant)
            issues.extend(variant_issues)
            attribute_names.update(variant.attributes)
        first = members[0]
        name = (first.attributes or {}).get(rules.product_name_attribute) or product_name(
            first.name, variants[0].attributes.values()
        )
        tax_codes = {v.tax_code for v in variants}
        tax_code = first.tax_code
        if len(tax_codes) > 1:
            # commercetools has one tax category per product; the master variant's code wins.
            issues.append(
                MasterIssue(
                    "mixed_tax_codes",
                    key,
                    f"items carry tax codes {sorted(tax_codes)}; using {tax_code} of {first.sku}",
                )
            )
        tax_key = rules.tax_categories.get(tax_code)
        if tax_key is None:
            issues.append(
                MasterIssue("unknown_tax_code", key, f"tax code {tax_code!r} has no tax category")
            )
        products.append(
            MasterProduct(
                key=key,
                name={rules.locale: str(name)},
                slug={rules.locale: slug(str(name), key)},
                variants=tuple(variants),
                tax_code=tax_code,
                tax_category_key=tax_key,
            )
        )
    return MasterCatalog(
        products=products,
        issues=issues,
        duplicate_skus=sorted(duplicates),
        attribute_names=frozenset(attribute_names),
    )


__all__ = [
    "DEFAULT_TAX_CATEGORIES",
    "CatalogRules",
    "MasterCatalog",
    "MasterIssue",
    "MasterPrice",
    "MasterProduct",
    "MasterSource",
    "MasterVariant",
    "PriceScope",
    "build_catalog",
    "product_key",
    "product_name",
    "slug",
]
