"""How long reconciling one month of orders takes: ``reconcile_day`` against a pandas group-by.

Generates a month of order facts on both sides (commercetools and the ERP, 30 shop days, GBP,
EUR, JPY and KWD, two tax rates), with planted differences: amounts off on some orders
(offsetting pairs among them), orders missing from the ERP, orders only the ERP holds, ERP
documents held twice, orders the ERP holds in another currency. Then, in the same run:

- ours: ``reconcile_day`` for each day, as ``finance_reconciliation`` runs it (per-order
  variances with their kind, per-metric totals with net and absolute variances);
- baseline: pandas doing the same comparison for the whole month at once: ERP copies counted
  per (day, currency, document), an outer merge with commercetools, per-order differences per
  metric, and a group-by (day, currency, metric) for the totals.

Both results are compared (totals per day, currency and metric, and the count of per-order
variances) before any figure is printed, so the ratio is between two computations of the same
numbers. Building the facts and frames is not timed; each side's time is its best of
``--repeat`` runs (the machine is shared), ours summed over the days.

    nice .venv/bin/python bench/finance_reconcile.py --orders 1000000
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from ct_pipelines.defs.finance.logic.facts import OrderFact
from ct_pipelines.defs.finance.logic.reconcile import ErpOrderFact, reconcile_day

FIRST_DAY = date(2026, 11, 1)
DAYS = 30
CURRENCIES = np.array(["GBP", "EUR", "JPY", "KWD"])
DIGITS = {"GBP": 2, "EUR": 2, "JPY": 0, "KWD": 3}
CURRENCY_SHARE = [0.8, 0.15, 0.03, 0.02]
METRICS = ["orders", "net", "tax", "gross", "shipping", "tax@0.05", "tax@0.2"]


@dataclass
class Month:
    ct: pd.DataFrame  # one row per commercetools order
    erp: pd.DataFrame  # one row per ERP sales order


def generate(orders: int, seed: int) -> Month:
    """A month of orders and the ERP's copy of it, with planted differences."""
    rng = np.random.default_rng(seed)
    n = orders
    day = rng.integers(0, DAYS, n)
    currency = CURRENCIES[rng.choice(len(CURRENCIES), n, p=CURRENCY_SHARE)]
    standard = rng.integers(100, 50_000, n)
    reduced = np.where(rng.random(n) < 0.3, rng.integers(100, 5_000, n), 0)
    shipping_net = rng.choice([0, 329, 579], n)
    tax20 = (standard + shipping_net) // 5
    tax5 = reduced // 20
    ct = pd.DataFrame(
        {
            "day": day,
            "currency": currency,
            "document": [f"UK-{i}" for i in range(n)],
            "net": standard + reduced + shipping_net,
            "tax@0.2": tax20,
            "tax@0.05": tax5,
            "shipping": shipping_net + shipping_net // 5,
            "eligible": rng.random(n) < 0.97,
        }
    )
    ct["tax"] = ct["tax@0.2"] + ct["tax@0.05"]
    ct["gross"] = ct["net"] + ct["tax"]
    ct = ct.sort_values(["day", "document"], ignore_index=True)

    erp = ct[ct["eligible"]].drop(columns=["eligible"]).copy()
    erp["sales_order_no"] = [f"SO-{i}" for i in range(len(erp))]
    k = max(1, len(erp) // 1000)
    picks = rng.choice(len(erp), 5 * k, replace=False)
    off, missing, wrong = picks[:k], picks[k : 2 * k], picks[2 * k : 3 * k]
    twice, offset = picks[3 * k : 4 * k], picks[4 * k :]
    erp = erp.reset_index(drop=True)
    erp.loc[off, "tax@0.2"] += 1  # a penny of tax rounding
    erp.loc[off, "tax"] += 1
    erp.loc[off, "gross"] += 1
    erp.loc[offset, "gross"] += np.where(np.arange(len(offset)) % 2 == 0, 100, -100)
    erp.loc[wrong, "currency"] = np.where(erp.loc[wrong, "currency"] == "EUR", "GBP", "EUR")
    copies = erp.loc[twice].copy()
    copies["sales_order_no"] = copies["sales_order_no"] + "-dup"
    only = erp.loc[missing[: k // 2 + 1]].copy()  # reused as orders only the ERP holds
    only["document"] = only["document"] + "-ERP"
    only["sales_order_no"] = only["sales_order_no"] + "-only"
    erp = pd.concat([erp.drop(index=missing), copies, only], ignore_index=True)
    return Month(ct=ct, erp=erp)


def _day(offset: int) -> date:
    return FIRST_DAY + timedelta(days=int(offset))


def facts_for_day(month: Month, offset: int) -> tuple[list[OrderFact], list[ErpOrderFact]]:
    day = _day(offset)
    created = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    ct = month.ct[month.ct["day"] == offset]
    orders = [
        OrderFact(
            day=day,
            order_id=f"id-{doc}",
            document=doc,
            order_version=1,
            created_at=created,
            currency=cur,
            fraction_digits=DIGITS[cur],
            eligible=bool(ok),
            eligibility_reason="" if ok else "payment state Pending",
            order_state="Confirmed",
            payment_state="Paid",
            net_minor=int(net),
            tax_minor=int(tax),
            gross_minor=int(gross),
            shipping_minor=int(ship),
            shipping_net_minor=0,
            shipping_tax_minor=0,
            tax_by_rate={k: int(v) for k, v in (("0.2", t20), ("0.05", t5)) if v},
        )
        for doc, cur, ok, net, tax, gross, ship, t20, t5 in zip(
            ct["document"],
            ct["currency"],
            ct["eligible"],
            ct["net"],
            ct["tax"],
            ct["gross"],
            ct["shipping"],
            ct["tax@0.2"],
            ct["tax@0.05"],
            strict=True,
        )
    ]
    erp = month.erp[month.erp["day"] == offset]
    erp_orders = [
        ErpOrderFact(
            document=doc,
            sales_order_no=number,
            currency=cur,
            fraction_digits=DIGITS[cur],
            order_date=day,
            source_order_id=f"id-{doc}",
            status="open",
            net_minor=int(net),
            tax_minor=int(tax),
            gross_minor=int(gross),
            shipping_minor=int(ship),
            tax_by_rate={k: int(v) for k, v in (("0.2", t20), ("0.05", t5)) if v},
        )
        for doc, number, cur, net, tax, gross, ship, t20, t5 in zip(
            erp["document"],
            erp["sales_order_no"],
            erp["currency"],
            erp["net"],
            erp["tax"],
            erp["gross"],
            erp["shipping"],
            erp["tax@0.2"],
            erp["tax@0.05"],
            strict=True,
        )
    ]
    return orders, erp_orders


def pandas_baseline(month: Month) -> tuple[pd.DataFrame, int]:
    """Totals per (day, currency, metric) with net and absolute variance; per-order variances."""
    keys = ["day", "currency", "document"]
    values = [m for m in METRICS if m != "orders"]
    ct = month.ct[month.ct["eligible"]][keys + values].copy()
    ct["orders"] = 1
    erp = month.erp[keys + values].copy()
    erp["orders"] = 1
    erp = erp.groupby(keys, sort=False)[METRICS].sum()  # copies of one document count in full
    left = ct.set_index(keys)[METRICS].add_suffix("_ct")
    merged = left.join(erp.add_suffix("_erp"), how="outer")
    merged = merged.fillna(0).astype("int64")
    ct_part = merged[[f"{m}_ct" for m in METRICS]].to_numpy()
    erp_part = merged[[f"{m}_erp" for m in METRICS]].to_numpy()
    diff = erp_part - ct_part
    variances = int((diff != 0).sum())
    index = merged.index.droplevel("document")
    frames = []
    for position, metric in enumerate(METRICS):
        part = pd.DataFrame(
            {
                "commercetools_minor": ct_part[:, position],
                "erp_minor": erp_part[:, position],
                "variance_abs_minor": np.abs(diff[:, position]),
            },
            index=index,
        )
        summed = part.groupby(level=["day", "currency"]).sum()
        summed["metric"] = metric
        frames.append(summed)
    totals = pd.concat(frames).reset_index()
    totals["variance_minor"] = totals["erp_minor"] - totals["commercetools_minor"]
    return totals, variances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the month")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--repeat", type=int, default=3, help="best of this many runs of each (a shared machine)"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    month = generate(args.orders, args.seed)
    generated = time.perf_counter() - started

    baseline = float("inf")
    for _ in range(args.repeat):
        gc.collect()
        started = time.perf_counter()
        baseline_totals, baseline_variances = pandas_baseline(month)
        baseline = min(baseline, time.perf_counter() - started)

    building = 0.0
    ours = 0.0
    rows = []
    variances = 0
    for offset in range(DAYS):
        started = time.perf_counter()
        orders, erp_orders = facts_for_day(month, offset)
        building += time.perf_counter() - started
        best = float("inf")
        for _ in range(args.repeat):
            gc.collect()
            started = time.perf_counter()
            result = reconcile_day(_day(offset), orders, [], erp_orders, [])
            best = min(best, time.perf_counter() - started)
        ours += best
        variances += len(result.variances)
        rows.extend(
            {
                "day": offset,
                "currency": t.currency,
                "metric": t.metric,
                "commercetools_minor": t.commercetools_minor,
                "erp_minor": t.erp_minor,
                "variance_minor": t.variance_minor,
                "variance_abs_minor": t.variance_abs_minor,
            }
            for t in result.totals
            if t.metric in METRICS
        )
        del orders, erp_orders, result

    # The same numbers, or the ratio means nothing.
    columns = ["commercetools_minor", "erp_minor", "variance_minor", "variance_abs_minor"]
    ours_totals = pd.DataFrame(rows).set_index(["day", "currency", "metric"]).sort_index()
    theirs = baseline_totals.set_index(["day", "currency", "metric"]).sort_index()
    joined = ours_totals[columns].join(theirs[columns].add_suffix("_pandas"), how="outer").fillna(0)
    for column in columns:
        mismatched = joined[joined[column] != joined[f"{column}_pandas"]]
        assert mismatched.empty, f"{column} differs:\n{mismatched.head()}"
    assert variances == baseline_variances, (variances, baseline_variances)

    print(f"bench/finance_reconcile.py: one month ({DAYS} shop days) of {args.orders:,} orders")
    print(f"  generated both sides                 {generated:7.2f} s (not timed)")
    print(f"  facts built for reconcile_day        {building:7.2f} s (not timed)")
    print(f"  per-order variances (both agree)     {variances:7,d}")
    print(f"  baseline: pandas group-by, the month {baseline:7.2f} s (best of {args.repeat})")
    print(
        f"  reconcile_day, day by day            {ours:7.2f} s  (sum of each day's best) "
        f"({ours / baseline:.2f} x baseline; {args.orders / ours:,.0f} orders/s)"
    )


if __name__ == "__main__":
    main()
