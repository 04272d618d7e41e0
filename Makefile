# Two commands matter: `make demo` and `make test`. Both create or refresh the local
# virtualenv from the pinned requirements first (the first call installs, later calls reuse it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Dagster needs an absolute DAGSTER_HOME; the checked-in dagster_home/ holds only dagster.yaml.
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: install demo dev test lint format validate bench clean-home

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "ct_pipelines needs Python 3.11 or newer"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m ct_pipelines.demo

dev: $(STAMP)
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: $(STAMP)
	$(VENV)/bin/dagster definitions validate -w workspace.yaml

test: lint validate
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(PY) bench/page_orders.py --orders 25000
	$(PY) bench/export_throughput.py --orders 1000 --latency-ms 50 --concurrency 4
	$(PY) bench/inventory_sync.py
	$(PY) bench/product_sync.py --skus 20000

# Removes the local instance's runs and the sandbox world; keeps the checked-in dagster.yaml.
clean-home:
	find dagster_home -mindepth 1 -not -name dagster.yaml -not -name .gitignore -exec rm -rf {} +
