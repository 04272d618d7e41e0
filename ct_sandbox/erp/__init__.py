"""The sandbox ERP/WMS: its request schema (``schema``); the REST app is ``ct_sandbox.erp_app``."""
