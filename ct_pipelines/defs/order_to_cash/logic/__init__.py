"""Order-to-cash export: plain Python, no Dagster (the assets in defs/order_to_cash wire it)."""
