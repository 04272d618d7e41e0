"""Product master syndication: one designated master (the ERP by default) to commercetools.

Plain Python, no Dagster: ``master`` turns master items into products, ``planner`` computes the
minimal commercetools update actions per product (and tells master changes from edits made in
commercetools), ``sync`` applies a plan through the commercetools client, ``parity`` compares
the two systems for the asset checks.
"""
