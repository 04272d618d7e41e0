"""The product master and product sync as tables: one row per SKU, one row per product."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ct_pipelines.defs.product_master.logic.planner import ProductPlan
from ct_pipelines.defs.product_master.logic.sync import ProductReport

PRODUCT_MASTER_COLUMNS: dict[str, str] = {
    "sku": "stock keeping unit, the key shared with commercetools",
    "item_no": "the master system's item number",
    "name": "item name",
    "tax_code": "the master's tax code (mapped to a commercetools tax category)",
    "active": "false when the master has deactivated the item",
    "prices": "prices in minor units, `CURRENCY[/country][/channel]:amount` separated by `;`",
    "price_count": "number of prices",
    "updated_at": "last change in the master",
}

PRODUCT_SYNC_COLUMNS: dict[str, str] = {
    "product_key": "the product's key (the master's product key)",
    "product_id": "commercetools product id (empty when not created)",
    "skus": "number of SKUs the master holds for the product",
    "outcome": "unchanged, created, updated, failed, reported (drift left as it is) or skipped",
    "actions": "update actions planned, by action name",
    "requests": "requests planned (one per product with work; more past 500 actions)",
    "drift_detected": "mastered fields edited in commercetools",
    "drift_reported": "of those, left as reported (not reverted)",
    "issues": "what could not be syndicated, by kind",
    "error": "why the product failed, if it did",
}


def _price_label(price: Any) -> str:
    scope = price.currency
    if getattr(price, "country", None):
        scope += f"/{price.country}"
    if getattr(price, "channel_key", None):
        scope += f"/{price.channel_key}"
    precise = getattr(price, "precise_amount", None)
    amount = f"{price.amount_minor}" + (f"({precise})" if precise is not None else "")
    return f"{scope}:{amount}"


def product_master_frame(items: Iterable[Any]) -> pd.DataFrame:
    rows = [
        {
            "sku": item.sku,
            "item_no": item.item_no,
            "name": item.name,
            "tax_code": item.tax_code,
            "active": bool(item.active),
            "prices": ";".join(_price_label(p) for p in item.prices),
            "price_count": len(item.prices),
            "updated_at": item.updated_at.isoformat() if item.updated_at else None,
        }
        for item in items
    ]
    frame = pd.DataFrame(rows, columns=list(PRODUCT_MASTER_COLUMNS))
    return frame.sort_values("sku", ignore_index=True)


def _outcome(plan: Any, result: ProductReport) -> str:
    if plan.product_key in result.failed:
        return "failed"
    if plan.product_key in result.created:
        return "created"
    if plan.product_key in result.updated:
        return "updated"
    if plan.draft is not None or plan.actions:
        return "planned"  # a dry run
    if plan.drift:
        return "reported"
    if plan.product_id is None:
        return "skipped"
    return "unchanged"


def product_sync_frame(plan: ProductPlan, result: ProductReport) -> pd.DataFrame:
    rows = []
    for product in plan.plans:
        actions: dict[str, int] = {}
        for action in product.actions:
            actions[action["action"]] = actions.get(action["action"], 0) + 1
        issues: dict[str, int] = {}
        for issue in product.issues:
            issues[issue.kind] = issues.get(issue.kind, 0) + 1
        drift = product.drift
        rows.append(
            {
                "product_key": product.product_key,
                "product_id": product.product_id or "",
                "skus": product.skus,
                "outcome": _outcome(product, result),
                "actions": ", ".join(f"{k} {v}" for k, v in sorted(actions.items())),
                "requests": product.requests,
                "drift_detected": len(drift),
                "drift_reported": sum(1 for c in drift if not c.applied),
                "issues": ", ".join(f"{k} {v}" for k, v in sorted(issues.items())),
                "error": result.failed.get(product.product_key, ""),
            }
        )
    return pd.DataFrame(rows, columns=list(PRODUCT_SYNC_COLUMNS))
