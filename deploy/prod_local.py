"""`make prod-local`: the production profile (deploy/dagster.yaml) on this machine.

Starts dagster-daemon and, unless --no-webserver, the webserver against PostgreSQL (default
127.0.0.1:5432, user postgres, trust auth), with DAGSTER_HOME under the project
(deploy/.prod_home, git-ignored). The instance database (default ct_pipelines_prod) and the
integration store's database (<instance database>_store, unless CT_PIPELINES_DB_URL is set)
are created when missing. Connection settings come from the DAGSTER_PG_* variables that
deploy/dagster.yaml reads; only their defaults live here. Stops both processes on Ctrl-C or
SIGTERM, and stops the other one if either exits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "deploy" / "dagster.yaml"
DEFAULT_HOME = ROOT / "deploy" / ".prod_home"

# The variables deploy/dagster.yaml reads, with this machine's defaults.
PG_DEFAULTS = {
    "DAGSTER_PG_HOST": "127.0.0.1",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "postgres",
    "DAGSTER_PG_PASSWORD": "",
    "DAGSTER_PG_DB": "ct_pipelines_prod",
}


def profile_environment(
    environ: Mapping[str, str], home: Path, database: str | None = None
) -> dict[str, str]:
    """The environment the daemon and webserver run with: PG settings, DAGSTER_HOME, store."""
    env = dict(environ)
    for name, default in PG_DEFAULTS.items():
        env.setdefault(name, default)
    if database:
        env["DAGSTER_PG_DB"] = database
    env["DAGSTER_HOME"] = str(home.resolve())
    if not env.get("CT_PIPELINES_DB_URL"):
        # The integration store next to the instance, on PostgreSQL: several run workers claim
        # orders there at once (FOR UPDATE SKIP LOCKED).
        env["CT_PIPELINES_DB_URL"] = (
            f"postgresql://{env['DAGSTER_PG_USER']}@{env['DAGSTER_PG_HOST']}:"
            f"{env['DAGSTER_PG_PORT']}/{env['DAGSTER_PG_DB']}_store"
        )
    return env


def ensure_database(env: Mapping[str, str], name: str) -> bool:
    """Create database `name` on the configured server if it is missing; True if created."""
    with psycopg.connect(
        host=env["DAGSTER_PG_HOST"],
        port=int(env["DAGSTER_PG_PORT"]),
        user=env["DAGSTER_PG_USER"],
        password=env.get("DAGSTER_PG_PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def prepare_home(home: Path) -> Path:
    """DAGSTER_HOME with the profile's dagster.yaml (refreshed on every start)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROFILE, home / "dagster.yaml")
    return home


def commands(port: int, webserver: bool) -> list[list[str]]:
    bin_dir = Path(sys.executable).parent
    started = [[str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"]]
    if webserver:
        started.append(
            [
                str(bin_dir / "dagster-webserver"),
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ]
        )
    return started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="DAGSTER_HOME")
    parser.add_argument("--database", help="instance database (default $DAGSTER_PG_DB)")
    parser.add_argument("--port", type=int, default=3000, help="webserver port")
    parser.add_argument("--no-webserver", action="store_true", help="start the daemon only")
    args = parser.parse_args(argv)

    env = profile_environment(os.environ, prepare_home(args.home), args.database)
    for name in (env["DAGSTER_PG_DB"], f"{env['DAGSTER_PG_DB']}_store"):
        if name.endswith("_store") and "CT_PIPELINES_DB_URL" in os.environ:
            continue
        if ensure_database(env, name):
            print(f"prod-local: created database {name}", flush=True)
    print(
        f"prod-local: DAGSTER_HOME={env['DAGSTER_HOME']}, instance database "
        f"{env['DAGSTER_PG_DB']} on {env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}",
        flush=True,
    )
    children = [
        subprocess.Popen(cmd, cwd=ROOT, env=env)
        for cmd in commands(args.port, not args.no_webserver)
    ]
    if not args.no_webserver:
        print(f"prod-local: webserver on http://127.0.0.1:{args.port}", flush=True)

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while not stopping:
        exited = [c for c in children if c.poll() is not None]
        if exited:
            code = exited[0].returncode or 1
            print(f"prod-local: {exited[0].args[0]} exited with {exited[0].returncode}", flush=True)
            break
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return code


if __name__ == "__main__":
    sys.exit(main())
