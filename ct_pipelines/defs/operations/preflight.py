"""Preflight as a Dagster job, and the wiring the ``ct-pipelines preflight`` command shares.

The checks live in :mod:`ct_pipelines.defs.operations.logic.preflight`; this module opens the
configured commercetools project and ERP (the same resources the flows use) and reports.
"""

import dataclasses

import dagster as dg

from ct_pipelines.defs.inventory.logic.settings import InventorySettings
from ct_pipelines.defs.operations.logic.preflight import (
    Finding,
    PreflightSettings,
    blockers,
    collect,
    evaluate,
    markdown,
    table,
)
from ct_pipelines.defs.product_master.logic.master import MasterCatalog, build_catalog
from ct_pipelines.defs.product_master.resources import ProductCatalogResource
from ct_pipelines.defs.resources import CommercetoolsResource, ErpResource


def run_preflight(
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    product_catalog: ProductCatalogResource,
    *,
    create_missing: bool = False,
    export_channel_key: str | None = None,
) -> list[Finding]:
    """Every finding for the configured systems (read-only unless ``create_missing``)."""
    settings = PreflightSettings(
        tax_categories=dict(product_catalog.tax_categories),
        product_type_key=product_catalog.product_type_key,
        excluded_attributes=frozenset(product_catalog.excluded_attributes),
        create_missing=create_missing,
    )
    if export_channel_key:
        settings = dataclasses.replace(settings, export_channel_key=export_channel_key)
    rules = InventorySettings.from_env().load_rules()

    def read_master() -> MasterCatalog:
        with erp.open_port() as port:
            return build_catalog(port.iter_items(), product_catalog.rules())

    with commercetools.open_client() as client:
        facts = collect(client, client.settings.project_key, read_master, settings)
    return evaluate(facts, settings, rules)


class PreflightConfig(dg.Config):
    create_missing: bool = False  # create the export channel (role OrderExport) when missing
    export_channel_key: str = ""  # default erp-order-export


@dg.op(
    description=(
        "Checks the configured commercetools project and ERP before going live: credentials "
        "and scopes, export and supply channels, tax categories, product types, currencies "
        "and countries, custom line slugs, ERP reachability. Fails on a blocker."
    )
)
def preflight_checks(
    context: dg.OpExecutionContext,
    config: PreflightConfig,
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    product_catalog: ProductCatalogResource,
) -> None:
    findings = run_preflight(
        commercetools,
        erp,
        product_catalog,
        create_missing=config.create_missing,
        export_channel_key=config.export_channel_key or None,
    )
    context.log.info(
        "preflight (%s; %s)\n%s", commercetools.describe(), erp.describe(), table(findings)
    )
    found = blockers(findings)
    metadata: dict[str, dg.RawMetadataValue] = {
        "findings": dg.MetadataValue.md(markdown(findings)),
        "blockers": len(found),
        "target": f"{commercetools.describe()}; {erp.describe()}",
    }
    if found:
        raise dg.Failure(
            description=f"{len(found)} preflight blocker(s): "
            + "; ".join(f"{f.area} {f.item}: {f.status}" for f in found),
            metadata=metadata,
        )


@dg.job(
    description="Preflight before pointing the flows at a real project (read-only).",
    tags={"ct/flow": "operations"},
)
def preflight_job() -> None:
    preflight_checks()
