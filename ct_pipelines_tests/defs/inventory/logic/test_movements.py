"""Stock movements become delta runs in chunks, or one full reconciliation for a burst."""

from datetime import UTC, datetime

from ct_pipelines.defs.inventory.logic import load_rules
from ct_pipelines.defs.inventory.logic.movements import delta_runs
from ct_pipelines.erp.port import StockMovement


def _movement(i: int, sku: str, location: str) -> StockMovement:
    return StockMovement(
        movement_id=i,
        sku=sku,
        location=location,
        quantity=-1,
        reason="sale",
        on_hand_after=1,
        occurred_at=datetime(2026, 11, 27, tzinfo=UTC),
    )


JOBS = {"delta_job": "inventory_delta_sync", "full_job": "inventory_full_reconciliation"}


def test_delta_runs_are_chunked_and_a_burst_becomes_a_full_reconciliation() -> None:
    rules = load_rules()
    moves = [_movement(i, f"S{i % 7}", "MAN" if i % 2 else "LDN-STORE") for i in range(30)]
    moves.append(_movement(99, "X", "QUARANTINE"))
    runs, ignored = delta_runs(
        moves, rules, start_cursor="10", end_cursor="40", skus_per_run=3, **JOBS
    )
    assert ignored == 1
    assert [r.skus for r in runs] == [3, 3, 1]
    assert [r.run_key for r in runs] == [f"inventory-movements:10-40:{i}" for i in range(3)]
    assert runs[0].config["locations"] == ["LDN-STORE", "MAN"]
    burst, _ = delta_runs(
        moves, rules, start_cursor=None, end_cursor="40", full_run_above=5, **JOBS
    )
    assert [(r.job_name, r.config, r.run_key) for r in burst] == [
        ("inventory_full_reconciliation", {"mode": "full"}, "inventory-movements:start-40:full")
    ]
