"""The deployment files agree with each other and with the code: deploy/dagster.yaml (the
instance profile), docker-compose.yaml, the Dockerfile and the Helm values.

They are parsed as YAML (and `docker compose config` checks the compose file where the compose
plugin is installed); nothing here builds an image or talks to a cluster.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "deploy" / "dagster.yaml"
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"
DAGSTER_SERVICES = ("code-server", "daemon", "webserver")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _env_names(node: Any) -> set[str]:
    """Every `{env: NAME}` in a Dagster config tree."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {str(node["env"])}
        return {name for value in node.values() for name in _env_names(value)}
    if isinstance(node, list):
        return {name for value in node for name in _env_names(value)}
    return set()


def _package_source() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "ct_pipelines").rglob("*.py")))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _camel_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {_camel(str(k)): _camel_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_camel_keys(v) for v in node]
    return node


def _copy_instructions() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY in the Dockerfile (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0].upper() == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            found.append((args[:-1], args[-1]))
    return found


def _docker_compose_config() -> str | None:
    """`docker compose config` on the file where the compose plugin is installed (it works
    offline), else None; an error message when compose rejects the file."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    if subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode:
        return None
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DAGSTER_PG_PASSWORD": "compose-config-check"},
    )
    return "" if result.returncode == 0 else result.stderr or result.stdout


def test_the_profile_is_a_valid_instance_config_without_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profile = _load(PROFILE)
    names = _env_names(profile)
    assert names == {
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
    }
    # Every connection setting comes from the environment: no literal in the storage block.
    postgres_db = profile["storage"]["postgres"]["postgres_db"]
    assert all(set(value) == {"env"} for value in postgres_db.values()), postgres_db
    for name in names:
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else "x")
    shutil.copyfile(PROFILE, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_retries"]["enabled"] is True
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {
        "key": "dagster/partition",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in limits


def test_the_profile_limits_name_the_pools_and_tags_the_code_uses() -> None:
    source = _package_source()
    pools = set(re.findall(r'pool="([^"]+)"', source))
    assert "erp_writes" in pools
    profile_text = PROFILE.read_text()
    # The profile's comments name every pool the assets use, so a new pool is a decision.
    assert all(pool in profile_text for pool in pools), pools
    # The per-day limit keys on the tag a partitioned run carries.
    assert "dagster/partition" in profile_text


def test_prod_local_sets_the_variables_the_profile_reads() -> None:
    spec = importlib.util.spec_from_file_location("prod_local", ROOT / "deploy" / "prod_local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.PG_DEFAULTS) == _env_names(_load(PROFILE))
    env = module.profile_environment({}, ROOT / "deploy" / ".prod_home")
    assert os.path.isabs(env["DAGSTER_HOME"])
    assert env["CT_PIPELINES_DB_URL"].startswith("postgresql://")
    makefile = (ROOT / "Makefile").read_text()
    assert "prod-local:" in makefile and "deploy/prod_local.py" in makefile
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/.prod_home/" in ignored and "node_modules" in ignored


def test_the_dockerfile_copies_files_that_exist_and_starts_the_code_server() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    copies = _copy_instructions()
    assert copies
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
            assert source not in ignored, f".dockerignore drops {source}, which the image needs"
    sources = [s for group, _ in copies for s in group]
    assert sources.index("requirements.txt") < sources.index("ct_pipelines")
    assert "pip install -r requirements.txt" in text and "pip install --no-deps ." in text
    assert ("deploy/dagster.yaml",) in {tuple(s) for s, _ in copies}
    cmd = re.search(r"^CMD (\[.*?\])", re.sub(r"\\\n\s*", "", text), re.M)
    assert cmd is not None
    args = yaml.safe_load(cmd.group(1))
    assert args[:3] == ["dagster", "code-server", "start"]
    module = args[args.index("-m") + 1]
    assert importlib.util.find_spec(module) is not None


def test_the_compose_file_runs_the_four_services_on_the_profile() -> None:
    compose = _load(COMPOSE)
    services = compose["services"]
    assert {"postgres", *DAGSTER_SERVICES} <= set(services)
    profile_env = _env_names(_load(PROFILE))
    home = None
    for name in DAGSTER_SERVICES:
        service = services[name]
        env = service["environment"]
        assert profile_env <= set(env), (name, profile_env - set(env))
        home = env["DAGSTER_HOME"]
        mounts = [m.split(":") for m in service["volumes"] if isinstance(m, str)]
        assert ["./deploy/dagster.yaml", f"{home}/dagster.yaml", "ro"] in mounts, name
        assert env["DAGSTER_PG_HOST"] == "postgres"
    # Host paths it mounts exist.
    for service in services.values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), source
    # Passwords are references to the environment, never values.
    pg_env = services["postgres"]["environment"]
    assert pg_env["POSTGRES_PASSWORD"].startswith("${DAGSTER_PG_PASSWORD")
    for name in DAGSTER_SERVICES:
        assert services[name]["environment"]["DAGSTER_PG_PASSWORD"].startswith("${")
    assert pg_env["POSTGRES_DB"] == services["daemon"]["environment"]["DAGSTER_PG_DB"]
    # Where the compose plugin is installed, compose itself accepts the file (without it, as on
    # this project's machines, the checks above are the check).
    assert not _docker_compose_config()


def test_the_compose_code_server_is_what_the_daemon_and_webserver_load() -> None:
    services = _load(COMPOSE)["services"]
    code_server = services["code-server"]
    command = code_server["command"]
    port = int(command[command.index("-p") + 1])
    assert command[command.index("-m") + 1] == "ct_pipelines.definitions"
    workspace_path = "/opt/dagster/workspace.yaml"
    copied = {dest: sources for sources, dest in _copy_instructions()}
    assert workspace_path in copied
    workspace = _load(ROOT / copied[workspace_path][0])
    grpc = workspace["load_from"][0]["grpc_server"]
    assert (grpc["host"], grpc["port"]) == ("code-server", port)
    assert grpc["location_name"] == command[command.index("--location-name") + 1]
    for name in ("daemon", "webserver"):
        assert workspace_path in services[name]["command"]


def test_the_compose_and_helm_pass_only_variables_the_code_reads() -> None:
    source = _package_source()
    services = _load(COMPOSE)["services"]
    names = {n for n in services["code-server"]["environment"] if n.startswith(("CT_", "CTP_"))}
    deployment = _load(HELM_VALUES)["dagster-user-deployments"]["deployments"][0]
    names |= {e["name"] for e in deployment["env"]}
    assert names
    unknown = sorted(n for n in names if n not in source)
    assert unknown == [], f"variables no code reads: {unknown}"
    # Credentials are never given a value in the compose file: passed through when set.
    for name in names:
        if name.startswith("CTP_") or name.endswith(("_TOKEN", "_SECRET", "_PASSWORD")):
            assert services["code-server"]["environment"].get(name) is None, name


def test_the_helm_values_carry_the_profiles_concurrency_monitoring_and_retries() -> None:
    profile = _load(PROFILE)
    values = _load(HELM_VALUES)
    # Tag limits keep Dagster's own spelling inside (key, value.applyLimitPerUniqueValue, limit).
    assert values["concurrency"] == _camel_keys(profile["concurrency"])
    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    assert not {"maxConcurrentRuns", "tagConcurrencyLimits"} & set(queued)
    assert (
        queued["dequeueIntervalSeconds"]
        == profile["run_coordinator"]["config"]["dequeue_interval_seconds"]
    )
    assert daemon["runRetries"] == _camel_keys(profile["run_retries"])
    monitoring = _camel_keys(profile["run_monitoring"])
    # Only the resume attempts differ: K8sRunLauncher can resume a run, the default launcher not.
    assert {k: v for k, v in daemon["runMonitoring"].items() if k != "maxResumeRunAttempts"} == {
        k: v for k, v in monitoring.items() if k != "maxResumeRunAttempts"
    }
    assert daemon["sensors"] == _camel_keys(profile["sensors"])
    assert daemon["schedules"] == _camel_keys(profile["schedules"])
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["telemetry"] == profile["telemetry"]
    deployment = values["dagster-user-deployments"]["deployments"][0]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("-m") + 1] == "ct_pipelines.definitions"
    assert "postgresqlPassword" not in values["postgresql"]
