"""The Dagster UI in a real browser (Debian's chromium, driven by Playwright) after a demo run.

`dagster dev` is started on a free local port against a fresh DAGSTER_HOME that `make demo`'s
code filled; readiness is polled through GraphQL. The pages come from pytest-playwright's
``page`` fixture (a fresh context per test), launched on Debian's chromium. Screenshots go to
artifacts/screenshots/ (git-ignored). Under CI=true a missing chromium fails the test; locally
it skips. To work on the selectors against a running `make dev` (after `make demo`), set
CT_PIPELINES_E2E_URL=http://127.0.0.1:3000: the test then starts nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READY_SECONDS = 600  # generous: CI shares two cores
UI_TIMEOUT_MS = 120_000
E2E_URL_ENV = "CT_PIPELINES_E2E_URL"
LOCATION_STATUS = """query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

pytestmark = pytest.mark.slow


def _require_browser() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _graphql(base: str, query: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def _wait_until_loaded(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    last = "not started"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            data = _graphql(base, LOCATION_STATUS)["data"]
            entries = data["workspaceOrError"]["locationEntries"]  # type: ignore[index]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [
                    e
                    for e in entries
                    if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
                ]
                assert not errors, errors
                return
            last = json.dumps(entries)
        except (OSError, KeyError, TypeError, ValueError) as error:
            last = repr(error)
        time.sleep(1)  # a poll interval, not a wait for something to happen
    pytest.fail(f"the code location did not load in {READY_SECONDS}s: {last}")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_browser()
    running = os.environ.get(E2E_URL_ENV)
    if running:
        yield running.rstrip("/")
        return
    home = tmp_path_factory.mktemp("ui_home")
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTP_", "CT_PIPELINES_"))}
    env["DAGSTER_HOME"] = str(home)
    demo = subprocess.run(
        [sys.executable, "-m", "ct_pipelines.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    port = _free_port()
    log = home / "dagster-dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_loaded(base, process, log)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)


# pytest-playwright's fixtures, pointed at Debian's chromium and the webserver above.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any], webserver: str) -> dict[str, Any]:
    return {
        **browser_context_args,
        "base_url": webserver,
        "viewport": {"width": 1600, "height": 1000},
    }


@pytest.fixture
def ui(page: Page) -> Page:
    """The plugin's page with generous timeouts; Dagster's "join the community" dialog (shown
    on a fresh instance whenever it likes) is skipped whenever it gets in the way."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.set_default_navigation_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    page.add_locator_handler(
        page.get_by_role("button", name="Skip", exact=True), lambda skip: skip.click()
    )
    return page


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _demo_days() -> tuple[str, str]:
    from ct_pipelines.demo import _partition_range

    return _partition_range(3)


def test_global_lineage_shows_the_systems_and_the_edges_between_flows(ui: Page) -> None:
    ui.goto("/asset-groups")
    tree = ui.get_by_role("navigation").or_(ui.locator("body"))
    for group in ("commercetools", "erp", "order_to_cash", "finance", "inventory"):
        expect(tree.get_by_text(group, exact=True).first).to_be_visible()
    # The groups are drawn as nodes with edges between them (one graph, not islands).
    expect(ui.locator("svg path").first).to_be_attached()
    _shot(ui, "global-lineage")
    # ERP sales orders: written by order_to_cash, reconciled by finance.
    ui.goto("/assets/erp/sales_orders?view=lineage")
    for name in ("erp_sales_orders", "finance_reconciliation"):
        expect(ui.get_by_text(name, exact=True).first).to_be_visible()
    _shot(ui, "erp-sales-orders-lineage")
    # The flow's asset page names the systems it reads from.
    ui.goto("/assets/order_batches")
    expect(ui.get_by_role("link", name="commercetools / orders").first).to_be_visible()
    expect(ui.get_by_role("link", name="erp_sales_orders").first).to_be_visible()


def test_an_order_batches_partition_shows_rows_columns_and_a_plot(ui: Page) -> None:
    _, day = _demo_days()
    ui.goto(f"/assets/order_batches?view=partitions&partition={day}")
    expect(ui.get_by_text("dagster/row_count", exact=True).first).to_be_visible()
    expect(ui.get_by_text("eligible_orders", exact=True).first).to_be_visible()
    ui.get_by_text("[Show Table Schema]").first.click()
    schema = ui.get_by_role("dialog").filter(has_text="external_document_number")
    expect(schema.get_by_text("external_document_number").first).to_be_visible()
    _shot(ui, "order-batches-partition-schema")
    # Leave the dialog by loading the page again: whether Escape reaches a dialog depends on
    # focus, which a loaded machine may not have given it yet.
    ui.goto(f"/assets/order_batches?view=partitions&partition={day}")
    expect(ui.get_by_text("dagster/row_count", exact=True).first).to_be_visible()
    expect(schema).to_have_count(0)
    _shot(ui, "order-batches-partition")
    # Numeric metadata over the materializations, as plots.
    ui.goto("/assets/order_batches?view=overview")
    ui.get_by_role("button", name="Plots").first.click()
    plot = ui.locator("canvas, svg.recharts-surface")
    expect(plot.first).to_be_visible()
    _shot(ui, "order-batches-plots")


def test_the_checks_tab_shows_the_planted_finding(ui: Page) -> None:
    ui.goto("/assets/erp_sales_orders?view=checks")
    ui.get_by_text("orphaned_orders", exact=True).first.click()
    expect(ui.get_by_text("Failed").first).to_be_visible()
    expect(ui.get_by_role("cell", name="orphaned_orders", exact=True)).to_be_visible()
    ui.get_by_text("[Show Markdown]").first.click()
    table = ui.get_by_role("dialog").filter(has_text="external_document_number")
    expect(table.get_by_text("MARKETPLACE-AMAZON-UK-206-4837261-5519034").first).to_be_visible()
    _shot(ui, "erp-sales-orders-checks")


def test_the_backfill_dialog_opens_for_a_range_of_days(ui: Page) -> None:
    first, last = _demo_days()
    ui.goto("/assets/order_batches")
    ui.get_by_role("button", name="Materialize…").first.click()
    dialog = ui.get_by_role("dialog").filter(has_text="Launch runs to materialize order_batches")
    expect(dialog).to_be_visible()
    # The partition selection accepts a range; three days are three partitions.
    selection = dialog.get_by_role("textbox").first
    selection.fill(f"[{first}...{last}]")
    selection.press("Enter")
    expect(dialog.get_by_text("3 partitions", exact=False).first).to_be_visible()
    expect(dialog.get_by_role("button", name="Launch backfill")).to_be_enabled()
    _shot(ui, "order-batches-backfill-dialog")
