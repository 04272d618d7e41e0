"""`make demo`: run the whole pipeline once against the sandbox, without the UI, and summarise.

Every asset and asset check of the code location runs: the daily-partitioned ones (order-to-cash,
finance) over the last week in one single-run backfill, then the rest (product master, inventory,
dispatch, operations). Runs are recorded in the Dagster instance at $DAGSTER_HOME, so `make dev`
shows them afterwards.
"""

import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import dagster as dg

DEMO_DAYS = 7


def _partition_range(days: int) -> tuple[str, str]:
    from ct_pipelines.kernel.shop import SHOP

    today = datetime.now(UTC).astimezone(SHOP.tz).date()
    return (today - timedelta(days=days - 1)).isoformat(), today.isoformat()


def _quiet() -> dict[str, Any]:
    # The summary below is the demo's output; Dagster's step-by-step log would bury it.
    return {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _check_rows(results: list[dg.ExecuteInProcessResult]) -> list[tuple[str, str, bool, str]]:
    rows = []
    for result in results:
        for evaluation in result.get_asset_check_evaluations():
            rows.append(
                (
                    evaluation.asset_key.to_user_string(),
                    evaluation.check_name,
                    evaluation.passed,
                    evaluation.severity.value,
                )
            )
    return sorted(rows)


def run_demo(out: TextIO = sys.stdout) -> int:
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set; run `make demo`, which sets it.", file=out)
        return 2
    # The demo always uses the sandbox, whatever credentials the shell happens to hold.
    os.environ["CT_PIPELINES_MODE"] = "sandbox"
    for name in ("CT_PIPELINES_COMMERCETOOLS", "CT_PIPELINES_ERP"):
        os.environ.pop(name, None)

    from ct_pipelines.definitions import defs
    from ct_pipelines.defs.resources import IntegrationStoreResource, sandbox_dir, sandbox_world

    home = sandbox_dir()
    print(f"ct_pipelines demo: sandbox world in {home}", file=out)
    world = sandbox_world(home)
    # An hour of simulated trade, so there is something new since the last demo.
    traded = world.advance(minutes=60)

    loaded = defs()
    definitions = loaded if isinstance(loaded, dg.Definitions) else loaded()
    # Every asset of the code location is an @asset (no specs or source assets to skip).
    assets = [a for a in definitions.assets or [] if isinstance(a, dg.AssetsDefinition)]
    daily = [a for a in assets if getattr(a, "partitions_def", None) is not None]
    plain = [a for a in assets if getattr(a, "partitions_def", None) is None]
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
    results.append(
        job.execute_in_process(
            instance=instance,
            asset_selection=[key for a in plain for key in a.keys],
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
    failed = [row for row in checks_run if not row[2]]
    print(
        f"  asset checks run                     : {len(checks_run):>7}  ({len(failed)} not passing)",
        file=out,
    )
    for asset, name, _passed, severity in failed:
        print(f"    {severity:<5} {asset}.{name}", file=out)
    print(
        f"  Dagster runs: {', '.join(r.run_id[:8] for r in results)} (see them with `make dev`)",
        file=out,
    )
    return 0


def _keys_between(start: str, end: str) -> list[str]:
    first = datetime.fromisoformat(start).date()
    last = datetime.fromisoformat(end).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def main() -> None:
    sys.exit(run_demo())


if __name__ == "__main__":
    main()
