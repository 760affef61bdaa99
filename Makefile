# The two commands users need: `make run` and `make test`. Both create .venv on first use
# (plain venv + pip, versions pinned by constraints.txt) and reuse it afterwards.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
ARGS ?=
PY_SOURCES := src tests dags benchmarks

.PHONY: run test lint bench airflow clean-data lock help

help:
	@echo "make run    generate patients and run the whole pipeline once (embedded DuckDB)"
	@echo "make test   run the test suite"
	@echo "make bench  run the benchmarks in benchmarks/"
	@echo "make lint   ruff over the Python code, SQLFluff over the dbt models"
	@echo "make airflow  Airflow on 127.0.0.1:$(AIRFLOW_PORT) running the four DAGs (embedded DuckDB)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps record which install a venv has; they are redone when the pins change.
$(VENV)/.run-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	@touch $@

$(VENV)/.test-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[snowflake,airflow,dev]'
	@touch $@ $(VENV)/.run-installed

$(VENV)/.airflow-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[airflow]'
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/fhirflow run $(ARGS)

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(ARGS)

# ruff (rules in pyproject.toml), then SQLFluff even when ruff found problems. SQLFluff renders
# the models with dbt (dbt templater) against a scratch DuckDB file.
lint: $(VENV)/.test-installed
	$(BIN)/ruff check $(PY_SOURCES); ruff=$$?; \
	FHIRFLOW_DUCKDB_PATH=$${TMPDIR:-/tmp}/fhirflow-lint.duckdb $(BIN)/sqlfluff lint dbt/models \
	&& exit $$ruff

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/run_all.py

# Airflow on this machine (scheduler, DAG processor, triggerer, API server + UI) with the four
# DAGs on the embedded defaults, as a demo that does not hurt: its state under
# ./airflow-home (Airflow's own, and FHIRFLOW_HOME=./airflow-home/fhirflow, never ./data),
# one patient of 3 years every 30 s, landed files removed 6 minutes after upload, and the
# Asset-driven transform (a new patient reaches the marts in about a minute). Cosmos's cache
# (dbt's partial-parse file per task group) lives in AIRFLOW_HOME too, not in /tmp/cosmos,
# which every Airflow of this machine would share: a file written against another
# deployment's warehouse makes dbt parse the project from scratch. Cosmos's watcher producer
# keeps its XCom backup (what a retry restores) in memory and writes it to an Airflow
# Variable when it fails, instead of rewriting the whole backup after every XCom it pushes
# (Cosmos's default, several times per dbt node: the DAG run took 84.3 s with it, 57.5 s
# without, in benchmarks/bench_airflow_cost.py); a producer killed outright then leaves no
# backup, and its model tasks' retries build their models one by one. Every
# FHIRFLOW_* below can be overridden from the environment. Local only: it binds 127.0.0.1
# and every local user is an admin (no login). DAGs start unpaused. The components are
# started one by one rather than with `airflow standalone`, which also starts the
# scheduler's and triggerer's log servers on every network interface (their host is
# hard-coded); on one machine the API server reads task logs from the local files.
AIRFLOW_PORT ?= 8080
AIRFLOW_HOME ?= $(CURDIR)/airflow-home
AIRFLOW_ENV := PATH="$(CURDIR)/$(BIN):$$PATH" \
	AIRFLOW_HOME="$(AIRFLOW_HOME)" \
	AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/dags" \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
	AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
	AIRFLOW__COSMOS__CACHE_DIR="$(AIRFLOW_HOME)/cosmos" \
	AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY=False \
	DO_NOT_TRACK=1 \
	AIRFLOW__CORE__EXECUTOR=LocalExecutor \
	AIRFLOW__CORE__PARALLELISM=8 \
	AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=120 \
	AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True \
	AIRFLOW__API__HOST=127.0.0.1 \
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__API__BASE_URL=http://127.0.0.1:$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_PORT)/execution/ \
	FHIRFLOW_HOME="$${FHIRFLOW_HOME:-$(AIRFLOW_HOME)/fhirflow}" \
	FHIRFLOW_GENERATION_SCHEDULE="$${FHIRFLOW_GENERATION_SCHEDULE:-30s}" \
	FHIRFLOW_GENERATION_PATIENTS="$${FHIRFLOW_GENERATION_PATIENTS:-1}" \
	FHIRFLOW_GENERATION_YEARS="$${FHIRFLOW_GENERATION_YEARS:-3}" \
	FHIRFLOW_LANDING_TTL_HOURS="$${FHIRFLOW_LANDING_TTL_HOURS:-0.1}" \
	FHIRFLOW_UPLOAD_SCHEDULE="$${FHIRFLOW_UPLOAD_SCHEDULE:-10s}" \
	FHIRFLOW_LOAD_SCHEDULE="$${FHIRFLOW_LOAD_SCHEDULE:-15s}" \
	FHIRFLOW_TRANSFORM_TRIGGER="$${FHIRFLOW_TRANSFORM_TRIGGER:-asset}" \
	FHIRFLOW_SENSOR_POKE_SECONDS="$${FHIRFLOW_SENSOR_POKE_SECONDS:-2}" \
	FHIRFLOW_RETRY_DELAY_SECONDS="$${FHIRFLOW_RETRY_DELAY_SECONDS:-5}"

airflow: $(VENV)/.airflow-installed
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate
	$(AIRFLOW_ENV) $(BIN)/airflow pools set fhirflow_warehouse 1 "fhirflow: one warehouse writer (DuckDB)"
	@# The transform DAG renders its per-model tasks from dbt's manifest: parse it once now,
	@# not inside the DAG processor's import timeout on a busy machine.
	$(AIRFLOW_ENV) $(BIN)/python -c "from fhirflow.config import load_settings; \
		from fhirflow.transform.manifest import ensure_manifest; print(ensure_manifest(load_settings()))"
	@echo "Airflow UI on http://127.0.0.1:$(AIRFLOW_PORT); state in $(AIRFLOW_HOME); Ctrl-C stops every component."
	$(AIRFLOW_ENV) bash -c 'trap "trap - TERM; kill 0" INT TERM EXIT; \
		airflow scheduler --skip-serve-logs & \
		airflow dag-processor & \
		airflow triggerer --skip-serve-logs & \
		airflow api-server --host 127.0.0.1 --port $(AIRFLOW_PORT) & \
		wait'

clean-data:
	rm -rf data

lock:
	rm -rf /tmp/fhirflow-lock-venv && $(PYTHON) -m venv /tmp/fhirflow-lock-venv
	/tmp/fhirflow-lock-venv/bin/pip install --quiet -e '.[snowflake,airflow,dev]'
	( echo "# Pinned versions for every install of fhirflow (make run, make test, Docker image)."; \
	  echo "# Regenerate: make lock (installs all extras in a scratch venv and freezes it)."; \
	  /tmp/fhirflow-lock-venv/bin/pip freeze --exclude-editable | grep -v '^fhirflow' ) > constraints.txt
