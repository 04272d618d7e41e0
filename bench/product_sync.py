"""Plan a product sync and compute parity for N SKUs; print seconds and requests planned.

The data is synthetic and in memory (no HTTP): N master items grouped into products of
``--variants`` SKUs, and the same catalogue as commercetools product JSON. Then the master
changes some prices, someone edits some prices in commercetools, a few items are new and a
few are deactivated, as a day of trading might bring.

The baseline, measured in the same run on the same data, is a plain dict diff: both sides
flattened to {sku: {field: value}} and compared with ``==``, with no price-scope matching, no
master-rule classification and no actions built. The ratio says what building the minimal
actions costs on top of merely finding the differences.

    .venv/bin/python bench/product_sync.py --skus 20000
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")


def _timed(label: str, fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - started
    print(f"  {label:<46} {elapsed:8.3f} s")
    return value, elapsed


def _items(skus: int, variants: int, rng: random.Random) -> list[Any]:
    from ct_pipelines.erp.port import ErpItem, ErpPrice

    at = datetime(2025, 1, 1, tzinfo=UTC)
    items = []
    for n in range(skus):
        product, size = divmod(n, variants)
        pence = 500 + rng.randrange(0, 20_000, 5)
        prices = [
            ErpPrice(currency="GBP", amount_minor=pence, fraction_digits=2, country="GB"),
            ErpPrice(
                currency="EUR", amount_minor=pence * 117 // 100, fraction_digits=2, country="IE"
            ),
            ErpPrice(
                currency="GBP",
                amount_minor=pence - 100,
                fraction_digits=2,
                country="GB",
                channel_key="store-london",
            ),
        ]
        items.append(
            ErpItem(
                item_no=str(100_000 + n),
                sku=f"P{product:05d}-S{size}",
                name=f"Product {product}, S{size}",
                attributes={"product_key": f"p{product:05d}", "size": f"S{size}", "colour": "Navy"},
                prices=prices,
                tax_code=rng.choice("SSSRZ"),
                active=True,
                updated_at=at,
            )
        )
    return items


def _commercetools_docs(master: Any, rng: random.Random) -> list[dict[str, Any]]:
    """The catalogue as commercetools returns it, in step with the master."""
    from ct_pipelines.defs.product_master.logic.master import MasterPrice

    def money(price: MasterPrice) -> dict[str, Any]:
        return {
            "type": "centPrecision",
            "currencyCode": price.scope.currency,
            "centAmount": price.amount_minor,
            "fractionDigits": 2,
        }

    docs = []
    for index, product in enumerate(master.products):
        variants = []
        for variant_id, variant in enumerate(product.variants, start=1):
            prices = []
            for price in variant.prices:
                entry: dict[str, Any] = {
                    "id": f"{variant.sku}-{price.scope.label()}",
                    "value": money(price),
                }
                if price.scope.country:
                    entry["country"] = price.scope.country
                if price.scope.channel_key:
                    entry["channel"] = {"typeId": "channel", "id": "ch-store"}
                prices.append(entry)
            variants.append(
                {
                    "id": variant_id,
                    "sku": variant.sku,
                    "prices": prices,
                    "attributes": [{"name": k, "value": v} for k, v in variant.attributes.items()],
                }
            )
        data = {
            "name": dict(product.name),
            "slug": dict(product.slug),
            "masterVariant": variants[0],
            "variants": variants[1:],
        }
        docs.append(
            {
                "id": f"id-{index:06d}",
                "version": rng.randrange(1, 50),
                "key": product.key,
                "productType": {"typeId": "product-type", "id": "pt"},
                "taxCategory": {"typeId": "tax-category", "id": f"tc-{product.tax_category_key}"},
                "masterData": {
                    "published": True,
                    "hasStagedChanges": False,
                    "current": data,
                    "staged": copy.deepcopy(data),
                },
            }
        )
    return docs


def _flatten_master(master: Any) -> dict[str, dict[str, Any]]:
    flat = {}
    for product, variant in master.variants():
        fields: dict[str, Any] = {"name": product.name, "tax": product.tax_category_key}
        fields.update({f"a:{k}": v for k, v in variant.attributes.items()})
        for price in variant.prices:
            fields[f"p:{price.scope.currency}/{price.scope.country}/{price.scope.channel_key}"] = (
                price.amount_minor
            )
        flat[variant.sku] = fields
    return flat


def _flatten_commercetools(
    docs: list[dict[str, Any]], channels: dict[str, str], taxes: dict[str, str]
) -> dict[str, dict[str, Any]]:
    flat = {}
    for doc in docs:
        data = doc["masterData"]["staged"]
        tax = taxes.get(doc["taxCategory"]["id"])
        for variant in [data["masterVariant"], *data["variants"]]:
            fields: dict[str, Any] = {"name": data["name"], "tax": tax}
            fields.update({f"a:{a['name']}": a["value"] for a in variant["attributes"]})
            for price in variant["prices"]:
                channel = channels.get(price["channel"]["id"]) if price.get("channel") else None
                fields[f"p:{price['value']['currencyCode']}/{price.get('country')}/{channel}"] = (
                    price["value"]["centAmount"]
                )
            flat[variant["sku"]] = fields
    return flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--variants", type=int, default=4, help="SKUs per product")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from ct_pipelines.defs.product_master.logic.master import build_catalog
    from ct_pipelines.defs.product_master.logic.parity import compare
    from ct_pipelines.defs.product_master.logic.planner import (
        CommercetoolsCatalog,
        ProductOptions,
        next_baseline,
        plan_sync,
    )

    rng = random.Random(args.seed)
    channels = {"ch-store": "store-london"}
    taxes = {"tc-standard": "standard", "tc-reduced": "reduced", "tc-zero": "zero"}
    items = _items(args.skus, args.variants, rng)
    in_step = build_catalog(items)
    docs = _commercetools_docs(in_step, rng)
    untouched = copy.deepcopy(docs)
    baseline = next_baseline(None, in_step, ProductOptions())

    # A day of trading: master price changes, edits in commercetools, new and withdrawn items.
    changed = 0
    for index in rng.sample(range(len(items)), len(items) // 50):
        item = items[index]
        first = item.prices[0].model_copy(
            update={"amount_minor": item.prices[0].amount_minor + 100}
        )
        items[index] = item.model_copy(update={"prices": [first, *item.prices[1:]]})
        changed += 1
    edited = 0
    for doc in rng.sample(docs, max(1, len(docs) // 200)):
        for view in ("current", "staged"):
            doc["masterData"][view]["masterVariant"]["prices"][0]["value"]["centAmount"] += 1
        edited += 1
    for index in rng.sample(range(len(items)), max(1, len(items) // 500)):
        items[index] = items[index].model_copy(update={"active": False})
    new_items = _items(args.variants * 10, args.variants, random.Random(args.seed + 1))
    items += [
        i.model_copy(
            update={
                "sku": "NEW-" + i.sku,
                "attributes": {**i.attributes, "product_key": "new-" + i.attributes["product_key"]},
            }
        )
        for i in new_items
    ]

    # Absolute seconds depend on the machine and its load; the ratios below are the claim.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"bench/product_sync.py: {len(items)} SKUs in products of {args.variants}; "
        f"{changed} master price changes, {edited} commercetools edits, "
        f"{len(items) // 500} deactivations, {len(new_items)} new SKUs"
    )
    master, t_build = _timed("group master items into products", lambda: build_catalog(items))
    catalog, t_index = _timed(
        "index commercetools products",
        lambda: CommercetoolsCatalog(docs, channel_keys=channels, tax_category_keys=taxes),
    )

    def dict_diff() -> int:
        left = _flatten_master(master)
        right = _flatten_commercetools(docs, channels, taxes)
        return sum(1 for sku, fields in left.items() if right.get(sku) != fields)

    differing, t_baseline = _timed("baseline: plain dict diff (flatten + ==)", dict_diff)
    plan, t_plan = _timed(
        "sync plan (minimal actions, master rule)",
        lambda: plan_sync(master, catalog, ProductOptions(drift="revert"), baseline),
    )
    report, t_parity = _timed(
        "parity (SKUs, prices, tax, unpriced, dupes)", lambda: compare(master, catalog)
    )
    _timed("next baseline", lambda: next_baseline(baseline, master, ProductOptions()))
    again_catalog = CommercetoolsCatalog(untouched, channel_keys=channels, tax_category_keys=taxes)
    unchanged, t_noop = _timed(
        "sync plan, nothing changed",
        lambda: plan_sync(in_step, again_catalog, ProductOptions(), baseline),
    )

    drift = plan.drift_counts()
    print()
    print(
        f"  products {plan.products}, SKUs {plan.skus}; SKUs the dict diff finds differing: {differing}"
    )
    print(
        f"  requests planned: {plan.requests} ({len(plan.creates)} creates, "
        f"{plan.update_requests} updates) for {plan.products} products"
    )
    print(f"  actions planned: {plan.action_counts()}")
    print(f"  drift: {drift}")
    print(f"  requests planned when nothing changed: {unchanged.requests}")
    print(
        f"  parity: {len(report.price_mismatches)} price mismatches, "
        f"{len(report.missing_in_commercetools)} SKUs missing in commercetools, "
        f"{len(report.tax_mismatches)} tax mismatches"
    )
    print(
        f"  plan time / dict-diff time: {t_plan / t_baseline:.2f}x; "
        f"parity / dict-diff: {t_parity / t_baseline:.2f}x; "
        f"no-op plan / dict-diff: {t_noop / t_baseline:.2f}x"
    )
    print(
        f"  total plan + parity for {len(items)} SKUs: {t_build + t_index + t_plan + t_parity:.2f} s"
    )


if __name__ == "__main__":
    main()
