"""`make demo`: run the whole pipeline once against the sandbox, without the UI, and summarise.

Every asset and asset check of the code location runs: the daily-partitioned ones (order-to-cash,
finance) over the last week in one single-run backfill, then the rest (product master, inventory,
dispatch, operations). Runs are recorded in the Dagster instance at $DAGSTER_HOME, so `make dev`
shows them afterwards.

The sandbox is seeded with findings planted on purpose (a marketplace order number too long for
the ERP, orders without a number, an order without tax, discontinued SKUs, a card charge missing
from the payment provider's settlement file and one settled short): the summary names
each one, with the order or SKU, and the checks that report it, and says what such a finding
would mean in production. A check that fails on something that was not planted fails the demo.
``--clean`` (``make demo DEMO_ARGS=--clean``) seeds the same shop without them, and every check
must pass.
"""

import argparse
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import dagster as dg

DEMO_DAYS = 7
CLEAN_ENV = "CT_PIPELINES_SANDBOX_CLEAN"

# What a planted finding would mean in a production shop, and what to do about it.
IN_PRODUCTION: dict[str, str] = {
    "long_order_number": "a paid order that never reaches the ERP, so it is neither fulfilled "
    "nor in the books: map marketplace numbers to a shorter document number (or widen the ERP "
    "field), then retry it from the exception queue",
    "orders_without_order_number": "orders from a channel that sets no orderNumber: the ERP "
    "and the reports know them only by their commercetools id; make every channel set one",
    "order_without_taxed_price": "an order whose tax commercetools never calculated: its VAT "
    "cannot be booked as charged until someone decides it",
    "blocked_skus": "items the ERP has discontinued but the shop still lists: they can be sold "
    "and not fulfilled; unpublish them in commercetools or re-activate them in the ERP",
    "settlement_missing_charge": "money the shop booked as taken that the payment provider "
    "never settled: ask the provider (a failed capture, a charge on another account) before "
    "the payout is reconciled with the bank",
    "settlement_amount_mismatch": "the provider settled another amount than the order was "
    "charged (a partial capture, a currency conversion): the receivable stays open by the "
    "difference until someone books it",
}
CHECK_IN_PRODUCTION: dict[str, str] = {
    "orphaned_orders": "an order eligible for the ERP for over 30 minutes is not there",
    "finance_zero_variance": "commercetools and the ERP disagree on a day's money, so the books "
    "would close wrong",
    "finance_days_posted": "a shop day's journals are missing from the ERP's ledger",
    "finance_settlement_matched": "the payment provider's payouts will not add up to what "
    "commercetools says was charged and refunded",
}


def _partition_range(days: int) -> tuple[str, str]:
    from ct_pipelines.kernel.shop import SHOP

    today = datetime.now(UTC).astimezone(SHOP.tz).date()
    return (today - timedelta(days=days - 1)).isoformat(), today.isoformat()


