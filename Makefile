# Two commands matter: `make demo` and `make test`. Both create or refresh the local
# virtualenv from the pinned requirements first (the first call installs, later calls reuse it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The contract tests run npm @labdigital/commercetools-mock, pinned by its package-lock.json.
CTMOCK_DIR := tools/commercetools-mock
CTMOCK_STAMP := $(CTMOCK_DIR)/node_modules/.installed
# Dagster needs an absolute DAGSTER_HOME; the checked-in dagster_home/ holds only dagster.yaml.
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: install demo demo-tryton dev prod-local test lint typecheck format validate bench clean-home

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "ct_pipelines needs Python 3.11 or newer"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# `npm ci` empties node_modules first, so the stamp is written after it; a changed lock re-runs it.
# Without npm the contract tests skip locally; CI (CI=true) needs them, so the install fails there.
$(CTMOCK_STAMP): $(CTMOCK_DIR)/package.json $(CTMOCK_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(CTMOCK_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	elif [ "$$CI" = "true" ]; then \
		echo "npm not found: CI needs Node.js and npm for the commercetools-mock contract tests" >&2; exit 1; \
	else \
		echo "npm not found: not installing $(CTMOCK_DIR); the contract tests will skip" >&2; \
	fi

install: $(STAMP) $(CTMOCK_STAMP)

# `make demo DEMO_ARGS=--clean`: a sandbox without planted findings, every check green.
DEMO_ARGS ?=
demo: $(STAMP)
	$(PY) -m ct_pipelines.demo $(DEMO_ARGS)

# `make demo-tryton`: the whole pipeline against a fresh Tryton shop (trytond from
# requirements.txt) on SQLite in a scratch directory; its summary is read back from Tryton.
# TRYTON_DEMO_ARGS="--postgres postgresql://postgres@127.0.0.1:5432/postgres" uses a fresh
# PostgreSQL database instead; --days N (default 3), --keep.
TRYTON_DEMO_ARGS ?=
demo-tryton: $(STAMP)
	$(PY) -m ct_pipelines.demo_tryton $(TRYTON_DEMO_ARGS)

dev: $(STAMP)
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# `make prod-local`: the production profile (deploy/dagster.yaml) on this machine: dagster-daemon
# and the webserver (http://127.0.0.1:3000) against PostgreSQL at 127.0.0.1:5432 (trust auth;
# DAGSTER_PG_HOST, _PORT, _USER, _PASSWORD, _DB override it), DAGSTER_HOME in deploy/.prod_home.
# Creates the databases ct_pipelines_prod and ct_pipelines_prod_store when missing.
prod-local: $(STAMP)
	$(PY) deploy/prod_local.py

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

# Settings in pyproject.toml ([tool.mypy]: the ct_pipelines and ct_sandbox packages).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: $(STAMP)
	$(VENV)/bin/dagster definitions validate -w workspace.yaml

test: lint typecheck validate $(CTMOCK_STAMP)
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) bench/page_orders.py --orders 25000
	$(PY) bench/export_throughput.py --orders 1000 --latency-ms 50 --concurrency 4
	$(PY) bench/inventory_sync.py
	$(PY) bench/product_sync.py --skus 20000

# Removes the local instance's runs and the sandbox world; keeps the checked-in dagster.yaml.
clean-home:
	find dagster_home -mindepth 1 -not -name dagster.yaml -not -name .gitignore -exec rm -rf {} +
