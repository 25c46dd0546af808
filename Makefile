# Two commands matter: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install demo test scale-test lint docs db-up db-down lock bench clean

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (first run takes a few minutes)"
	@$(BIN)/python -m pip install -qq --disable-pip-version-check -r requirements.txt
	@$(BIN)/python -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP)

## make demo: a week of telemetry -> landing -> dbt -> gates -> export -> report, then a summary.
demo: install
	$(BIN)/routerloop demo

## make test: the whole suite against a real PostgreSQL (embedded unless ROUTERLOOP_DATABASE_URL is set).
test: install
	$(BIN)/routerloop db up --quiet
	$(BIN)/python -m pytest

## make scale-test: the CeleryExecutor, a broker and two workers backfill six hours (also part of make test).
scale-test: install
	$(BIN)/routerloop db up --quiet
	$(BIN)/python -m pytest tests/test_scale_celery.py -s

lint: install
	$(BIN)/ruff check plugins dags tests bench
	$(BIN)/routerloop lint-sql

docs: install
	$(BIN)/routerloop docs --serve

db-up: install
	$(BIN)/routerloop db up

db-down: install
	$(BIN)/routerloop db down

bench: install
	$(BIN)/python bench/land_throughput.py --repeat 3

## make lock: re-resolve requirements.txt from pyproject's direct dependencies.
lock:
	rm -rf /tmp/routerloop-lock && $(PYTHON) -m venv /tmp/routerloop-lock
	/tmp/routerloop-lock/bin/pip install -q ".[dev]" setuptools wheel
	/tmp/routerloop-lock/bin/pip freeze --all --exclude-editable | grep -v -E '^(pip|routerloop)==' \
	  | sed '1i # Full resolved set for Python 3.11, every transitive package pinned (regenerate: make lock).' > requirements.txt

clean:
	-$(BIN)/routerloop db down
	rm -rf .routerloop exports dbt_project/target dbt_project/logs
