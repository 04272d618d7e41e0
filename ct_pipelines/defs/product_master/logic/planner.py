"""Minimal commercetools update actions that bring products in line with the master.

Built the way commercetools-sync-java builds them: field by field, an action only where a
mastered value differs (``changeName``, ``setAttribute``, ``changePrice`` / ``addPrice`` /
``removePrice`` matched by price scope, ``setTaxCategory``, ``addVariant``,
``publish`` / ``unpublish``). Products are compared on plain commercetools JSON, against the
staged data (which equals the current data when nothing is staged), so a product that already
matches gets no request at all.

**Master rule.** A difference has one of two causes: the master changed (syndicate it) or
someone edited a mastered field in commercetools (drift). The baseline, the mastered values as of
the last successful sync, tells them apart: if the master's value still equals the baseline, the
difference was made in commercetools. Drift is reverted or only reported, by policy. Without a
baseline (first sync, new SKU) every difference is syndication: the master is authoritative.

**Staged and published.** Mastered changes are staged and followed by ``publish`` when the
policy publishes. If the staged data holds an edit that is reported rather than reverted,
``publish`` would make that edit live too; then the actions are applied to current and staged
data directly (``staged: false``) instead of publishing. ``setTaxCategory`` cannot be staged.

**Never delete.** No action removes a product or variant. A product the master deactivated is
unpublished (policy ``unpublish``) or keeps selling data with its variants flagged through an
attribute (policy ``flag``); a single deactivated variant of a live product is always flagged,
as commercetools cannot unpublish one variant.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ct_pipelines.defs.product_master.logic.master import (
    MasterCatalog,
    MasterPrice,
    MasterProduct,
    MasterVariant,
)
from ct_pipelines.defs.product_master.logic.master import PriceScope as PriceScope
from ct_pipelines.defs.product_master.logic.values import attribute_text, ct_money_text

MAX_ACTIONS_PER_REQUEST = 500

DriftPolicy = Literal["revert", "report"]
DeactivationPolicy = Literal["unpublish", "flag"]
UnresolvedTaxPolicy = Literal["unpublished", "skip"]
Baseline = dict[str, dict[str, str]]  # entity -> mastered field -> canonical value
ChangeKind = Literal["syndicate", "drift"]

EXISTS = "exists"
PRESENT = "yes"
NAME = "name"
TAX_CATEGORY = "taxCategory"
PUBLISHED = "published"
ATTRIBUTE = "attribute:"
PRICE = "price:"


@dataclass(frozen=True, slots=True)
class ProductOptions:
    drift: DriftPolicy = "revert"
    publish: bool = True
    deactivation: DeactivationPolicy = "unpublish"
    # Boolean attribute that marks a deactivated variant; None turns flagging off.
    flag_attribute: str | None = "discontinued"
    # Product type for products the sync creates; None reuses the type most products have.
    product_type_key: str | None = None
    # A product whose tax category cannot be resolved: created unpublished, or not created.
    unresolved_tax: UnresolvedTaxPolicy = "unpublished"


def product_entity(key: str) -> str:
    return f"product:{key}"


def sku_entity(sku: str) -> str:
    return f"sku:{sku}"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One mastered field that differs between the master and commercetools."""

    entity: str  # product:<key> or sku:<sku>
    field: str  # exists, name, taxCategory, published, attribute:<name>, price:<scope>
    master: str | None
    commercetools: str | None
    kind: ChangeKind
    applied: bool  # actions planned: syndication, or drift being reverted


@dataclass(frozen=True, slots=True)
class PlanIssue:
    """Something the sync cannot do as asked; reported, never fatal to the other products."""

    kind: str
    entity: str
    detail: str


@dataclass(slots=True)
class ProductItemPlan:
    product_key: str
    product_id: str | None = None
    version: int | None = None
    skus: int = 0
    draft: dict[str, Any] | None = None  # ProductDraft when the product is created
    actions: list[dict[str, Any]] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)
    issues: list[PlanIssue] = field(default_factory=list)

    @property
    def requests(self) -> int:
        if self.draft is not None:
            return 1
        return math.ceil(len(self.actions) / MAX_ACTIONS_PER_REQUEST)

    @property
    def drift(self) -> list[FieldChange]:
        return [c for c in self.changes if c.kind == "drift"]


