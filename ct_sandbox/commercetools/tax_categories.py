"""Tax categories: drafts with their rates."""

from __future__ import annotations

import copy
import secrets

from ct_sandbox.commercetools.common import (
    MAX_TAX_CATEGORIES,
    ApiError,
    Json,
    _optional,
    _require,
    invalid_json,
)
from ct_sandbox.commercetools.core import SandboxCore


class TaxCategoriesMixin(SandboxCore):
    """Tax categories: drafts with their rates."""

    def _tax_category_draft(self, draft: Json) -> Json:
        if self.store.count("tax-categories") >= MAX_TAX_CATEGORIES:
            raise ApiError(
                400,
                "MaxResourceLimitExceeded",
                f"You have exceeded the limit of {MAX_TAX_CATEGORIES} tax categories.",
                exceededResource="tax-category",
            )
        category: Json = {"name": _require(draft, "name", str, "TaxCategoryDraft"), "rates": []}
        for name in ("key", "description"):
            if draft.get(name) is not None:
                category[name] = _require(draft, name, str, "TaxCategoryDraft")
        for index, rate in enumerate(_optional(draft, "rates", list, "TaxCategoryDraft") or []):
            where = f"rates[{index}]"
            if not isinstance(rate, dict):
                raise invalid_json(f"{where}: expected an object")
            amount = _require(rate, "amount", (int, float), where)
            if not 0 <= amount <= 1:
                raise ApiError(
                    400,
                    "InvalidField",
                    f"The value {amount} is not valid for field amount: a rate is a fraction "
                    "between 0 and 1 (0.2 for 20 %).",
                    field="amount",
                    invalidValue=amount,
                )
            category["rates"].append(
                {
                    "id": secrets.token_hex(4),
                    "name": _require(rate, "name", str, where),
                    "amount": amount,
                    "includedInPrice": _require(rate, "includedInPrice", bool, where),
                    "country": _require(rate, "country", str, where),
                    "subRates": copy.deepcopy(rate.get("subRates", [])),
                    **{k: rate[k] for k in ("state", "key") if rate.get(k) is not None},
                }
            )
        return self._stamp(category)
