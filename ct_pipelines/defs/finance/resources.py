"""Where finance finds the payment provider's settlement reports."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from ct_pipelines.defs.finance.logic.settlement import DEFAULT_METADATA_KEY

SETTLEMENT_DIR_ENV = "CT_PIPELINES_SETTLEMENT_DIR"


@dataclass(frozen=True)
class SettlementLocation:
    """The directory to read (None when not configured) and, in words, where it came from."""

    directory: Path | None
    explanation: str


class SettlementFilesResource(dg.ConfigurableResource):
    """The payment provider's settlement reports: Stripe's itemized balance report as CSV.

    ``directory`` is absolute, or relative to ``DAGSTER_HOME``; every file in it matching
    ``pattern`` is read (overlapping reports are fine: a row repeated is read once). Unset, the
    sandbox's payment provider directory is used when commercetools is the sandbox
    (``use_sandbox``), and otherwise the settlement reconciliation is not configured and says so.
    """

    directory: str | None = None
    pattern: str = "*.csv"
    provider: str = "stripe"  # paymentMethodInfo.paymentInterface of the payments it settles
    metadata_key: str = DEFAULT_METADATA_KEY  # payment_metadata[<key>] = commercetools payment id
    use_sandbox: bool = False  # the commercetools side is the sandbox

    def location(self) -> SettlementLocation:
        if self.directory:
            path = Path(self.directory).expanduser()
            if not path.is_absolute():
                home = os.environ.get("DAGSTER_HOME")
                if not home:
                    return SettlementLocation(
                        None,
                        f"{SETTLEMENT_DIR_ENV} is the relative path {self.directory!r} and "
                        "DAGSTER_HOME is not set to resolve it against",
                    )
                path = Path(home) / path
            return SettlementLocation(path, f"{SETTLEMENT_DIR_ENV} / settlement_files.directory")
        if self.use_sandbox:
            from ct_pipelines.defs.resources import ConfigurationError, sandbox_dir

            try:
                return SettlementLocation(
                    sandbox_dir() / "settlements", "the sandbox's payment provider"
                )
            except ConfigurationError as exc:
                return SettlementLocation(None, str(exc))
        return SettlementLocation(
            None,
            f"no settlement file is configured: set {SETTLEMENT_DIR_ENV} (absolute, or relative "
            "to DAGSTER_HOME) to the directory holding the provider's balance reports (CSV)",
        )
