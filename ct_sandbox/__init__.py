"""The local sandbox: a commercetools project and an ERP/WMS in one SQLite world.

``SandboxWorld.open(sandbox_dir)`` seeds a realistic UK shop on first use and reuses it after,
so separate processes (Dagster runs, the CLI, tests) see one world.
"""

# Constants first: the sandbox apps import them from this package while it is still loading.
SANDBOX_PROJECT_KEY = "uk-shop-sandbox"
# Local-only credentials of the sandbox API client; they open nothing but the local world.
SANDBOX_CLIENT_ID = "sandbox-pipelines"
SANDBOX_CLIENT_SECRET = "sandbox-local-only-secret"
SANDBOX_CT_URL = "http://commercetools.sandbox"
SANDBOX_ERP_URL = "http://erp.sandbox/erp"

from ct_sandbox.world import DRIFT_KINDS, SandboxWorld  # noqa: E402

__all__ = [
    "DRIFT_KINDS",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_CT_URL",
    "SANDBOX_ERP_URL",
    "SANDBOX_PROJECT_KEY",
    "SandboxWorld",
]
