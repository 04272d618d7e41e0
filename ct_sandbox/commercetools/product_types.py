"""Product types: drafts with attribute definitions, and checking product attributes against them.

A product whose ``productType`` is a stored product type may only carry attributes the type
defines (else 400 ``AttributeNameDoesNotExist`` with ``invalidAttributeName``), and an enum,
lenum (or set of them) attribute only one of the type's values (else 400 ``InvalidField`` with
``field``, ``invalidValue`` and ``allowedValues``). A reference to a product type the sandbox
does not store is still kept as given (a key becomes a stable synthetic id) and not checked.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from ct_sandbox.commercetools.common import (
    ApiError,
    Json,
    _check_key,
    _optional,
    _require,
    invalid_input,
    invalid_json,
)
from ct_sandbox.commercetools.core import SandboxCore

ATTRIBUTE_TYPES = frozenset(
    {
        "boolean", "text", "ltext", "enum", "lenum", "number", "money", "date", "time",
        "datetime", "reference", "set", "nested",
    }
)  # fmt: skip


def _enum_keys(attribute_type: Json) -> list[str] | None:
    """The allowed keys of an enum or lenum type (or a set of one); None for other types."""
    if attribute_type.get("name") == "set":
        return _enum_keys(attribute_type.get("elementType") or {})
    if attribute_type.get("name") in ("enum", "lenum"):
        return [str(value.get("key")) for value in attribute_type.get("values", [])]
    return None


def _value_keys(value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    return [v.get("key") if isinstance(v, dict) else v for v in values]


class ProductTypesMixin(SandboxCore):
    """Product types: drafts with attribute definitions; attribute checks for products."""

    def _product_type_draft(self, draft: Json) -> Json:
        where = "productTypeDraft"
        name = _require(draft, "name", str, where)
        description = _require(draft, "description", str, where)
        definitions: list[Json] = []
        for index, attribute in enumerate(_optional(draft, "attributes", list, where) or []):
            at = f"attributes[{index}]"
            if not isinstance(attribute, dict):
                raise invalid_json(f"{at}: expected an attribute definition")
            attribute_name = _require(attribute, "name", str, at)
            attribute_type = _require(attribute, "type", dict, at)
            if attribute_type.get("name") not in ATTRIBUTE_TYPES:
                raise invalid_json(
                    f"{at} -> type -> name: Invalid enum value: "
                    f"{json.dumps(attribute_type.get('name'))}."
                )
            if any(d["name"] == attribute_name for d in definitions):
                raise invalid_input(f"{at}: the attribute '{attribute_name}' is defined twice.")
            definitions.append(
                {
                    "name": attribute_name,
                    "type": copy.deepcopy(attribute_type),
                    "label": copy.deepcopy(attribute.get("label") or {"en": attribute_name}),
                    "isRequired": bool(attribute.get("isRequired", False)),
                    "attributeConstraint": attribute.get("attributeConstraint", "None"),
                    "isSearchable": bool(attribute.get("isSearchable", True)),
                    "inputHint": attribute.get("inputHint", "SingleLine"),
                }
            )
        product_type: Json = {"name": name, "description": description, "attributes": definitions}
        if draft.get("key") is not None:
            product_type["key"] = _check_key(draft["key"], "key")
        return self._stamp(product_type)

    def _stored_product_type(self, reference: Json) -> Json | None:
        """The stored product type a product's reference points at, if the sandbox holds it."""
        return self.store.get("product-types", str(reference.get("id")))

    def _product_type_reference(self, identifier: Json) -> Json | None:
        """A product draft's productType: the stored type (strict) or None if not stored."""
        if identifier.get("typeId", "product-type") != "product-type":
            raise invalid_input("productType: expected typeId 'product-type'.")
        if identifier.get("id") is not None:
            return self.store.get("product-types", str(identifier["id"]))
        if identifier.get("key") is not None:
            return self.store.get_by("product-types", "key", str(identifier["key"]))
        return None

    def _check_attributes(self, product_type: Json | None, attributes: list[Json]) -> None:
        if product_type is None:
            return
        definitions = {d["name"]: d for d in product_type.get("attributes", [])}
        for attribute in attributes:
            name = attribute["name"]
            definition = definitions.get(name)
            if definition is None:
                raise ApiError(
                    400,
                    "AttributeNameDoesNotExist",
                    f"Attribute '{name}' does not exist on product type "
                    f"'{product_type.get('key') or product_type['id']}'.",
                    invalidAttributeName=name,
                )
            allowed = _enum_keys(definition["type"])
            if allowed is None or attribute.get("value") is None:
                continue
            for key in _value_keys(attribute["value"]):
                if key not in allowed:
                    raise ApiError(
                        400,
                        "InvalidField",
                        f"The value '{json.dumps(key)}' is not valid for field '{name}'.",
                        field=name,
                        invalidValue=key,
                        allowedValues=allowed,
                    )
