"""The Dagster UI in a real browser (Debian's chromium, driven by Playwright) after a demo run.

`dagster dev` is started on a free local port against a fresh DAGSTER_HOME that `make demo`'s
code filled; readiness is polled through GraphQL. Screenshots go to artifacts/screenshots/
(git-ignored). Under CI=true a missing chromium fails the test; locally it skips.
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

import pytest

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
LOCATION_STATUS = """query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

pytestmark = pytest.mark.slow


def _require_browser() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -r requirements.txt)")
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
        return json.loads(response.read())  # type: ignore[no-any-return]


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


@pytest.fixture(scope="module")
def page(webserver: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(base_url=webserver, viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        # Dagster's "join the community" dialog shows on a fresh instance whenever it likes.
        skip = page.get_by_role("button", name="Skip")
        page.add_locator_handler(skip, lambda locator: locator.click())
        try:
            yield page
        finally:
            browser.close()


def _shot(page: object, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_global_lineage_shows_the_systems_and_the_edges_between_flows(page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/asset-groups")
    for group in ("commercetools", "erp", "order_to_cash", "finance"):
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    _shot(page, "global-lineage")
    # ERP sales orders: written by order_to_cash, reconciled by finance.
    page.goto("/assets/erp/sales_orders?view=lineage")
    for name in ("erp_sales_orders", "finance_reconciliation"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    _shot(page, "erp-sales-orders-lineage")


def test_an_order_batches_partition_shows_rows_columns_and_a_plot(page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/assets/order_batches?view=partitions")
    expect(page.get_by_text("Row count").first).to_be_visible()
    expect(page.get_by_text("external_document_number").first).to_be_visible()
    _shot(page, "order-batches-partition")
    page.goto("/assets/order_batches?view=plots")
    expect(page.locator("canvas").first).to_be_visible()
    _shot(page, "order-batches-plots")


def test_the_checks_tab_shows_the_planted_finding(page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/assets/erp_sales_orders?view=checks")
    expect(page.get_by_text("orphaned_orders").first).to_be_visible()
    page.get_by_text("orphaned_orders").first.click()
    expect(page.get_by_text("MARKETPLACE-AMAZON-UK-206-4837261-5519034").first).to_be_visible()
    _shot(page, "erp-sales-orders-checks")


def test_the_backfill_dialog_opens_for_a_range_of_days(page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/assets/order_batches")
    page.get_by_role("button", name="Materialize").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.first).to_be_visible()
    expect(dialog.get_by_text("backfill", exact=False).first).to_be_visible()
    _shot(page, "order-batches-backfill-dialog")