def _quiet() -> dict[str, Any]:
    # The summary below is the demo's output; Dagster's step-by-step log would bury it.
    return {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class CheckRow:
    asset: str
    name: str
    passed: bool
    severity: str
    # The evaluation's metadata as text, to find the planted orders and SKUs it names.
    text: str = field(repr=False)


def _check_rows(results: list[dg.ExecuteInProcessResult]) -> list[CheckRow]:
    rows = []
    for result in results:
        for evaluation in result.get_asset_check_evaluations():
            text = " ".join(str(getattr(v, "value", v)) for v in evaluation.metadata.values())
            rows.append(
                CheckRow(
                    evaluation.asset_key.to_user_string(),
                    evaluation.check_name,
                    evaluation.passed,
                    evaluation.severity.value,
                    text,
                )
            )
    return sorted(rows, key=lambda r: (r.asset, r.name))


def explain(
    checks: list[CheckRow], planted: list[dict[str, Any]]
) -> tuple[list[tuple[CheckRow, list[dict[str, Any]]]], list[CheckRow]]:
    """Each check not passing with the planted findings it names, and those that name none."""
    explained, unexplained = [], []
    for row in checks:
        if row.passed:
            continue
        causes = [p for p in planted if any(str(s) in row.text for s in p["subjects"])]
        if causes:
            explained.append((row, causes))
        else:
            unexplained.append(row)
    return explained, unexplained


def _print_findings(
    out: TextIO, checks: list[CheckRow], planted: list[dict[str, Any]], clean: bool
) -> int:
    explained, unexplained = explain(checks, planted)
    failing = [row for row in checks if not row.passed]
    print(
        f"  asset checks run                     : {len(checks):>7}  ({len(failing)} not passing)",
        file=out,
    )
    if clean:
        print("  planted findings                     : none (--clean)", file=out)
    else:
        print("", file=out)
        print("Planted in the sandbox on purpose, and what reports them", file=out)
        for finding in planted:
            named_by = [f"{row.asset}.{row.name}" for row, causes in explained if finding in causes]
            subjects = ", ".join(str(s) for s in finding["subjects"][:3])
            print(f"  - {finding['what']}: {subjects}", file=out)
            print(
                "      shown by: " + (", ".join(named_by) if named_by else "no failing check"),
                file=out,
            )
            print(f"      in production: {IN_PRODUCTION.get(finding['kind'], '-')}", file=out)
    for row, causes in explained:
        meaning = CHECK_IN_PRODUCTION.get(row.name, "")
        print(
            f"    {row.severity:<5} {row.asset}.{row.name}: planted "
            f"({', '.join(c['kind'] for c in causes)})"
            + (f"; in production, {meaning}" if meaning else ""),
            file=out,
        )
    for row in unexplained:
        print(
            f"    {row.severity:<5} {row.asset}.{row.name}: NOT PLANTED - a real problem to look into",
            file=out,
        )
        print(f"          its metadata: {' '.join(row.text.split())[:400]}", file=out)
    if not failing:
        print("  every check passed", file=out)
    return 1 if unexplained else 0


def run_demo(out: TextIO = sys.stdout, *, clean: bool = False) -> int:
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set; run `make demo`, which sets it.", file=out)
        return 2
    # The demo always uses the sandbox, whatever credentials the shell happens to hold.
    os.environ["CT_PIPELINES_MODE"] = "sandbox"
    for name in ("CT_PIPELINES_COMMERCETOOLS", "CT_PIPELINES_ERP"):
        os.environ.pop(name, None)
    # Read by the sandbox when it seeds a new world.
    os.environ[CLEAN_ENV] = "1" if clean else "0"

    from ct_pipelines.definitions import defs
    from ct_pipelines.defs.resources import IntegrationStoreResource, sandbox_dir, sandbox_world

    home = sandbox_dir()
    print(f"ct_pipelines demo: sandbox world in {home}", file=out)
    world = sandbox_world(home)
    if world.planted == clean:
        has = "planted findings" if world.planted else "no planted findings (--clean)"
        print(
            f"The sandbox in {home} was seeded with {has}; "
            f"{'--clean' if clean else 'a demo with planted findings'} needs a fresh DAGSTER_HOME "
            "(or `make clean-home`).",
            file=out,
        )
        return 2
    # An hour of simulated trade, so there is something new since the last demo.
    traded = world.advance(minutes=60)

    loaded = defs()
    definitions = loaded if isinstance(loaded, dg.Definitions) else loaded()
    # The systems (plain asset specs) are in the lineage, not materialised.
    assets = [
        a
        for a in definitions.assets or []
        if isinstance(a, dg.AssetsDefinition) and a.is_executable
    ]
    daily = [a for a in assets if a.partitions_def is not None]
    # The operations assets summarise the flows: they run last, so they see the flows' results.
    summaries = [a for a in assets if _group_of(a) == "operations"]
    plain = [a for a in assets if a.partitions_def is None and a not in summaries]
    instance = dg.DagsterInstance.get()
    start, end = _partition_range(DEMO_DAYS)

    # The code location's own job, so assets see the repository as they do under `dagster dev`.
    job = definitions.resolve_implicit_global_asset_job_def()
    results = []
    if daily:
        results.append(
            job.execute_in_process(
                instance=instance,
                asset_selection=[key for a in daily for key in a.keys],
                run_config=_quiet(),
                tags={
                    "dagster/asset_partition_range_start": start,
                    "dagster/asset_partition_range_end": end,
                },
                raise_on_error=False,
            )
        )
    for selection in (plain, summaries):
        if selection:
            results.append(
                job.execute_in_process(
                    instance=instance,
                    asset_selection=[key for a in selection for key in a.keys],
                    run_config=_quiet(),
                    raise_on_error=False,
                )
            )
    if not all(result.success for result in results):
        for result in results:
            for event in result.all_events:
                if event.is_step_failure:
                    error = event.step_failure_data.error
                    reason = error.message if error is not None else "no error recorded"
                    print(f"step {event.step_key} failed: {reason}", file=out)
        print("demo FAILED", file=out)
        return 1

    store_resource = (definitions.resources or {}).get("store")
    if not isinstance(store_resource, IntegrationStoreResource):
        raise TypeError(f"the code location's store resource is {store_resource!r}")
    store = store_resource.get_store()
    products = store.read_snapshot("product_master")
    stock = store.read_snapshot("inventory_snapshots")
    orders = eligible = 0
    for key in _keys_between(start, end):
        from ct_pipelines.defs.order_to_cash.logic.batch import read_batch

        batch = read_batch(store, key)
        orders += len(batch)
        eligible += int(batch["eligible"].astype(bool).sum()) if len(batch) else 0
    exported = len(store.ledger.list("order_to_cash", status="exported"))
    settlement = _settlement_counts(store, _keys_between(start, end))
    open_exceptions = store.list_exceptions(status=["open", "retrying"])
    checks_run = _check_rows(results)

    print("", file=out)
    print("Summary (read from the sandbox through the real clients)", file=out)
    print(
        f"  simulated trade this run            : {len(traded['order_ids'])} new orders", file=out
    )
    print(f"  products (SKUs) in the product master: {len(products):>7}", file=out)
    print(
        f"  stock entries                        : {len(stock):>7}"
        f"  (ERP {int((stock['system'] == 'erp').sum())},"
        f" commercetools {int((stock['system'] == 'commercetools').sum())})",
        file=out,
    )
    print(
        f"  orders read {start}..{end} : {orders:>7}  ({eligible} eligible for the ERP)", file=out
    )
    print(f"  orders in the ERP per the ledger     : {exported:>7}", file=out)
    print(f"  open exceptions                      : {len(open_exceptions):>7}", file=out)
    print(
        f"  payments against the settlement file : {settlement['matched']:>7} matched, "
        f"{settlement['missing_in_settlement']} missing from it, "
        f"{settlement['not_in_commercetools']} not in commercetools, "
        f"{settlement['amount_differs']} with another amount; fees {settlement['fees']}",
        file=out,
    )
    status = _print_findings(out, checks_run, world.planted_findings(), clean)
    print(
        f"  Dagster runs: {', '.join(r.run_id[:8] for r in results)} (see them with `make dev`)",
        file=out,
    )
    if status:
        print("demo FAILED: a check failed on something the sandbox did not plant", file=out)
    return status


def _settlement_counts(store: Any, keys: list[str]) -> dict[str, Any]:
    """The settlement reconciliation of the demo's days: items by status, fees by currency."""
    from ct_pipelines.defs.finance.logic.settlement import STATUSES
    from ct_pipelines.defs.finance.logic.snapshots import SETTLEMENT, SETTLEMENT_TOTALS, read_frame
    from ct_pipelines.kernel.money import display_amounts

    counts: dict[str, Any] = dict.fromkeys(STATUSES, 0)
    fees: dict[str, int] = {}
    for key in keys:
        items = read_frame(store, SETTLEMENT, key)
        if items is not None:
            for status, count in items["status"].value_counts().items():
                counts[str(status)] += int(count)
        totals = read_frame(store, SETTLEMENT_TOTALS, key)
        if totals is not None:
            for currency, fee in zip(totals["currency"], totals["fee_minor"], strict=True):
                fees[str(currency)] = fees.get(str(currency), 0) + int(fee)
    counts["fees"] = display_amounts(fees)
    return counts


def _group_of(asset: Any) -> str | None:
    groups = set(getattr(asset, "group_names_by_key", {}).values())
    return groups.pop() if len(groups) == 1 else None


def _keys_between(start: str, end: str) -> list[str]:
    first = datetime.fromisoformat(start).date()
    last = datetime.fromisoformat(end).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ct_pipelines.demo", description=__doc__)
    parser.add_argument(
        "--clean",
        action="store_true",
        help="a sandbox without planted findings: every check must pass (needs a fresh "
        "DAGSTER_HOME)",
    )
    args = parser.parse_args(argv)
    sys.exit(run_demo(clean=args.clean))


if __name__ == "__main__":
    main()
