# The two commands users need: `make run` and `make test`. Both create .venv on first use
# (plain venv + pip, versions pinned by constraints.txt) and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
ARGS ?=

.PHONY: run test lint bench airflow clean-data lock help

help:
	@echo "make run    generate patients and run the whole pipeline once (embedded DuckDB)"
	@echo "make test   run the test suite"
	@echo "make bench  run the benchmarks in benchmarks/"
	@echo "make lint   SQLFluff over the dbt models"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps record which install a venv has; they are redone when the pins change.
$(VENV)/.run-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[snowflake,airflow,dev]'
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/fhirflow run $(ARGS)

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/sqlfluff lint dbt/models

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/run_all.py

clean-data:
	rm -rf data

lock:
	rm -rf /tmp/fhirflow-lock-venv && $(PYTHON) -m venv /tmp/fhirflow-lock-venv
	/tmp/fhirflow-lock-venv/bin/pip install --quiet -e '.[snowflake,airflow,dev]'
	( echo "# Pinned versions for every install of fhirflow (make run, make test, Docker image)."; \
	  echo "# Regenerate: make lock (installs all extras in a scratch venv and freezes it)."; \
	  /tmp/fhirflow-lock-venv/bin/pip freeze --exclude-editable | grep -v '^fhirflow' ) > constraints.txt
