import subprocess
import sys
from pathlib import Path

import dagster as dg

from ct_pipelines.definitions import defs

PROJECT_ROOT = Path(__file__).parent.parent


def _definitions() -> dg.Definitions:
    loaded = defs()
    return loaded if isinstance(loaded, dg.Definitions) else loaded()


def test_definitions_load_and_validate() -> None:
    loaded = _definitions()
    dg.Definitions.validate_loadable(loaded)
    keys = {key.to_user_string() for key in loaded.resolve_asset_graph().get_all_asset_keys()}
    assert {"product_master", "inventory_snapshots", "order_batches"} <= keys


def test_order_batches_are_daily_in_shop_time_with_single_run_backfills() -> None:
    graph = _definitions().resolve_asset_graph()
    node = graph.get(dg.AssetKey("order_batches"))
    partitions = node.partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.timezone == "Europe/London"
    assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_dagster_cli_validates_the_workspace() -> None:
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
