-- docker-compose.yaml: the integration store's own database next to the Dagster instance's
-- (run once, when the postgres volume is created).
CREATE DATABASE ct_pipelines_store;
