"""Resources every flow shares: commercetools, the ERP/WMS and the integration store.

Each side chooses on its own between the local sandbox and a live system, so a trial run can
pair a real commercetools project with the sandbox ERP. Secrets reach the resources only as
``dg.EnvVar`` (resolved at run time and never shown in the UI); the mode switches are plain
settings read when the code location loads.
"""

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import dagster as dg
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from ct_pipelines.commercetools import CommercetoolsClient, CommercetoolsSettings
from ct_pipelines.commercetools.settings import OPTIONAL_ENV_VARIABLES, REQUIRED_ENV_VARIABLES
from ct_pipelines.defs.step_log import forwards_warnings
from ct_pipelines.erp.port import ErpPort
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines.kernel.scrub import scrub_text
from ct_pipelines.store import (
    IntegrationStore,
    StoreConfigurationError,
    safe_url,
    store_url_from_env,
)

if TYPE_CHECKING:
    from ct_pipelines.defs.finance.resources import SettlementFilesResource
    from ct_pipelines.defs.product_master.resources import ProductCatalogResource

MODES = ("auto", "sandbox", "live", "tryton")  # tryton: the ERP side only
CTP_VARIABLES = (
    "CTP_PROJECT_KEY",
    "CTP_CLIENT_ID",
    "CTP_CLIENT_SECRET",
    "CTP_AUTH_URL",
    "CTP_API_URL",
    "CTP_SCOPES",
)
CTP_REQUIRED = REQUIRED_ENV_VARIABLES
CTP_OPTIONAL = OPTIONAL_ENV_VARIABLES  # CTP_SCOPES, as in the OAuth grant
ERP_VARIABLES = ("CT_PIPELINES_ERP_URL", "CT_PIPELINES_ERP_TOKEN")
TRYTON_VARIABLES = (
    "CT_PIPELINES_TRYTON_URL",
    "CT_PIPELINES_TRYTON_DATABASE",
    "CT_PIPELINES_TRYTON_USER",
    "CT_PIPELINES_TRYTON_PASSWORD",
)


def resolved(value: str | None) -> str | None:
    """A setting's value; an EnvVar not yet resolved by a run (the demo, tests) is read here."""
    if isinstance(value, dg.EnvVar):
        return value.get_value()
    return value


class ConfigurationError(RuntimeError):
    """The environment asks for something that cannot work; raised before any run starts."""


def side_mode(side: str, environ: Mapping[str, str] = os.environ) -> str:
    """The mode of one side: its own switch, else CT_PIPELINES_MODE, else auto."""
    value = (
        environ.get(f"CT_PIPELINES_{side.upper()}") or environ.get("CT_PIPELINES_MODE") or "auto"
    )
    value = value.strip().lower()
    if value not in MODES:
        raise ConfigurationError(
            f"CT_PIPELINES_{side.upper()} / CT_PIPELINES_MODE is {value!r}; expected one of {', '.join(MODES)}"
        )
    return value


