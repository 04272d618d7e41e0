"""The npm @labdigital/commercetools-mock as a local HTTP server, and one fresh project per test.

The server is started once per session (``node tools/commercetools-mock/server.mjs 0``: the
server takes a free port and prints it), polled until its token endpoint answers, and stopped
at the end. Each test gets its own project key, so tests do not see each other's data.

Without Node.js or the npm packages (``make install`` runs ``npm ci``) the contract tests skip
locally; under ``CI=true`` they fail instead, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from pydantic import SecretStr

from ct_pipelines.commercetools import CommercetoolsClient, CommercetoolsSettings

REPO = Path(__file__).resolve().parents[2]
MOCK_DIR = REPO / "tools" / "commercetools-mock"
MOCK_PACKAGE = MOCK_DIR / "node_modules" / "@labdigital" / "commercetools-mock" / "package.json"
READY_PREFIX = "commercetools-mock ready "
START_TIMEOUT = 90.0  # generous: CI shares two cores and node starts cold
CLIENT_ID = "contract-tests"
CLIENT_SECRET = "contract-tests-secret"  # the mock accepts any credentials


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"commercetools-mock contract tests must run in CI: {reason}", pytrace=False)
    pytest.skip(f"commercetools-mock not available: {reason}")


@dataclass(frozen=True)
class MockServer:
    base_url: str
    process: subprocess.Popen[str]


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _wait_until_ready(
    process: subprocess.Popen[str], lines: queue.Queue[str | None], log: Path
) -> str:
    """The server's URL once its ready line is printed and its token endpoint answers."""
    deadline = time.monotonic() + START_TIMEOUT
    base_url: str | None = None
    while base_url is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"no ready line within {START_TIMEOUT:.0f}s; see {log}")
        try:
            line = lines.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        if line is None:
            raise RuntimeError(
                f"commercetools-mock exited with {process.wait()}: {log.read_text()[-2000:]}"
            )
        if line.startswith(READY_PREFIX):
            base_url = line[len(READY_PREFIX) :].strip()
    with httpx.Client(timeout=5.0) as http:
        delay = 0.05
        while True:
            try:
                response = http.post(
                    f"{base_url}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(CLIENT_ID, CLIENT_SECRET),
                )
                if response.status_code == 200:
                    return base_url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"commercetools-mock at {base_url} never answered; see {log}")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@pytest.fixture(scope="session")
def ct_mock_server() -> Iterator[MockServer]:
    node = shutil.which("node")
    if node is None:
        _unavailable("`node` is not on PATH (install Node.js 20+)")
    if not MOCK_PACKAGE.exists():
        _unavailable(f"npm packages missing in {MOCK_DIR.relative_to(REPO)} (run `make install`)")
    log = Path(tempfile.mkstemp(prefix="commercetools-mock-", suffix=".log")[1])
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [node, "server.mjs", "0"],
            cwd=MOCK_DIR,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        base_url = _wait_until_ready(process, lines, log)
        yield MockServer(base_url=base_url, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.unlink(missing_ok=True)


@dataclass
class MockProject:
    """One project on the mock: settings for our client and a plain httpx client for seeding."""

    server: MockServer
    key: str
    http: httpx.Client

    @property
    def scopes(self) -> list[str]:
        return [f"manage_project:{self.key}"]

    def settings(self) -> CommercetoolsSettings:
        return CommercetoolsSettings(
            project_key=self.key,
            client_id=CLIENT_ID,
            client_secret=SecretStr(CLIENT_SECRET),
            auth_url=self.server.base_url,
            api_url=self.server.base_url,
            scopes=self.scopes,
        )

    def env(self) -> dict[str, str]:
        """The CTP_* variables of the Merchant Center export, pointing at this project."""
        return {
            "CTP_PROJECT_KEY": self.key,
            "CTP_CLIENT_ID": CLIENT_ID,
            "CTP_CLIENT_SECRET": CLIENT_SECRET,
            "CTP_AUTH_URL": self.server.base_url,
            "CTP_API_URL": self.server.base_url,
            "CTP_SCOPES": " ".join(self.scopes),
        }

    def client(self, **kwargs: Any) -> CommercetoolsClient:
        return CommercetoolsClient(self.settings(), **kwargs)

    # --- seeding through the mock's own endpoints, not through our client ------------------

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"/{self.key}/{path}", json=body)
        assert response.status_code in (200, 201), f"seed POST {path}: {response.text}"
        return response.json()

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.get(f"/{self.key}/{path}", params=params)
        assert response.status_code == 200, f"seed GET {path}: {response.text}"
        return response.json()


@pytest.fixture
def ct_project(ct_mock_server: MockServer) -> Iterator[MockProject]:
    """A fresh, empty project on the shared mock server."""
    base = ct_mock_server.base_url
    token = httpx.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("contract-seeder", "seeder-secret"),
        timeout=10.0,
    ).json()["access_token"]
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    ) as http:
        yield MockProject(ct_mock_server, f"contract-{uuid.uuid4().hex[:12]}", http)
