"""Products: drafts, variants, prices, attributes, publish; product projections."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from ct_sandbox.commercetools.common import (
    MAX_PRICES,
    MAX_VARIANTS,
    ApiError,
    Json,
    Request,
    Response,
    _check_key,
    _optional,
    _price_scope,
    _require,
    invalid_input,
    invalid_json,
    invalid_operation,
    not_found,
    project_product,
    typed_money,
)
from ct_sandbox.commercetools.product_types import ProductTypesMixin
from ct_sandbox.predicates import (
    CompiledPredicate,
    projection_mapping,
)


class ProductsMixin(ProductTypesMixin):
    """Products: drafts, variants, prices, attributes, publish; product projections."""

    def _price(self, draft: Any, where: str, price_id: str | None = None) -> Json:
        if not isinstance(draft, dict):
            raise invalid_json(f"{where}: expected a price object")
        value = typed_money(draft.get("value"), f"{where} -> value")
        if value["currencyCode"] not in self.currencies:
            # Project.currencies: "A three-digit currency code ... that the Project supports".
            raise ApiError(
                400,
                "InvalidField",
                f"{where} -> value -> currencyCode: the currency '{value['currencyCode']}' is "
                f"not one of the project's currencies {list(self.currencies)}.",
                field="currencyCode",
                invalidValue=value["currencyCode"],
                allowedValues=list(self.currencies),
            )
        price: Json = {"id": price_id or str(uuid.uuid4()), "value": value}
        for name in ("key", "country", "validFrom", "validUntil", "tiers", "custom"):
            if draft.get(name) is not None:
                price[name] = copy.deepcopy(draft[name])
        if draft.get("channel") is not None:
            channel = self._reference(draft["channel"], "channel", f"{where} -> channel")
            price["channel"] = {"typeId": "channel", "id": channel["id"]}
        if draft.get("customerGroup") is not None:
            price["customerGroup"] = self._unmanaged_reference(
                draft["customerGroup"], "customer-group", f"{where} -> customerGroup"
            )
        return price

    @staticmethod
    def _check_prices(prices: list[Json]) -> None:
        if len(prices) > MAX_PRICES:
            raise invalid_input(f"A variant can have at most {MAX_PRICES} prices.")
        seen: set[tuple[Any, ...]] = set()
        for price in prices:
            scope = _price_scope(price)
            if scope in seen:
                raise ApiError(
                    400,
                    "DuplicatePriceScope",
                    "Duplicate price scope: "
                    f"{price['value']['currencyCode']}/{price.get('country') or '-'}; "
                    "prices of one variant need distinct scopes.",
                    conflictingPrice=price,
                )
            seen.add(scope)

    def _variant(self, draft: Any, variant_id: int, where: str) -> Json:
        if not isinstance(draft, dict):
            raise invalid_json(f"{where}: expected a variant object")
        variant: Json = {"id": variant_id}
        if draft.get("sku") is not None:
            variant["sku"] = _require(draft, "sku", str, where)
        if draft.get("key") is not None:
            variant["key"] = _require(draft, "key", str, where)
        prices = [
            self._price(p, f"{where} -> prices")
            for p in (_optional(draft, "prices", list, where) or [])
        ]
        self._check_prices(prices)
        variant["prices"] = prices
        attributes = _optional(draft, "attributes", list, where) or []
        for attribute in attributes:
            if not isinstance(attribute, dict) or not isinstance(attribute.get("name"), str):
                raise invalid_json(f"{where} -> attributes: each needs a name")
        variant["attributes"] = copy.deepcopy(attributes)
        variant["images"] = copy.deepcopy(draft.get("images", []))
        variant["assets"] = copy.deepcopy(draft.get("assets", []))
        return variant

    @staticmethod
    def _check_variant_skus(data: Json) -> None:
        skus = [v.get("sku") for v in [data["masterVariant"], *data["variants"]] if v.get("sku")]
        for sku in skus:
            if skus.count(sku) > 1:
                raise ApiError(
                    400,
                    "DuplicateField",
                    f"A duplicate value {json.dumps(sku)} exists for field 'sku'.",
                    field="sku",
                    duplicateValue=sku,
                )

    def _product_draft(self, draft: Json) -> Json:
        where = "ProductDraft"
        data: Json = {
            "name": copy.deepcopy(_require(draft, "name", dict, where)),
            "slug": copy.deepcopy(_require(draft, "slug", dict, where)),
            "categories": copy.deepcopy(draft.get("categories", [])),
            "categoryOrderHints": {},
            "searchKeywords": {},
        }
        if draft.get("description") is not None:
            data["description"] = copy.deepcopy(draft["description"])
        data["masterVariant"] = self._variant(draft.get("masterVariant") or {}, 1, "masterVariant")
        variants = _optional(draft, "variants", list, where) or []
        if len(variants) + 1 > MAX_VARIANTS:
            raise invalid_input(f"A product can have at most {MAX_VARIANTS} variants.")
        data["variants"] = [
            self._variant(v, i + 2, f"variants[{i}]") for i, v in enumerate(variants)
        ]
        self._check_variant_skus(data)
        type_reference = _require(draft, "productType", dict, where)
        stored_type = self._product_type_reference(type_reference)
        for variant in [data["masterVariant"], *data["variants"]]:
            self._check_attributes(stored_type, variant["attributes"])
        product: Json = {
            "productType": (
                {"typeId": "product-type", "id": stored_type["id"]}
                if stored_type is not None
                else self._unmanaged_reference(type_reference, "product-type", "productType")
            ),
            "masterData": {
                "published": bool(draft.get("publish", False)),
                "current": data,
                "staged": copy.deepcopy(data),
                "hasStagedChanges": False,
            },
        }
        if draft.get("key") is not None:
            product["key"] = _check_key(draft["key"], "key")
        if draft.get("taxCategory") is not None:
            category = self._reference(draft["taxCategory"], "tax-category", "taxCategory")
            product["taxCategory"] = {"typeId": "tax-category", "id": category["id"]}
        if draft.get("priceMode") is not None:
            product["priceMode"] = draft["priceMode"]
        return self._stamp(product)

    @staticmethod
    def _datas(doc: Json, action: Json) -> list[Json]:
        """The ProductData the action changes: staged only (default), or current and staged."""
        staged = action.get("staged", True)
        if not isinstance(staged, bool):
            raise invalid_json(f"{action['action']} -> staged: expected a boolean")
        master = doc["masterData"]
        return [master["staged"]] if staged else [master["current"], master["staged"]]

    @staticmethod
    def _all_variants(data: Json) -> list[Json]:
        return [data["masterVariant"], *data.get("variants", [])]

    def _variant_of(self, data: Json, action: Json) -> Json:
        variant_id = action.get("variantId")
        sku = action.get("sku")
        for variant in self._all_variants(data):
            if (variant_id is not None and variant["id"] == variant_id) or (
                variant_id is None and sku is not None and variant.get("sku") == sku
            ):
                return variant
        if variant_id is None and sku is None:
            raise invalid_input(f"{action['action']} needs variantId or sku.")
        raise invalid_input(
            f"{action['action']}: the product has no variant {json.dumps(variant_id or sku)}."
        )

    def _product_change_name(self, doc: Json, action: Json) -> None:
        name = _require(action, "name", dict, "changeName")
        for data in self._datas(doc, action):
            data["name"] = copy.deepcopy(name)

    def _product_change_slug(self, doc: Json, action: Json) -> None:
        slug = _require(action, "slug", dict, "changeSlug")
        for data in self._datas(doc, action):
            data["slug"] = copy.deepcopy(slug)

    def _product_set_description(self, doc: Json, action: Json) -> None:
        description = _optional(action, "description", dict, "setDescription")
        for data in self._datas(doc, action):
            if description is None:
                data.pop("description", None)
            else:
                data["description"] = copy.deepcopy(description)

    @staticmethod
    def _set_attribute(variant: Json, name: str, action: Json) -> None:
        attributes = [a for a in variant.get("attributes", []) if a.get("name") != name]
        if action.get("value") is not None:
            attributes.append({"name": name, "value": copy.deepcopy(action["value"])})
        variant["attributes"] = attributes

    def _product_set_attribute(self, doc: Json, action: Json) -> None:
        name = _require(action, "name", str, "setAttribute")
        self._check_attributes(
            self._stored_product_type(doc["productType"]), [{"name": name, **action}]
        )
        for data in self._datas(doc, action):
            self._set_attribute(self._variant_of(data, action), name, action)

    def _product_set_attribute_all(self, doc: Json, action: Json) -> None:
        name = _require(action, "name", str, "setAttributeInAllVariants")
        self._check_attributes(
            self._stored_product_type(doc["productType"]), [{"name": name, **action}]
        )
        for data in self._datas(doc, action):
            for variant in self._all_variants(data):
                self._set_attribute(variant, name, action)

    def _product_add_variant(self, doc: Json, action: Json) -> None:
        master = doc["masterData"]
        used = [
            v["id"] for d in (master["current"], master["staged"]) for v in self._all_variants(d)
        ]
        variant = self._variant(action, max(used) + 1, "addVariant")
        self._check_attributes(self._stored_product_type(doc["productType"]), variant["attributes"])
        for data in self._datas(doc, action):
            if len(self._all_variants(data)) >= MAX_VARIANTS:
                raise invalid_input(f"A product can have at most {MAX_VARIANTS} variants.")
            data.setdefault("variants", []).append(copy.deepcopy(variant))
            self._check_variant_skus(data)

    def _product_remove_variant(self, doc: Json, action: Json) -> None:
        variant_id = action.get("id", action.get("variantId"))
        for data in self._datas(doc, action):
            target = self._variant_of(data, {**action, "variantId": variant_id})
            if target is data["masterVariant"]:
                raise invalid_operation("The master variant cannot be removed.")
            data["variants"] = [v for v in data["variants"] if v is not target]

    def _product_set_prices(self, doc: Json, action: Json) -> None:
        drafts = _require(action, "prices", list, "setPrices")
        for data in self._datas(doc, action):
            prices = [self._price(p, "setPrices -> prices") for p in drafts]
            self._check_prices(prices)
            self._variant_of(data, action)["prices"] = prices

    def _product_add_price(self, doc: Json, action: Json) -> None:
        draft = _require(action, "price", dict, "addPrice")
        price_id = str(uuid.uuid4())
        for data in self._datas(doc, action):
            variant = self._variant_of(data, action)
            prices = [*variant.get("prices", []), self._price(draft, "addPrice -> price", price_id)]
            self._check_prices(prices)
            variant["prices"] = prices

    def _find_price(self, data: Json, price_id: Any, name: str) -> tuple[Json, int]:
        for variant in self._all_variants(data):
            for index, price in enumerate(variant.get("prices", [])):
                if price["id"] == price_id:
                    return variant, index
        raise invalid_input(f"{name}: the product has no price with id {json.dumps(price_id)}.")

    def _product_change_price(self, doc: Json, action: Json) -> None:
        price_id = _require(action, "priceId", str, "changePrice")
        draft = _require(action, "price", dict, "changePrice")
        for data in self._datas(doc, action):
            variant, index = self._find_price(data, price_id, "changePrice")
            prices = list(variant["prices"])
            prices[index] = self._price(draft, "changePrice -> price", price_id)
            self._check_prices(prices)
            variant["prices"] = prices

    def _product_remove_price(self, doc: Json, action: Json) -> None:
        price_id = _require(action, "priceId", str, "removePrice")
        for data in self._datas(doc, action):
            variant, index = self._find_price(data, price_id, "removePrice")
            variant["prices"] = [p for i, p in enumerate(variant["prices"]) if i != index]

    def _product_set_tax_category(self, doc: Json, action: Json) -> None:
        if "staged" in action:
            # The tax category is not part of ProductData: it cannot be staged.
            raise invalid_input("setTaxCategory cannot be staged; remove the 'staged' field.")
        if action.get("taxCategory") is None:
            doc.pop("taxCategory", None)
            return
        category = self._reference(action["taxCategory"], "tax-category", "setTaxCategory")
        doc["taxCategory"] = {"typeId": "tax-category", "id": category["id"]}

    def _product_set_sku(self, doc: Json, action: Json) -> None:
        variant_id = _require(action, "variantId", int, "setSku")
        sku = _optional(action, "sku", str, "setSku")
        for data in self._datas(doc, action):
            variant = self._variant_of(data, {"action": "setSku", "variantId": variant_id})
            old = variant.get("sku")
            if (
                old is not None
                and old != sku
                and self.store.get_by("inventory", "sku", old) is not None
            ):
                raise invalid_operation(
                    f"The SKU '{old}' is used by inventory entries and cannot be changed."
                )
            if sku is None:
                variant.pop("sku", None)
            else:
                variant["sku"] = sku
            self._check_variant_skus(data)

    def _product_publish(self, doc: Json, action: Json) -> None:
        master = doc["masterData"]
        scope = action.get("scope", "All")
        if scope == "All":
            master["current"] = copy.deepcopy(master["staged"])
        elif scope == "Prices":
            staged_prices = {
                v["id"]: v.get("prices", []) for v in self._all_variants(master["staged"])
            }
            for variant in self._all_variants(master["current"]):
                if variant["id"] in staged_prices:
                    variant["prices"] = copy.deepcopy(staged_prices[variant["id"]])
        else:
            raise invalid_json(f"publish -> scope: Invalid enum value: {json.dumps(scope)}")
        master["published"] = True

    def _product_unpublish(self, doc: Json, action: Json) -> None:
        doc["masterData"]["published"] = False

    def _projections(self, request: Request, identifier: str | None) -> Response:
        staged = self._bool_param(request, "staged", False)
        if identifier is None:
            published: tuple[CompiledPredicate, ...] = ()
            if not staged:
                published = (
                    CompiledPredicate("json_type(d.body, '$.masterData.published') = 'true'", []),
                )
            return self._query(
                request,
                "products",
                projection_mapping(staged),
                published,
                transform=lambda doc: project_product(doc, staged),
            )
        doc = self._find("products", identifier)
        if not staged and not doc["masterData"].get("published"):
            raise not_found(f"The Resource with ID '{identifier}' was not found.")
        return self._document_response(200, "products", project_product(doc, staged), request)
