"""Operations: the exception queue, failure patterns, health, alerts and order traces.

Plain Python on top of the integration store and the system clients; the Dagster wiring lives in
``ct_pipelines/defs/operations`` and the command line in ``ct_pipelines/cli.py``.
"""
