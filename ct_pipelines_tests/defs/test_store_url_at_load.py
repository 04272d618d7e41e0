"""A bad CT_PIPELINES_DB_URL stops the code location at load, in one line naming the variable."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ct_pipelines.defs.resources import (
    ConfigurationError,
    IntegrationStoreResource,
    build_resources,
)

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unparseable_url_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="CT_PIPELINES_DB_URL"):
        build_resources({"CT_PIPELINES_DB_URL": "not a url"})


def test_unreachable_postgres_fails_at_load_naming_the_variable_without_the_password() -> None:
    url = f"postgresql://ops:hunter22@127.0.0.1:{_closed_port()}/store"
    with pytest.raises(ConfigurationError) as caught:
        build_resources({"CT_PIPELINES_DB_URL": url})
    message = str(caught.value)
    assert "CT_PIPELINES_DB_URL" in message and "127.0.0.1" in message
    assert "hunter22" not in message and "\n" not in message


def test_sqlite_in_a_missing_folder_fails_at_load(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nowhere' / 'store.db'}"
    with pytest.raises(ConfigurationError, match="CT_PIPELINES_DB_URL"):
        build_resources({"CT_PIPELINES_DB_URL": url})


def test_run_time_failure_is_one_line_naming_the_variable() -> None:
    url = f"postgresql://ops:hunter22@127.0.0.1:{_closed_port()}/store"
    with pytest.raises(ConfigurationError) as caught:
        IntegrationStoreResource(db_url=url).get_store()
    assert "CT_PIPELINES_DB_URL" in str(caught.value) and "hunter22" not in str(caught.value)


def test_definitions_validate_refuses_a_bad_store_url(tmp_path: Path) -> None:
    dagster = Path(sys.executable).parent / "dagster"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DAGSTER_HOME": str(tmp_path),
        "CT_PIPELINES_DB_URL": f"postgresql://ops@127.0.0.1:{_closed_port()}/store",
    }
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "CT_PIPELINES_DB_URL" in result.stdout + result.stderr
