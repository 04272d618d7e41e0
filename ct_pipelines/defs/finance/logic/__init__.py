"""Finance: the nightly journal per shop day and currency, and its reconciliation with the ERP.

Plain Python (no Dagster): facts taken from commercetools orders and payment transactions,
balanced journals built from them, and a reconciliation of commercetools against the ERP to the
minor unit. The Dagster assets in ``ct_pipelines.defs.finance`` only fetch, store and post.
"""