@dataclass(slots=True)
class ProductPlan:
    policy: ProductOptions
    plans: list[ProductItemPlan]
    issues: list[PlanIssue]
    products: int
    skus: int

    @property
    def creates(self) -> list[ProductItemPlan]:
        return [p for p in self.plans if p.draft is not None]

    @property
    def updates(self) -> list[ProductItemPlan]:
        return [p for p in self.plans if p.draft is None and p.actions]

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.plans)

    @property
    def update_requests(self) -> int:
        return sum(p.requests for p in self.updates)

    def changes(self) -> Iterator[FieldChange]:
        for plan in self.plans:
            yield from plan.changes

    def action_counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for plan in self.plans:
            counts.update(a["action"] for a in plan.actions)
            if plan.draft is not None:
                counts["createProduct"] += 1
        return dict(sorted(counts.items()))

    def drift_counts(self) -> dict[str, int]:
        drift = [c for c in self.changes() if c.kind == "drift"]
        return {
            "detected": len(drift),
            "reverted": sum(1 for c in drift if c.applied),
            "reported": sum(1 for c in drift if not c.applied),
        }


# --- commercetools side ---------------------------------------------------------------------


def variants_of(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    master = data.get("masterVariant")
    return ([master] if master else []) + list(data.get("variants") or [])


class CommercetoolsCatalog:
    """Products as the API returns them (plain JSON), indexed for the planner and parity.

    ``channel_keys`` and ``tax_category_keys`` map ids to keys: the master speaks in keys,
    commercetools references by id. ``product_types`` (ProductType JSON) and ``currencies``
    (the project's) map drafts onto what the project accepts; None when not known (then
    nothing is checked against them).
    """

    def __init__(
        self,
        products: Iterable[dict[str, Any]],
        *,
        channel_keys: Mapping[str, str],
        tax_category_keys: Mapping[str, str],
        product_types: Iterable[Mapping[str, Any]] | None = None,
        currencies: Collection[str] | None = None,
    ) -> None:
        self.products: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.sku_owners: dict[str, set[str]] = defaultdict(set)
        self.channel_keys = dict(channel_keys)
        self.channel_ids = {key: id_ for id_, key in channel_keys.items()}
        self.tax_category_keys = dict(tax_category_keys)
        self.tax_category_ids = {key: id_ for id_, key in tax_category_keys.items()}
        self.product_types: dict[str, Mapping[str, Any]] | None = (
            None if product_types is None else {t["id"]: t for t in product_types}
        )
        self.currencies = None if currencies is None else {c.upper() for c in currencies}
        for doc in products:
            self.add(doc)

    def product_type_doc(self, reference: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The ProductType JSON of a reference or identifier (by id or key), when known."""
        if reference is None or self.product_types is None:
            return None
        if reference.get("id"):
            return self.product_types.get(str(reference["id"]))
        key = reference.get("key")
        return next((t for t in self.product_types.values() if t.get("key") == key), None)

    def add(self, doc: dict[str, Any]) -> None:
        """Index (or re-index) one product."""
        self.products[doc["id"]] = doc
        if doc.get("key"):
            self.by_key[doc["key"]] = doc["id"]
        for view in ("current", "staged"):
            for variant in variants_of(doc["masterData"][view]):
                if variant.get("sku"):
                    self.sku_owners[variant["sku"]].add(doc["id"])

    def __len__(self) -> int:
        return len(self.products)

    def find(self, product: MasterProduct) -> tuple[dict[str, Any] | None, list[PlanIssue]]:
        """The commercetools product for a master product: by key, else by its SKUs."""
        found = self.by_key.get(product.key)
        if found is not None:
            return self.products[found], []
        owners = [owner for sku in product.skus for owner in sorted(self.sku_owners.get(sku, ()))]
        if not owners:
            return None, []
        issues = []
        if len(set(owners)) > 1:
            issues.append(
                PlanIssue(
                    "skus_split_across_products",
                    product_entity(product.key),
                    f"its SKUs are in {len(set(owners))} commercetools products; "
                    f"syncing the one holding {product.skus[0]}",
                )
            )
        return self.products[owners[0]], issues

    def product_type(self) -> dict[str, Any] | None:
        """The product type most existing products use (for creating products)."""
        counts = Counter(
            doc["productType"]["id"] for doc in self.products.values() if doc.get("productType")
        )
        if not counts:
            return None
        return {"typeId": "product-type", "id": counts.most_common(1)[0][0]}

    def price_scope(self, price: Mapping[str, Any]) -> PriceScope:
        channel = price.get("channel")
        channel_key = None
        if channel:
            channel_key = self.channel_keys.get(channel["id"]) or f"#{channel['id']}"
        group = price.get("customerGroup")
        return PriceScope(
            currency=str(price["value"]["currencyCode"]).upper(),
            country=price.get("country") or None,
            channel_key=channel_key,
            customer_group=group["id"] if group else None,
            valid_from=price.get("validFrom"),
            valid_until=price.get("validUntil"),
        )

    def tax_category_key(self, doc: Mapping[str, Any]) -> str | None:
        reference = doc.get("taxCategory")
        if not reference:
            return None
        return self.tax_category_keys.get(reference["id"], f"#{reference['id']}")


# --- what the master asserts ----------------------------------------------------------------


def desired_published(product: MasterProduct, policy: ProductOptions) -> bool | None:
    """True/False when the policy decides publication; None leaves it as it is."""
    if product.active:
        return True if policy.publish else None
    return False if policy.deactivation == "unpublish" else None


def desired_flag(
    product: MasterProduct, variant: MasterVariant, policy: ProductOptions
) -> bool | None:
    if not policy.flag_attribute:
        return None
    if policy.deactivation == "flag" or product.active:
        return not variant.active
    return None  # the whole product is unpublished instead


def _bool_text(value: bool) -> str:
    return attribute_text(value) or ""


def _name_text(name: Mapping[str, Any], locales: Iterable[str]) -> str:
    return json.dumps({loc: name.get(loc) for loc in sorted(locales)}, ensure_ascii=False)


def master_values(
    product: MasterProduct, policy: ProductOptions, attribute_names: Iterable[str]
) -> Baseline:
    """Everything the master asserts about one product, as the baseline stores it."""
    names = sorted(set(attribute_names))
    values: Baseline = {}
    own: dict[str, str] = {NAME: _name_text(product.name, product.name)}
    if product.active:
        own[EXISTS] = PRESENT
    if product.tax_category_key is not None:
        own[TAX_CATEGORY] = product.tax_category_key
    published = desired_published(product, policy)
    if published is not None:
        own[PUBLISHED] = _bool_text(published)
    values[product_entity(product.key)] = own
    for variant in product.variants:
        fields: dict[str, str] = {}
        if variant.active:
            fields[EXISTS] = PRESENT
        for name in names:
            text = attribute_text(variant.attributes.get(name))
            if text is not None:
                fields[ATTRIBUTE + name] = text
        flag = desired_flag(product, variant, policy)
        if flag is not None and policy.flag_attribute:
            fields[ATTRIBUTE + policy.flag_attribute] = _bool_text(flag)
        for price in variant.prices:
            fields[PRICE + price.scope.label()] = price.text()
        values[sku_entity(variant.sku)] = fields
    return values


# --- fitting drafts to the product type --------------------------------------------------------


def _enum_keys(attribute_type: Mapping[str, Any]) -> set[str] | None:
    """The allowed keys of an enum/lenum type (or a set of them); None for other types."""
    if attribute_type.get("name") == "set":
        return _enum_keys(attribute_type.get("elementType") or {})
    if attribute_type.get("name") in ("enum", "lenum"):
        return {str(v["key"]) for v in attribute_type.get("values") or []}
    return None


def _value_keys(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [str(v["key"]) if isinstance(v, dict) and "key" in v else str(v) for v in values]


def attribute_misfit(product_type: Mapping[str, Any], name: str, value: Any) -> str | None:
    """Why ``name = value`` does not fit the product type, or None when it does."""
    definitions = {a["name"]: a for a in product_type.get("attributes") or []}
    definition = definitions.get(name)
    type_name = product_type.get("key") or product_type.get("id")
    if definition is None:
        return f"attribute {name!r} is not defined by product type {type_name!r}"
    allowed = _enum_keys(definition.get("type") or {})
    if allowed is not None and value is not None:
        wrong = [k for k in _value_keys(value) if k not in allowed]
        if wrong:
            return (
                f"attribute {name!r}: value {', '.join(map(repr, wrong))} is not among the "
                f"enum values of product type {type_name!r}"
            )
    return None


# --- planning -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Diff:
    entity: str
    field: str
    master: str | None
    commercetools: str | None
    actions: list[dict[str, Any]]


class ProductPlanner:
    """Plans one product at a time; also rebuilds a plan after a 409 from the fresh product."""

    def __init__(
        self,
        catalog: CommercetoolsCatalog,
        policy: ProductOptions,
        baseline: Baseline | None,
        attribute_names: Iterable[str],
    ) -> None:
        self.catalog = catalog
        self.policy = policy
        self.baseline = baseline or {}
        self.attribute_names = sorted(set(attribute_names) - {policy.flag_attribute})

    # classification ---------------------------------------------------------------------------

    def kind(self, entity: str, field_name: str, master: str | None) -> ChangeKind:
        base = self.baseline.get(entity)
        if base is None or base.get(field_name) != master:
            return "syndicate"
        return "drift"

    def _record(self, plan: ProductItemPlan, diff: _Diff) -> bool:
        kind = self.kind(diff.entity, diff.field, diff.master)
        applied = kind == "syndicate" or self.policy.drift == "revert"
        plan.changes.append(
            FieldChange(diff.entity, diff.field, diff.master, diff.commercetools, kind, applied)
        )
        return applied

    # drafts -------------------------------------------------------------------------------------

    def price_draft(
        self, price: MasterPrice, sku: str, plan: ProductItemPlan
    ) -> dict[str, Any] | None:
        currencies = self.catalog.currencies
        if currencies is not None and price.scope.currency not in currencies:
            plan.issues.append(
                PlanIssue(
                    "currency_not_in_project",
                    sku_entity(sku),
                    f"price {price.scope.label()}: the project has no currency "
                    f"{price.scope.currency} (it has {', '.join(sorted(currencies))}); not sent",
                )
            )
            return None
        draft: dict[str, Any] = {"value": price.money_draft()}
        if price.scope.country:
            draft["country"] = price.scope.country
        if price.scope.channel_key:
            channel_id = self.catalog.channel_ids.get(price.scope.channel_key)
            if channel_id is None:
                plan.issues.append(
                    PlanIssue(
                        "unknown_channel",
                        sku_entity(sku),
                        f"price {price.scope.label()}: no commercetools channel "
                        f"{price.scope.channel_key!r}",
                    )
                )
                return None
            draft["channel"] = {"typeId": "channel", "id": channel_id}
        return draft

    def _attributes(self, product: MasterProduct, variant: MasterVariant) -> dict[str, Any]:
        wanted = {n: variant.attributes[n] for n in self.attribute_names if n in variant.attributes}
        flag = desired_flag(product, variant, self.policy)
        if flag and self.policy.flag_attribute:
            wanted[self.policy.flag_attribute] = True
        return wanted

    def fits(
        self,
        product_type: Mapping[str, Any] | None,
        sku: str,
        name: str,
        value: Any,
        plan: ProductItemPlan,
    ) -> bool:
        """True when the attribute may be sent; a misfit is reported for the SKU."""
        if product_type is None:
            return True
        why = attribute_misfit(product_type, name, value)
        if why is None:
            return True
        plan.issues.append(PlanIssue("attribute_not_in_type", sku_entity(sku), why + "; not sent"))
        return False

    def variant_draft(
        self,
        product: MasterProduct,
        variant: MasterVariant,
        plan: ProductItemPlan,
        product_type: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        prices = [self.price_draft(p, variant.sku, plan) for p in variant.prices]
        return {
            "sku": variant.sku,
            "prices": [p for p in prices if p is not None],
            "attributes": [
                {"name": n, "value": v}
                for n, v in self._attributes(product, variant).items()
                if self.fits(product_type, variant.sku, n, v, plan)
            ],
        }

    def _type_of(self, product_id: str) -> Mapping[str, Any] | None:
        doc = self.catalog.products.get(product_id)
        return self.catalog.product_type_doc(doc.get("productType") if doc else None)

    def product_draft(
        self, product: MasterProduct, variants: list[MasterVariant], plan: ProductItemPlan
    ) -> dict[str, Any] | None:
        if self.policy.product_type_key:
            product_type: dict[str, Any] | None = {
                "typeId": "product-type",
                "key": self.policy.product_type_key,
            }
        else:
            product_type = self.catalog.product_type()
        if product_type is None:
            plan.issues.append(
                PlanIssue(
                    "no_product_type",
                    product_entity(product.key),
                    "no product type configured and none to reuse; product not created",
                )
            )
            return None
        if self.catalog.product_types is not None:
            type_doc = self.catalog.product_type_doc(product_type)
            if type_doc is None:
                plan.issues.append(
                    PlanIssue(
                        "unknown_product_type",
                        product_entity(product.key),
                        f"product type {product_type} does not exist in the project; "
                        "product not created",
                    )
                )
                return None
        else:
            type_doc = None
        tax_id = self._tax_category_id(product, plan)
        publish = self.policy.publish
        if tax_id is None:
            skip = self.policy.unresolved_tax == "skip"
            plan.issues.append(
                PlanIssue(
                    "unresolved_tax_category",
                    product_entity(product.key),
                    (
                        f"tax category {product.tax_category_key!r} cannot be resolved"
                        if product.tax_category_key
                        else "the master gives no tax category"
                    )
                    + ("; product not created" if skip else "; product created unpublished"),
                )
            )
            if skip:
                return None
            publish = False
        drafts = [self.variant_draft(product, v, plan, type_doc) for v in variants]
        draft: dict[str, Any] = {
            "key": product.key,
            "productType": product_type,
            "name": dict(product.name),
            "slug": dict(product.slug),
            "masterVariant": drafts[0],
            "variants": drafts[1:],
            "publish": publish,
        }
        if tax_id is not None:
            draft["taxCategory"] = {"typeId": "tax-category", "id": tax_id}
        return draft

    def _tax_category_id(self, product: MasterProduct, plan: ProductItemPlan) -> str | None:
        if product.tax_category_key is None:
            return None
        tax_id = self.catalog.tax_category_ids.get(product.tax_category_key)
        if tax_id is None:
            plan.issues.append(
                PlanIssue(
                    "unknown_tax_category",
                    product_entity(product.key),
                    f"no commercetools tax category {product.tax_category_key!r}",
                )
            )
        return tax_id

    # the plan -----------------------------------------------------------------------------------

    def plan(self, product: MasterProduct, doc: Mapping[str, Any] | None) -> ProductItemPlan:
        if doc is None:
            return self._plan_create(product)
        return self._plan_update(product, doc)

    def _creatable(self, product: MasterProduct, plan: ProductItemPlan) -> list[MasterVariant]:
        creatable = []
        for variant in product.variants:
            if not variant.active:
                continue  # the master has withdrawn it: nothing to syndicate
            if self.catalog.sku_owners.get(variant.sku):
                plan.issues.append(
                    PlanIssue(
                        "sku_in_other_product",
                        sku_entity(variant.sku),
                        f"SKU {variant.sku} already belongs to another commercetools product",
                    )
                )
                continue
            creatable.append(variant)
        return creatable

    def _plan_create(self, product: MasterProduct) -> ProductItemPlan:
        plan = ProductItemPlan(product.key)
        if not product.active:
            return plan
        entity = product_entity(product.key)
        variants = self._creatable(product, plan)
        if not variants:
            return plan
        if not self._record(plan, _Diff(entity, EXISTS, PRESENT, None, [])):
            return plan  # deleted in commercetools, and drift is only reported
        plan.draft = self.product_draft(product, variants, plan)
        return plan

    def _plan_update(self, product: MasterProduct, doc: Mapping[str, Any]) -> ProductItemPlan:
        plan = ProductItemPlan(product.key, product_id=doc["id"], version=int(doc["version"]))
        master_data = doc["masterData"]
        published = bool(master_data.get("published"))
        staged_diffs = self._diff_data(product, doc["id"], master_data["staged"], plan)
        current_diffs: set[tuple[str, str]] = set()
        current_values: dict[tuple[str, str], str | None] = {}
        if master_data.get("hasStagedChanges"):
            for diff in self._diff_data(product, doc["id"], master_data["current"], None):
                current_diffs.add((diff.entity, diff.field))
                current_values[(diff.entity, diff.field)] = diff.commercetools

        data_actions: list[dict[str, Any]] = []
        staged_only_drift_kept = False
        for diff in staged_diffs:
            if self._record(plan, diff):
                data_actions.extend(diff.actions)
            elif (diff.entity, diff.field) not in current_diffs:
                # Reported, not reverted, and not live yet: publishing would make it live.
                staged_only_drift_kept = True

        other_actions: list[dict[str, Any]] = []
        entity = product_entity(product.key)
        tax_id = self._tax_category_id(product, plan)
        ct_tax = self.catalog.tax_category_key(doc)
        if tax_id is not None and ct_tax != product.tax_category_key:
            tax_diff = _Diff(
                entity,
                TAX_CATEGORY,
                product.tax_category_key,
                ct_tax,
                [
                    {
                        "action": "setTaxCategory",
                        "taxCategory": {"typeId": "tax-category", "id": tax_id},
                    }
                ],
            )
            if self._record(plan, tax_diff):
                other_actions.extend(tax_diff.actions)

        want = desired_published(product, self.policy)
        if want and not published and tax_id is None and ct_tax is None:
            # Publishing a product without a tax category puts it on sale unorderable.
            plan.issues.append(
                PlanIssue(
                    "unresolved_tax_category",
                    entity,
                    "no resolvable tax category; product left unpublished",
                )
            )
            want = None
        publishing = False
        unpublishing = False
        if want is not None and want != published:
            action = "publish" if want else "unpublish"
            publish_diff = _Diff(
                entity, PUBLISHED, _bool_text(want), _bool_text(published), [{"action": action}]
            )
            if self._record(plan, publish_diff):
                publishing, unpublishing = want, not want

        pending = bool(current_diffs - {(d.entity, d.field) for d in staged_diffs})
        live = published or publishing
        if unpublishing:
            data_actions.append({"action": "unpublish"})
        elif self.policy.publish and live and (data_actions or pending or publishing):
            if staged_only_drift_kept:
                # Make the master's values live without publishing the reported edit.
                for data_action in data_actions:
                    data_action["staged"] = False
                plan.issues.append(
                    PlanIssue(
                        "applied_without_publish",
                        entity,
                        "staged data holds a reported edit; changes applied to current data "
                        "directly instead of publishing",
                    )
                )
                if publishing:
                    data_actions.append({"action": "publish"})
            else:
                data_actions.append({"action": "publish"})
        plan.actions = [*other_actions, *data_actions]
        return plan

    def _diff_data(
        self,
        product: MasterProduct,
        product_id: str,
        data: Mapping[str, Any],
        plan: ProductItemPlan | None,
    ) -> list[_Diff]:
        """Differences between the master and one ProductData (staged or current).

        ``plan`` collects issues; None when only the differing fields matter (current data).
        """
        scratch = plan if plan is not None else ProductItemPlan(product.key)
        diffs: list[_Diff] = []
        entity = product_entity(product.key)
        ct_name = data.get("name") or {}
        master_name = _name_text(product.name, product.name)
        name_now = _name_text(ct_name, product.name)
        if master_name != name_now:
            merged = {**ct_name, **product.name}
            diffs.append(
                _Diff(
                    entity,
                    NAME,
                    master_name,
                    name_now,
                    [{"action": "changeName", "name": merged, "staged": True}],
                )
            )
        ct_variants = {v["sku"]: v for v in variants_of(data) if v.get("sku")}
        for variant in product.variants:
            ct_variant = ct_variants.get(variant.sku)
            if ct_variant is None:
                diffs.extend(self._missing_variant(product, variant, product_id, scratch))
                continue
            diffs.extend(
                self._variant_diffs(
                    product, variant, ct_variant, scratch, self._type_of(product_id)
                )
            )
        return diffs

    def _missing_variant(
        self, product: MasterProduct, variant: MasterVariant, product_id: str, plan: ProductItemPlan
    ) -> list[_Diff]:
        if not variant.active:
            return []
        if self.catalog.sku_owners.get(variant.sku, set()) - {product_id}:
            plan.issues.append(
                PlanIssue(
                    "sku_in_other_product",
                    sku_entity(variant.sku),
                    f"SKU {variant.sku} belongs to another commercetools product",
                )
            )
            return []
        draft = self.variant_draft(product, variant, plan, self._type_of(product_id))
        return [
            _Diff(
                sku_entity(variant.sku),
                EXISTS,
                PRESENT,
                None,
                [{"action": "addVariant", **draft, "staged": True}],
            )
        ]

    def _variant_diffs(
        self,
        product: MasterProduct,
        variant: MasterVariant,
        ct_variant: Mapping[str, Any],
        plan: ProductItemPlan,
        product_type: Mapping[str, Any] | None = None,
    ) -> list[_Diff]:
        diffs: list[_Diff] = []
        entity = sku_entity(variant.sku)
        variant_id = ct_variant["id"]
        ct_attributes = {a["name"]: a.get("value") for a in ct_variant.get("attributes") or []}
        for name in self.attribute_names:
            raw = variant.attributes.get(name)
            ct_raw = ct_attributes.get(name)
            if type(raw) is str and type(ct_raw) is str and raw == ct_raw:
                continue  # the common case, without canonicalising
            master = attribute_text(raw)
            current = attribute_text(ct_raw)
            if master != current:
                if raw is not None and not self.fits(product_type, variant.sku, name, raw, plan):
                    continue
                action: dict[str, Any] = {
                    "action": "setAttribute",
                    "variantId": variant_id,
                    "name": name,
                    "staged": True,
                }
                if raw is not None:
                    action["value"] = raw
                diffs.append(_Diff(entity, ATTRIBUTE + name, master, current, [action]))
        flag = desired_flag(product, variant, self.policy)
        if flag is not None and self.policy.flag_attribute:
            name = self.policy.flag_attribute
            # An absent flag reads as "not flagged", so active variants need no attribute.
            current = attribute_text(ct_attributes.get(name)) or _bool_text(False)
            master = _bool_text(flag)
            # A type without the flag attribute would refuse the whole update: report, skip.
            if master != current and self.fits(product_type, variant.sku, name, flag, plan):
                action = {
                    "action": "setAttribute",
                    "variantId": variant_id,
                    "name": name,
                    "value": flag,
                    "staged": True,
                }
                diffs.append(_Diff(entity, ATTRIBUTE + name, master, current, [action]))
        diffs.extend(self._price_diffs(variant, ct_variant, plan))
        return diffs

    def _price_diffs(
        self, variant: MasterVariant, ct_variant: Mapping[str, Any], plan: ProductItemPlan
    ) -> list[_Diff]:
        entity = sku_entity(variant.sku)
        diffs: list[_Diff] = []
        ct_prices: dict[PriceScope, Mapping[str, Any]] = {}
        extra: list[Mapping[str, Any]] = []
        for price in ct_variant.get("prices") or []:
            scope = self.catalog.price_scope(price)
            if scope in ct_prices:
                extra.append(price)  # a duplicate scope the API should have refused
            else:
                ct_prices[scope] = price
        for price in variant.prices:
            existing = ct_prices.pop(price.scope, None)
            if existing is not None and _same_cents(price, existing["value"]):
                continue  # the common case, decided on integers
            master = price.text()
            current = ct_money_text(existing["value"]) if existing is not None else None
            if master == current:
                continue
            draft = self.price_draft(price, variant.sku, plan)
            if draft is None:
                continue
            if existing is None:
                action = {
                    "action": "addPrice",
                    "variantId": ct_variant["id"],
                    "price": draft,
                    "staged": True,
                }
            else:
                action = {
                    "action": "changePrice",
                    "priceId": existing["id"],
                    "price": draft,
                    "staged": True,
                }
            diffs.append(_Diff(entity, PRICE + price.scope.label(), master, current, [action]))
        for scope, price in [
            *ct_prices.items(),
            *((self.catalog.price_scope(p), p) for p in extra),
        ]:
            diffs.append(
                _Diff(
                    entity,
                    PRICE + scope.label(),
                    None,
                    ct_money_text(price["value"]),
                    [{"action": "removePrice", "priceId": price["id"], "staged": True}],
                )
            )
        return diffs


def _same_cents(price: MasterPrice, money: Mapping[str, Any]) -> bool:
    return (
        price.precise is None
        and money.get("type", "centPrecision") == "centPrecision"
        and money.get("centAmount") == price.amount_minor
        and money.get("fractionDigits", price.fraction_digits) == price.fraction_digits
        and money.get("currencyCode") == price.scope.currency
    )


def plan_sync(
    master: MasterCatalog,
    commercetools: CommercetoolsCatalog,
    policy: ProductOptions | None = None,
    baseline: Baseline | None = None,
) -> ProductPlan:
    """The plan for the whole catalogue: one ProductItemPlan per master product."""
    policy = policy or ProductOptions()
    planner = ProductPlanner(commercetools, policy, baseline, master.attribute_names)
    plans: list[ProductItemPlan] = []
    issues: list[PlanIssue] = [
        PlanIssue(issue.kind, issue.entity, issue.detail) for issue in master.issues
    ]
    for product in master.products:
        doc, find_issues = commercetools.find(product)
        plan = planner.plan(product, doc)
        plan.skus = len(product.variants)
        plan.issues[:0] = find_issues
        plans.append(plan)
        issues.extend(plan.issues)
    return ProductPlan(
        policy=policy,
        plans=plans,
        issues=issues,
        products=len(master.products),
        skus=master.sku_count,
    )


def next_baseline(
    previous: Baseline | None,
    master: MasterCatalog,
    policy: ProductOptions,
    failed_products: Iterable[str] = (),
) -> Baseline:
    """The baseline after a sync: the master's values, except for products whose sync failed.

    A failed product keeps its previous entries, so the unsent master change is still seen as
    a master change next time (not mistaken for an edit made in commercetools).
    """
    previous = previous or {}
    failed = set(failed_products)
    baseline: Baseline = {}
    for product in master.products:
        values = master_values(product, policy, master.attribute_names)
        if product.key in failed:
            for entity in values:
                if entity in previous:
                    baseline[entity] = previous[entity]
            continue
        baseline.update(values)
    return baseline


__all__ = [
    "Baseline",
    "CommercetoolsCatalog",
    "FieldChange",
    "PlanIssue",
    "PriceScope",
    "ProductItemPlan",
    "ProductOptions",
    "ProductPlan",
    "ProductPlanner",
    "desired_flag",
    "desired_published",
    "master_values",
    "next_baseline",
    "plan_sync",
    "product_entity",
    "sku_entity",
    "variants_of",
]
