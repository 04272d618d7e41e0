"""Which Dagster job re-processes each flow's exceptions when an operator asks for a retry."""

from ct_pipelines.defs.dispatch.assets import dispatch_job
from ct_pipelines.defs.finance.schedules import finance_nightly_job
from ct_pipelines.defs.inventory.jobs import inventory_full_reconciliation_job
from ct_pipelines.defs.operations.logic.exceptions import RetryTarget
from ct_pipelines.defs.order_to_cash.sensors import order_export_job
from ct_pipelines.defs.product_master.jobs import product_master_sync_job

RETRY_TARGETS: dict[str, RetryTarget] = {
    "order_to_cash": RetryTarget(
        order_export_job.name,
        per_order_day=True,
        behaviour="re-runs order_export_job for each shop day holding the orders: the day is "
        "re-read from commercetools, re-mapped and exported; orders already in the ERP are "
        "skipped (ledger), the rest are sent once. Success closes the exception; a new failure "
        "reopens it with one more attempt.",
    ),
    "dispatch": RetryTarget(
        dispatch_job.name,
        per_order_day=False,
        behaviour="runs dispatch_job once: new ERP shipments are read and every shipment of "
        "the last 7 days not yet recorded on its commercetools order is applied again. "
        "Success closes the exception; a new failure reopens it.",
    ),
    "product_master": RetryTarget(
        product_master_sync_job.name,
        per_order_day=False,
        behaviour="runs product_master_sync_job (product_master, then commercetools_products): "
        "the master is read again and every product out of step is synchronised. Exceptions "
        "for products now in step are closed by the sync.",
    ),
    "finance": RetryTarget(
        finance_nightly_job.name,
        per_order_day=True,
        behaviour="re-runs finance_nightly for each shop day concerned (the order's day, or the "
        "day in a journal batch id): the day's financial batch is rebuilt and reconciled; a "
        "journal already in the ERP is never posted twice.",
    ),
    "inventory": RetryTarget(
        inventory_full_reconciliation_job.name,
        per_order_day=False,
        behaviour="runs inventory_full_reconciliation: every SKU and channel is compared "
        "with the ERP/WMS and repaired, then snapshotted.",
    ),
}