def sandbox_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the sandbox world lives, so separate Dagster runs see one world."""
    explicit = environ.get("CT_PIPELINES_SANDBOX_DIR")
    if explicit:
        return Path(explicit)
    home = environ.get("DAGSTER_HOME")
    if not home:
        raise ConfigurationError(
            "Set DAGSTER_HOME (or CT_PIPELINES_SANDBOX_DIR) to use the sandbox"
        )
    return Path(home) / "sandbox"


_worlds: dict[Path, Any] = {}
_worlds_lock = threading.Lock()


def sandbox_world(directory: Path) -> Any:
    """The sandbox world in ``directory``, one object per process (seeded on first use)."""
    from ct_sandbox import SandboxWorld

    key = directory.resolve()
    with _worlds_lock:
        world = _worlds.get(key)
        if world is None:
            world = _worlds[key] = SandboxWorld.open(key)
        return world


def sandbox_settings() -> CommercetoolsSettings:
    """Credentials of the local sandbox project: local-only values, not secrets."""
    from pydantic import SecretStr

    from ct_sandbox import (
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        SANDBOX_CT_URL,
        SANDBOX_PROJECT_KEY,
    )

    return CommercetoolsSettings(
        project_key=SANDBOX_PROJECT_KEY,
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SecretStr(SANDBOX_CLIENT_SECRET),
        auth_url=SANDBOX_CT_URL,
        api_url=SANDBOX_CT_URL,
        scopes=[f"manage_project:{SANDBOX_PROJECT_KEY}"],
    )


def missing_settings(required: tuple[str, ...], values: Mapping[str, str | None]) -> list[str]:
    """The required names whose value is unset or blank."""
    return [name for name in required if not (values.get(name) or "").strip()]


def uses_sandbox_for(
    mode: str,
    side: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    values: Mapping[str, str | None],
) -> bool:
    """True when the side runs against the sandbox; raises when the settings are partial.

    ``values`` maps a variable name to its value, None when it is not set at all (blank counts
    as set but missing). ``auto`` uses the sandbox only when none of the side's variables is
    set; some but not all set is an error naming the missing ones, never a silent fallback.
    """
    if mode == "sandbox":
        return True
    missing = missing_settings(required, values)
    if not missing:
        return False
    if mode == "live":
        raise ConfigurationError(
            f"CT_PIPELINES_MODE=live but {side} credentials are missing: {', '.join(missing)}. "
            "Refusing to fall back to the sandbox."
        )
    present = [name for name in (*required, *optional) if values.get(name) is not None]
    if not present:
        return True
    raise ConfigurationError(
        f"{side}: {', '.join(present)} set but {', '.join(missing)} missing or blank. "
        f"Set all of {', '.join(required)}"
        + (f" ({', '.join(optional)} optional)" if optional else "")
        + " for a live system, or none of them for the local sandbox. "
        "Refusing to fall back to the sandbox."
    )


class CommercetoolsResource(dg.ConfigurableResource):
    """A commercetools project: live when the CTP_* variables are set, the local sandbox when
    none is; some but not all set is a ConfigurationError (see :func:`uses_sandbox_for`)."""

    mode: str = "auto"
    project_key: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    auth_url: str | None = None
    api_url: str | None = None
    scopes: str | None = None
    sandbox_dir: str | None = None

    def _values(self) -> dict[str, str | None]:
        return {
            "CTP_PROJECT_KEY": resolved(self.project_key),
            "CTP_CLIENT_ID": resolved(self.client_id),
            "CTP_CLIENT_SECRET": resolved(self.client_secret),
            "CTP_AUTH_URL": resolved(self.auth_url),
            "CTP_API_URL": resolved(self.api_url),
            "CTP_SCOPES": resolved(self.scopes),
        }

    def _settings_env(self) -> dict[str, str]:
        return {k: v for k, v in self._values().items() if v}

    @property
    def uses_sandbox(self) -> bool:
        return uses_sandbox_for(
            self.mode, "commercetools", CTP_REQUIRED, CTP_OPTIONAL, self._values()
        )

    def describe(self) -> str:
        """A line for logs and metadata saying which project this is, without secrets."""
        if self.uses_sandbox:
            return f"commercetools sandbox (no CTP_* credentials) in {self._sandbox_path()}"
        return f"commercetools project {resolved(self.project_key)} at {resolved(self.api_url)}"

    def _sandbox_path(self) -> Path:
        return Path(self.sandbox_dir) if self.sandbox_dir else sandbox_dir()

    @contextmanager
    @forwards_warnings
    def open_client(self) -> Iterator[CommercetoolsClient]:
        """A client for one step; closed when the step is done."""
        if self.uses_sandbox:
            world = sandbox_world(self._sandbox_path())
            dg.get_dagster_logger().info(
                "commercetools: no CTP_* credentials, using the local sandbox at %s",
                self._sandbox_path(),
            )
            client = CommercetoolsClient(
                sandbox_settings(), transport=world.commercetools_transport()
            )
        else:
            client = CommercetoolsClient(CommercetoolsSettings.from_env(self._settings_env()))
        try:
            yield client
        finally:
            client.close()


class ErpResource(dg.ConfigurableResource):
    """The ERP/WMS through its port: live when CT_PIPELINES_ERP_URL and _TOKEN are set, the
    sandbox when neither is; one without the other is a ConfigurationError."""

    mode: str = "auto"
    base_url: str | None = None
    api_token: str | None = None
    sandbox_dir: str | None = None
    tryton_url: str | None = None
    tryton_database: str | None = None
    tryton_user: str | None = None
    tryton_password: str | None = None

    @property
    def uses_sandbox(self) -> bool:
        if self.mode == "tryton":
            return False
        values = {
            "CT_PIPELINES_ERP_URL": resolved(self.base_url),
            "CT_PIPELINES_ERP_TOKEN": resolved(self.api_token),
        }
        return uses_sandbox_for(self.mode, "ERP", ERP_VARIABLES, (), values)

    def describe(self) -> str:
        if self.mode == "tryton":
            return f"Tryton {resolved(self.tryton_database)} at {resolved(self.tryton_url)}"
        if self.uses_sandbox:
            return f"ERP/WMS sandbox in {self._sandbox_path()}"
        return f"ERP/WMS at {resolved(self.base_url)}"

    def _sandbox_path(self) -> Path:
        return Path(self.sandbox_dir) if self.sandbox_dir else sandbox_dir()

    @contextmanager
    @forwards_warnings
    def open_port(self) -> Iterator[ErpPort]:
        if self.mode == "tryton":
            from pydantic import SecretStr

            from ct_pipelines.erp.tryton.adapter import TrytonErpClient, TrytonSettings

            tryton = TrytonErpClient(
                TrytonSettings(
                    url=str(resolved(self.tryton_url)),
                    database=str(resolved(self.tryton_database)),
                    user=str(resolved(self.tryton_user)),
                    password=SecretStr(str(resolved(self.tryton_password))),
                )
            )
            try:
                yield tryton
            finally:
                tryton.close()
            return
        if self.uses_sandbox:
            from ct_sandbox import SANDBOX_ERP_URL

            world = sandbox_world(self._sandbox_path())
            dg.get_dagster_logger().info(
                "ERP: CT_PIPELINES_ERP_URL not set, using the local sandbox at %s",
                self._sandbox_path(),
            )
            client = RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport())
        else:
            from pydantic import SecretStr

            token_value = resolved(self.api_token)
            token = SecretStr(token_value) if token_value else None
            client = RestErpClient(str(resolved(self.base_url)), token)
        try:
            yield client
        finally:
            client.close()


_stores: dict[str, IntegrationStore] = {}
_stores_lock = threading.Lock()


class IntegrationStoreResource(dg.ConfigurableResource):
    """The integration store: SQLite under DAGSTER_HOME, or PostgreSQL via CT_PIPELINES_DB_URL."""

    db_url: str | None = None

    def get_store(self) -> IntegrationStore:
        # One engine and one migration check per process, not per step.
        url = resolved(self.db_url) or store_url_from_env()
        with _stores_lock:
            store = _stores.get(url)
            if store is None:
                store = IntegrationStore(url)
                try:
                    store.migrate()
                except SQLAlchemyError as exc:
                    # One line naming the variable, not the driver's page-long traceback.
                    raise ConfigurationError(_store_unreachable(url, exc)) from None
                _stores[url] = store
            return store


_checked_store_urls: set[str] = set()


def _store_unreachable(url: str, exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return (
        f"the integration store at {safe_url(url)} (CT_PIPELINES_DB_URL) cannot be used: "
        f"{type(cause).__name__}: {scrub_text(first_line, limit=200)}. Check the host, port, "
        "database name and credentials in CT_PIPELINES_DB_URL, or unset it to use SQLite under "
        "DAGSTER_HOME."
    )


def check_store_url(environ: Mapping[str, str] = os.environ) -> None:
    """At load: a set CT_PIPELINES_DB_URL must parse and accept a connection (once per URL)."""
    raw = (environ.get("CT_PIPELINES_DB_URL") or "").strip()
    if not raw or raw in _checked_store_urls:
        return
    try:
        url = store_url_from_env(environ)
    except StoreConfigurationError as exc:
        raise ConfigurationError(str(exc)) from None
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, connect_args={"connect_timeout": 5}, poolclass=NullPool)
        try:
            with engine.connect():
                pass
        except SQLAlchemyError as exc:
            raise ConfigurationError(_store_unreachable(url, exc)) from None
        finally:
            engine.dispose()
    elif parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            raise ConfigurationError(
                f"CT_PIPELINES_DB_URL points at a SQLite file in {folder}, which does not exist"
            )
    _checked_store_urls.add(raw)


def _env(name: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """An EnvVar when the variable is set, so unset optional settings stay None."""
    return dg.EnvVar(name) if environ.get(name) else None


class ProjectResources(TypedDict):
    commercetools: CommercetoolsResource
    erp: ErpResource
    store: IntegrationStoreResource
    product_catalog: "ProductCatalogResource"
    settlement_files: "SettlementFilesResource"


def build_resources(environ: Mapping[str, str] = os.environ) -> ProjectResources:
    """Every resource the flows use; the one place they are bound (Definitions, demo, tests)."""
    from ct_pipelines.defs.finance.resources import SettlementFilesResource
    from ct_pipelines.defs.product_master.resources import ProductCatalogResource

    ct_mode = side_mode("commercetools", environ)
    if ct_mode == "tryton":
        raise ConfigurationError("tryton is a mode of the ERP side only (CT_PIPELINES_ERP=tryton)")
    erp_mode = side_mode("erp", environ)
    # Fail at load time, so `dagster dev` and `dagster definitions validate` show the reason
    # instead of a run going green on the sandbox. Blank counts as set but missing.
    ct_sandbox = uses_sandbox_for(ct_mode, "commercetools", CTP_REQUIRED, CTP_OPTIONAL, environ)
    if erp_mode == "tryton":
        missing = missing_settings(TRYTON_VARIABLES, environ)
        if missing:
            raise ConfigurationError(
                f"CT_PIPELINES_ERP=tryton but {', '.join(missing)} missing or blank. "
                "Refusing to fall back to the sandbox."
            )
    else:
        uses_sandbox_for(erp_mode, "ERP", ERP_VARIABLES, (), environ)
    check_store_url(environ)
    sandbox = environ.get("CT_PIPELINES_SANDBOX_DIR")
    return {
        "commercetools": CommercetoolsResource(
            mode=ct_mode,
            project_key=_env("CTP_PROJECT_KEY", environ),
            client_id=_env("CTP_CLIENT_ID", environ),
            client_secret=_env("CTP_CLIENT_SECRET", environ),
            auth_url=_env("CTP_AUTH_URL", environ),
            api_url=_env("CTP_API_URL", environ),
            scopes=_env("CTP_SCOPES", environ),
            sandbox_dir=sandbox,
        ),
        "erp": ErpResource(
            mode=erp_mode,
            base_url=_env("CT_PIPELINES_ERP_URL", environ),
            api_token=_env("CT_PIPELINES_ERP_TOKEN", environ),
            sandbox_dir=sandbox,
            tryton_url=_env("CT_PIPELINES_TRYTON_URL", environ),
            tryton_database=_env("CT_PIPELINES_TRYTON_DATABASE", environ),
            tryton_user=_env("CT_PIPELINES_TRYTON_USER", environ),
            tryton_password=_env("CT_PIPELINES_TRYTON_PASSWORD", environ),
        ),
        "store": IntegrationStoreResource(db_url=_env("CT_PIPELINES_DB_URL", environ)),
        "product_catalog": ProductCatalogResource(),
        # The payment provider's settlement reports; the sandbox writes its own.
        "settlement_files": SettlementFilesResource(
            directory=_env("CT_PIPELINES_SETTLEMENT_DIR", environ),
            use_sandbox=ct_sandbox,
        ),
    }


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
