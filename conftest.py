"""Suite-wide isolation for both test trees (ct_pipelines_tests, ct_sandbox_tests): no test touches
the developer's DAGSTER_HOME or a live system."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

_LIVE_VARIABLES = (
    "CTP_PROJECT_KEY",
    "CTP_CLIENT_ID",
    "CTP_CLIENT_SECRET",
    "CTP_AUTH_URL",
    "CTP_API_URL",
    "CTP_SCOPES",
    "CT_PIPELINES_MODE",
    "CT_PIPELINES_COMMERCETOOLS",
    "CT_PIPELINES_ERP",
    "CT_PIPELINES_ERP_URL",
    "CT_PIPELINES_ERP_TOKEN",
    "CT_PIPELINES_TRYTON_URL",
    "CT_PIPELINES_TRYTON_DATABASE",
    "CT_PIPELINES_TRYTON_USER",
    "CT_PIPELINES_TRYTON_PASSWORD",
    "CT_PIPELINES_DB_URL",
    "CT_PIPELINES_SANDBOX_DIR",
    "CT_PIPELINES_SETTLEMENT_DIR",
)


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in _LIVE_VARIABLES if name in os.environ}
    old_home = os.environ.get("DAGSTER_HOME")
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(Path(__file__).parent / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    yield
    os.environ.update(saved)
    if old_home is None:
        os.environ.pop("DAGSTER_HOME", None)
    else:
        os.environ["DAGSTER_HOME"] = old_home


@pytest.fixture(scope="session")
def seeded_world_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seeded sandbox for the session; tests get their own copy (seeding is the slow part)."""
    from ct_sandbox import SandboxWorld

    directory = tmp_path_factory.mktemp("sandbox_template")
    world = SandboxWorld.open(directory)
    world.close()
    return directory


@pytest.fixture
def sandbox_dir(
    seeded_world_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A private copy of the seeded sandbox, used by every resource in this test."""
    directory = tmp_path / "sandbox"
    shutil.copytree(seeded_world_template, directory)
    monkeypatch.setenv("CT_PIPELINES_SANDBOX_DIR", str(directory))
    monkeypatch.setenv("CT_PIPELINES_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    return directory
