"""A real trytond for the session: a template database set up once, cloned, served on a free port.

PostgreSQL at CT_PIPELINES_TEST_PG_URL (its server, not its database, is used). Without
PostgreSQL or trytond the tests skip locally and fail under CI=true.

Setting up the template takes a few minutes (module activation, then the shop). With
CT_PIPELINES_TEST_TRYTON_KEEP=1 the template is kept after the session, named by a hash of the
setup code and the trytond version, and the next session clones it instead (local runs only;
CI sets up afresh).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from pydantic import SecretStr

PASSWORD = "admin-test-only"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"Tryton tests must run in CI: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _setup_hash() -> str:
    import trytond

    from ct_pipelines.erp.tryton import master_data, setup

    digest = hashlib.sha256(Path(setup.__file__).read_bytes())
    digest.update(Path(master_data.__file__).read_bytes())
    digest.update(trytond.__version__.encode())
    return digest.hexdigest()[:12]


def _database_exists(admin_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


@pytest.fixture(scope="session")
def tryton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    try:
        import trytond  # noqa: F401

        from ct_pipelines.erp.tryton import setup
    except ImportError as exc:
        _unavailable(f"trytond not installed: {exc}")
    pg_url = os.environ.get("CT_PIPELINES_TEST_PG_URL")
    if not pg_url:
        _unavailable("CT_PIPELINES_TEST_PG_URL is not set")
    assert pg_url is not None
    parts = urlsplit(pg_url)
    server_uri = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    directory = tmp_path_factory.mktemp("tryton")
    port = _free_port()
    suffix = uuid.uuid4().hex[:8]
    database = f"ctp_tryton_{suffix}"
    keep = os.environ.get("CT_PIPELINES_TEST_TRYTON_KEEP") == "1"
    template = f"ctp_tryton_tpl_{_setup_hash() if keep else suffix}"
    if keep and _database_exists(admin_url, template):
        setup.write_config(directory, server_uri, port)
    else:
        # Built under a scratch name and renamed when complete, so a kept template is never
        # half set up.
        building = f"ctp_tryton_build_{suffix}"
        try:
            from ct_pipelines.cli import sandbox_shop

            items, stock = sandbox_shop()
            setup.setup_shop(
                directory,
                building,
                PASSWORD,
                database_uri=server_uri,
                port=port,
                items=items,
                stock=stock,
                postgres_admin_url=admin_url,
            )
            setup._psql(admin_url, f'ALTER DATABASE "{building}" RENAME TO "{template}"')
        except BaseException:
            with contextlib.suppress(Exception):
                setup._psql(admin_url, f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            raise
    setup.clone_database(admin_url, template, database)
    config = Path(directory) / "trytond.conf"
    log = (Path(directory) / "trytond.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("trytond")), "-c", str(config), "-d", database],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.post(f"{url}/{database}/rpc/", json={"id": 0, "method": "x", "params": []})
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("trytond did not start; see trytond.log")
            time.sleep(0.2)
    try:
        yield {
            "url": url,
            "database": database,
            "admin_url": admin_url,
            "template": template,
            "user": "admin",
            "password": PASSWORD,
        }
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        for name in (database,) if keep else (database, template):
            with contextlib.suppress(Exception):
                setup._psql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def tryton_port(tryton_server: dict[str, str]):
    from ct_pipelines.erp.tryton.adapter import TrytonErpClient, TrytonSettings

    client = TrytonErpClient(
        TrytonSettings(
            url=tryton_server["url"],
            database=tryton_server["database"],
            user="admin",
            password=SecretStr(PASSWORD),
        )
    )
    yield client
    client.close()
