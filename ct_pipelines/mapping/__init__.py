"""Pure mapping between commercetools, the ERP and the integration's own tables (no I/O)."""
