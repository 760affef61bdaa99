"""The four Airflow DAGs: they import, match the seed, and run the pipeline end to end.

Airflow reads its configuration (AIRFLOW_HOME, the metadata DB) when it is first imported,
so everything that imports Airflow runs in a subprocess with its own environment: this
file run as a script (`python tests/test_dags.py structure|e2e OUT_JSON`). The pytest
process only starts those subprocesses and checks what they report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"

DAG_IDS = {"synthea_generation", "s3_upload", "s3_to_snowflake_load", "dbt_transform_fhir"}
LOAD_TASKS = [
    "create_snowflake_tables",
    "get_last_watermark",
    "list_new_s3_files",
    "load_files_to_snowflake",
    "update_watermark",
]
TRANSFORM_TASKS = [
    "wait_for_s3_load",
    "check_dbt_installation",
    "dbt_deps",
    "dbt_debug",
    "dbt_run_staging",
    "parse_staging_results",
    "dbt_run_intermediate",
    "parse_intermediate_results",
    "dbt_run_marts",
    "parse_marts_results",
    "dbt_test",
    "parse_test_results",
    "dbt_docs_generate",
    "write_report",
]
LAYERS = ("staging", "intermediate", "marts")
# dbt's models per layer (base_fhir_entries and the two seeds build with staging)
LAYER_MODELS = {
    "staging": {"base_fhir_entries", "stg_allergies", "stg_careplans", "stg_claims",
                "stg_claims_transactions", "stg_conditions", "stg_devices", "stg_encounters",
                "stg_imaging_studies", "stg_immunizations", "stg_medications",
                "stg_observations", "stg_organizations", "stg_patients",
                "stg_payer_transitions", "stg_payers", "stg_procedures", "stg_providers",
                "stg_supplies"},
    "intermediate": {"int_claims_enriched", "int_encounter_item_costs", "int_medication_reasons",
                     "int_procedure_reasons", "int_reference_map", "int_resource_references"},
}
# Logical date of the end-to-end runs: on the grid of both the load (5 min) and the
# transform (10 min) schedules, as the scheduler would create them.
E2E_LOGICAL_DATE = "2026-11-25T12:00:00+00:00"


def airflow_env(root: Path, **extra: str) -> dict[str, str]:
    """A clean environment: private AIRFLOW_HOME and FHIRFLOW_HOME, no developer settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_", "AIRFLOW", "SYNTHEA_"))
    }
    env.update(
        AIRFLOW_HOME=str(root / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # Airflow, Cosmos and dbt send usage statistics unless told not to
        AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
        # this test's own Cosmos cache: /tmp/cosmos is shared by every Airflow on the machine
        AIRFLOW__COSMOS__CACHE_DIR=str(root / "airflow" / "cosmos"),
        DO_NOT_TRACK="1",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        FHIRFLOW_HOME=str(root / "home"),
        FHIRFLOW_DBT_DOCS_DIR=str(root / "docs"),
        FHIRFLOW_TASK_RETRIES="0",
        FHIRFLOW_DBT_THREADS="2",
        PYTHONPATH=str(REPO / "src"),
    )
    env.update(extra)
    return env


def run_script(mode: str, root: Path, timeout: int, **extra: str) -> dict:
    out = root / f"{mode}.json"
    proc = subprocess.run(
        [sys.executable, __file__, mode, str(out)],
        env=airflow_env(root, **extra),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stdout + proc.stderr)[-8000:]
        pytest.fail(f"`{mode}` subprocess exited with {proc.returncode}:\n{tail}")
    found = json.loads(out.read_text())
    failed = [label for label, run in found.get("runs", {}).items() if run["state"] != "success"]
    if failed:  # show what the failed runs logged: dag.test() logs to the subprocess output
        found["log_tail"] = _error_lines(proc.stdout + proc.stderr)
    return found


def _error_lines(log: str, limit: int = 60) -> str:
    lines = log.splitlines()
    hits = [i for i, line in enumerate(lines)
            if "ERROR" in line or "Traceback" in line or "FhirflowError" in line]
    keep = sorted({j for i in hits for j in range(max(0, i - 2), min(len(lines), i + 8))})
    return "\n".join(lines[j] for j in keep[-limit:]) or log[-6000:]


@pytest.fixture(scope="module")
def structure(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_script("structure", tmp_path_factory.mktemp("dags"), timeout=300)


def test_all_dags_import_without_errors(structure: dict) -> None:
    assert structure["import_errors"] == {}
    assert set(structure["dags"]) == DAG_IDS


def test_schedules_and_concurrency_match_the_seed(structure: dict) -> None:
    dags = structure["dags"]
    assert dags["synthea_generation"]["schedule"] == "timedelta:10.0"
    assert dags["s3_upload"]["schedule"] == "timedelta:30.0"
    assert dags["s3_to_snowflake_load"]["schedule"] == "cron:*/5 * * * *"
    assert dags["dbt_transform_fhir"]["schedule"] == "cron:*/10 * * * *"
    for dag in dags.values():
        assert dag["max_active_runs"] == 1
        assert dag["catchup"] is False


def test_load_dag_tasks_and_order(structure: dict) -> None:
    dag = structure["dags"]["s3_to_snowflake_load"]
    assert dag["order"] == LOAD_TASKS
    tasks = dag["tasks"]
    for before, after in pairwise(LOAD_TASKS):
        assert tasks[before]["downstream"] == [after], before
    # every task that opens the warehouse takes the one-slot pool
    assert {tasks[t]["pool"] for t in LOAD_TASKS} == {"fhirflow_warehouse"}
    assert tasks["load_files_to_snowflake"]["outlets"] == ["fhirflow_raw_fhir_bundles"]
    assert tasks["update_watermark"]["trigger_rule"] == "none_failed"


def _top_level(tasks: dict, name: str) -> str:
    """A task's own id, or its dbt_run_<layer> group's."""
    group = tasks[name]["group"]
    return group.split(".")[0] if group else name


def test_transform_dag_tasks_and_order(structure: dict) -> None:
    """The seed's tasks in the seed's order; each dbt_run_<layer> a Cosmos task group."""
    dag = structure["dags"]["dbt_transform_fhir"]
    tasks = dag["tasks"]
    order = list(dict.fromkeys(_top_level(tasks, t) for t in dag["order"]
                               if t != "dbt_source_freshness"))
    assert order == TRANSFORM_TASKS
    for before, after in pairwise(TRANSFORM_TASKS):
        entries = [t for t in tasks if _top_level(tasks, t) == after
                   and not any(_top_level(tasks, u) == after for u in tasks[t]["upstream"])]
        assert entries, after
        for entry in entries:  # everything a step starts with waits for the step before
            assert {_top_level(tasks, u) for u in tasks[entry]["upstream"]} == {before}, entry
    assert tasks["dbt_source_freshness"]["upstream"] == ["dbt_debug"]
    assert tasks["dbt_source_freshness"]["downstream"] == []
    sensor = tasks["wait_for_s3_load"]
    assert sensor["type"] == "ExternalTaskSensor"
    assert sensor["external_dag_id"] == "s3_to_snowflake_load"
    assert sensor["external_task_ids"] == ["update_watermark"]
    assert sensor["mode"] == "reschedule"
    assert 0 < sensor["timeout"] <= 3600
    assert sensor["has_execution_date_fn"]
    for name in ("dbt_debug", "dbt_source_freshness", "dbt_test", "dbt_docs_generate",
                 "write_report"):
        assert tasks[name]["pool"] == "fhirflow_warehouse", name


def test_transform_dag_has_one_task_per_model(structure: dict) -> None:
    tasks = structure["dags"]["dbt_transform_fhir"]["tasks"]
    for layer in LAYERS:
        group = f"dbt_run_{layer}"
        mine = {t: info for t, info in tasks.items() if t.startswith(group + ".")}
        runs = {t.split(".")[1] for t in mine if t.endswith(".run")}
        if layer in LAYER_MODELS:
            assert runs == LAYER_MODELS[layer]
        else:
            assert {"dim_patients", "fct_encounters"} <= runs
        # every model with tests has its test task right after it
        for model in runs:
            test = f"{group}.{model}.test"
            if test in mine:
                assert mine[test]["upstream"] == [f"{group}.{model}.run"]
        # only dbt itself (the producer) and the consistency check open the warehouse
        pooled = {t for t, info in mine.items() if info["pool"] == "fhirflow_warehouse"}
        assert pooled == {f"{group}.dbt_producer_watcher", f"{group}.check_consistency"}
        # Cosmos's producer, pushing only the XComs the model tasks read (orchestration.watcher)
        assert mine[f"{group}.dbt_producer_watcher"]["type"] == "FewerXComsProducerOperator"
        assert mine[f"{group}.dbt_producer_watcher"]["upstream"] == [f"{group}.check_consistency"]
    # wired by dbt's dependencies: a staging model after base_fhir_entries' tests, an
    # intermediate model after the one it selects from
    assert "dbt_run_staging.base_fhir_entries.test" in tasks[
        "dbt_run_staging.stg_patients.run"]["upstream"]
    assert "dbt_run_intermediate.int_reference_map.test" in tasks[
        "dbt_run_intermediate.int_claims_enriched.run"]["upstream"]
    # a test that reads two layers runs with the later one, after both models are built
    cross = "relationships_int_claims_enriched_claim_id__claim_id__ref_stg_claims_"
    staging = tasks["dbt_run_staging.dbt_producer_watcher"]
    intermediate = tasks["dbt_run_intermediate.dbt_producer_watcher"]
    assert cross in staging["exclude"].split()
    staged_tests = [t for tests in staging["tests_per_model"].values() for t in tests]
    assert not any(f".{cross}." in t for t in staged_tests)
    assert any(f".{cross}." in t for t in
               intermediate["tests_per_model"]["model.fhirflow.int_claims_enriched"])


def test_transform_dag_with_one_task_per_layer(tmp_path: Path) -> None:
    found = run_script("structure", tmp_path, timeout=300, FHIRFLOW_DBT_TASKS="layer")
    assert found["import_errors"] == {}
    dag = found["dags"]["dbt_transform_fhir"]
    assert [t for t in dag["order"] if t != "dbt_source_freshness"] == TRANSFORM_TASKS
    tasks = dag["tasks"]
    for before, after in pairwise(TRANSFORM_TASKS):
        assert tasks[after]["upstream"] == [before], after
    for layer in LAYERS:
        assert tasks[f"dbt_run_{layer}"]["pool"] == "fhirflow_warehouse"


def test_generation_and_upload_dags(structure: dict) -> None:
    dags = structure["dags"]
    assert dags["synthea_generation"]["order"] == ["generate_synthea_data"]
    assert dags["s3_upload"]["order"] == ["upload_to_s3", "clean_landing"]


def test_retries_back_off_and_failure_callback(structure: dict) -> None:
    for dag in structure["dags"].values():
        for name, task in dag["tasks"].items():
            assert task["retry_exponential_backoff"], name
            assert task["has_failure_callback"], name
            # under this test's FHIRFLOW_TASK_RETRIES=0; the default is 2
            assert task["retries"] == 0, name


def test_transform_on_asset_schedule(tmp_path: Path) -> None:
    found = run_script("structure", tmp_path, timeout=300, FHIRFLOW_TRANSFORM_TRIGGER="asset",
                       FHIRFLOW_LOAD_SCHEDULE="*/15 * * * *")
    assert found["import_errors"] == {}
    assert found["dags"]["dbt_transform_fhir"]["schedule"] == "assets:fhirflow_raw_fhir_bundles"
    assert found["dags"]["s3_to_snowflake_load"]["schedule"] == "cron:*/15 * * * *"


@pytest.mark.slow
def test_dags_run_the_pipeline_end_to_end(tmp_path: Path) -> None:
    """generation -> upload -> load -> transform with dag.test(), on the embedded defaults."""
    import duckdb

    found = run_script("e2e", tmp_path, timeout=900, FHIRFLOW_GENERATION_PATIENTS="3",
                       FHIRFLOW_GENERATION_YEARS="3")
    runs = found["runs"]
    for label, run in runs.items():
        assert run["state"] == "success", f"{label}: {run}\n{found.get('log_tail', '')}"
    assert runs["load"]["tasks"]["load_files_to_snowflake"] == "success"
    transform = runs["transform"]["tasks"]
    assert {t: s for t, s in transform.items() if s != "success"} == {}
    for layer, models in LAYER_MODELS.items():
        assert {f"dbt_run_{layer}.{m}.run" for m in models} <= set(transform)
    assert set(TRANSFORM_TASKS) - {f"dbt_run_{layer}" for layer in LAYERS} <= set(transform)
    assert "dbt_source_freshness" in transform
    # nothing new on the second load: the load task skips and no Asset event is emitted
    assert runs["load_again"]["tasks"]["load_files_to_snowflake"] == "skipped"
    assert runs["load_again"]["tasks"]["update_watermark"] == "success"
    assert found["asset_events"] == 1

    home = tmp_path / "home"
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        raw = con.execute("select count(*) from raw.fhir_bundles").fetchone()[0]
        patients = con.execute(
            "select count(distinct patient_id) from marts.dim_patients"
        ).fetchone()[0]
        watermark = con.execute(
            "select max(watermark) from raw.load_watermark where status = 'complete'"
        ).fetchone()[0]
    finally:
        con.close()
    assert raw == found["landed_files"]
    assert watermark == found["watermark"]
    # two generation runs, three patients each, different seeds: six patients
    assert found["landed_patients"] == 6
    assert patients == found["landed_patients"] > 0
    assert (tmp_path / "docs" / "index.html").is_file()
    # The docs show the SQL the run's builds compiled; dbt did not compile the project again
    # (a compiling `docs generate` leaves its compiled/ folder in the docs' target path).
    docs_nodes = json.loads((tmp_path / "docs" / "manifest.json").read_text())["nodes"]
    assert all(n.get("compiled_code") for n in docs_nodes.values()
               if n["resource_type"] in {"model", "test"})
    assert (tmp_path / "docs" / "catalog.json").is_file()
    assert not (tmp_path / "docs" / "compiled").exists()
    # The producers pushed what the model and test tasks read: a model's status, its last dbt
    # event and compiled SQL, its tests' aggregate; no per-test event (nothing reads one).
    keys = set(found["producer_keys"])
    for models in LAYER_MODELS.values():
        for model in models:
            uid = f"model__fhirflow__{model}"
            assert {f"{uid}_status", f"{uid}_dbt_event", f"{uid}_compiled_sql"} <= keys, model
    assert "model__fhirflow__stg_patients_tests_status" in keys
    assert not [k for k in keys if k.startswith("test__")]


@pytest.mark.slow
def test_marts_fill_after_a_first_transform_on_an_empty_warehouse(tmp_path: Path) -> None:
    import duckdb

    found = run_script("e2e", tmp_path, timeout=900, FHIRFLOW_GENERATION_PATIENTS="2",
                       FHIRFLOW_GENERATION_YEARS="2", E2E_TRANSFORM_FIRST="1")
    assert found["runs"]["transform_empty"]["state"] == "success", found.get("log_tail")
    assert found["runs"]["load_empty"]["tasks"]["load_files_to_snowflake"] == "skipped"
    assert found["runs"]["transform"]["state"] == "success"
    con = duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True)
    try:
        patients = con.execute("select count(*) from marts.dim_patients").fetchone()[0]
    finally:
        con.close()
    assert patients == found["landed_patients"] > 0


def test_a_group_starts_from_the_newest_partial_parse_of_the_dag(tmp_path: Path) -> None:
    """Cosmos caches dbt's partial_parse.msgpack per task group; the check before each
    producer hands its group the newest one of the DAG, so a first run parses the project
    once rather than once per layer, and never replaces a newer file of its own."""
    found = run_script("share", tmp_path, timeout=300)
    assert found["first"] is None  # nothing cached yet: dbt parses from scratch
    assert found["after_staging"] == "staging"  # intermediate starts from staging's parse
    assert found["copied"] == "staging-bytes"
    assert found["own_newer"] is None  # marts' own file is newer: kept
    assert found["kept"] == "marts-bytes"


def test_later_layers_build_from_the_load_their_run_started_with(tmp_path: Path) -> None:
    """A load that lands while a transform run is between staging and intermediate (the
    load DAG runs every 15 s under `make airflow`) must not refuse the run: intermediate is
    checked against the load this run's staging was built from. Without a run to pin it to,
    the check still refuses a staging layer behind RAW's newest load."""
    found = run_script("pin", tmp_path, timeout=900)
    assert found["loads"][0] != found["loads"][1]
    assert found["pinned"] == {"layer": "intermediate", "raw_load": found["loads"][0],
                               "models": found["pinned"]["models"]}
    assert found["pinned"]["models"] > 0
    assert found["unpinned"].startswith("InconsistentBuild: refusing to build: staging is behind")


# --- the subprocess side ---------------------------------------------------------------------


def _schedule_of(dag) -> str:  # noqa: ANN001 - Airflow types only exist in the subprocess
    from datetime import timedelta

    schedule = dag.schedule
    if isinstance(schedule, timedelta):
        return f"timedelta:{schedule.total_seconds()}"
    if isinstance(schedule, str):
        return f"cron:{schedule}"
    if isinstance(schedule, (list, tuple)):
        return "assets:" + ",".join(sorted(a.name for a in schedule))
    return repr(schedule)


def _describe(dag) -> dict:  # noqa: ANN001
    tasks = {}
    for t in dag.tasks:
        info = {
            "type": type(t).__name__,
            "upstream": sorted(t.upstream_task_ids),
            "downstream": sorted(t.downstream_task_ids),
            "pool": t.pool,
            "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
            "retries": t.retries,
            "retry_exponential_backoff": bool(t.retry_exponential_backoff),
            "has_failure_callback": bool(t.on_failure_callback),
            "outlets": [getattr(o, "name", str(o)) for o in t.outlets],
            "group": t.task_group.group_id if t.task_group and t.task_group.group_id else None,
        }
        if info["type"] == "FewerXComsProducerOperator":
            info.update(exclude=t.exclude or "", tests_per_model=t.tests_per_model)
        if info["type"] == "ExternalTaskSensor":
            info.update(
                external_dag_id=t.external_dag_id,
                external_task_ids=list(t.external_task_ids or []),
                mode=t.mode,
                timeout=t.timeout,
                has_execution_date_fn=t.execution_date_fn is not None,
            )
        tasks[t.task_id] = info
    return {
        "schedule": _schedule_of(dag),
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "order": [t.task_id for t in dag.topological_sort()],
        "tasks": tasks,
    }


def _structure(out: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS))
    result = {
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": {dag_id: _describe(dag) for dag_id, dag in bag.dags.items()},
    }
    out.write_text(json.dumps(result, indent=1, default=str))


def _e2e(out: Path) -> None:
    from datetime import datetime, timedelta

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                   capture_output=True)

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    from fhirflow import orchestration as orch
    from fhirflow.config import load_settings
    from fhirflow.landing import list_landed

    Pool.create_or_update_pool(orch.dag_settings().warehouse_pool, slots=1,
                               description="fhirflow: one warehouse writer",
                               include_deferred=False)
    bag = DagBag(str(DAGS))
    assert not bag.import_errors, bag.import_errors
    t0 = datetime.fromisoformat(E2E_LOGICAL_DATE)
    runs: dict[str, dict] = {}

    def test(label: str, dag_id: str, when: datetime) -> None:
        dag_run = bag.dags[dag_id].test(logical_date=when)
        runs[label] = {
            "state": str(getattr(dag_run.state, "value", dag_run.state)),
            "tasks": {ti.task_id: str(getattr(ti.state, "value", ti.state))
                      for ti in dag_run.get_task_instances()},
        }

    settings = load_settings()
    if os.environ.get("E2E_TRANSFORM_FIRST") == "1":
        # The first scheduled runs of a fresh deployment: load and transform before any
        # patient exists, so dbt builds every model empty first.
        test("load_empty", orch.LOAD_DAG_ID, t0 - timedelta(minutes=10))
        test("transform_empty", orch.TRANSFORM_DAG_ID, t0 - timedelta(minutes=10))
    test("generate_1", orch.GENERATION_DAG_ID, t0 - timedelta(seconds=20))
    test("generate_2", orch.GENERATION_DAG_ID, t0 - timedelta(seconds=10))
    landed = list_landed(settings.landing_dir)
    test("upload", orch.UPLOAD_DAG_ID, t0 - timedelta(seconds=30))
    test("load", orch.LOAD_DAG_ID, t0)
    test("transform", orch.TRANSFORM_DAG_ID, t0)
    test("load_again", orch.LOAD_DAG_ID, t0 + timedelta(minutes=5))

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from sqlalchemy import func, select

    with create_session() as session:
        events = session.scalar(
            select(func.count()).select_from(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == orch.RAW_BUNDLES_ASSET_NAME)
        )
        # what the producers pushed for their model and test tasks
        producer_keys = sorted(session.scalars(
            select(XComModel.key).where(XComModel.dag_id == orch.TRANSFORM_DAG_ID,
                                        XComModel.task_id.like("%.dbt_producer_watcher"))))
    patients = {f.relpath.split("/")[0] for f in landed if not f.relpath.startswith("_run/")}
    from fhirflow.warehouse import open_warehouse

    warehouse = open_warehouse(settings)
    try:
        watermark = warehouse.last_watermark()
    finally:
        warehouse.close()
    out.write_text(json.dumps({
        "runs": runs,
        "landed_files": len(landed),
        "landed_patients": len(patients),
        "asset_events": events,
        "watermark": watermark,
        "producer_keys": producer_keys,
    }, indent=1, default=str))


def _share(out: Path) -> None:
    import time

    from cosmos import cache
    from cosmos.dbt.project import get_partial_parse_path

    from fhirflow.orchestration.dbt_groups import share_partial_parse

    def cached(layer: str) -> Path:
        return get_partial_parse_path(
            cache._obtain_cache_dir_path(f"dbt_transform_fhir__dbt_run_{layer}"))

    def which(copied: Path | None) -> str | None:
        return copied.parent.parent.name.rsplit("_", 1)[-1] if copied else None

    first = share_partial_parse("dbt_transform_fhir", "staging")
    cached("staging").write_text("staging-bytes")
    # Cosmos caches the manifest beside the partial parse, and copies both
    (cached("staging").parent / "manifest.json").write_text("{}")
    after = share_partial_parse("dbt_transform_fhir", "intermediate")
    time.sleep(0.05)
    cached("marts").write_text("marts-bytes")
    own_newer = share_partial_parse("dbt_transform_fhir", "marts")
    out.write_text(json.dumps({
        "first": which(first), "after_staging": which(after),
        "copied": cached("intermediate").read_text(), "own_newer": which(own_newer),
        "kept": cached("marts").read_text()}))


def _pin(out: Path) -> None:
    from fhirflow import pipeline
    from fhirflow.config import load_settings
    from fhirflow.orchestration.dbt_groups import check_layer

    settings = load_settings()
    loads = []
    for seed in (5, 6):
        pipeline.generate(settings, pipeline.GenerateOptions(2, seed, 2, workers=1))
        pipeline.upload(settings)
        pipeline.load(settings)
        loads.append(pipeline.raw_load(settings))
        if seed == 5:  # the run's staging build, before the second load lands
            assert pipeline.transform(settings, layer="staging").success
    pinned = check_layer("intermediate", run_load=loads[0])
    try:
        check_layer("intermediate")
        unpinned = "built"
    except Exception as exc:  # noqa: BLE001 - the refusal is what is reported
        unpinned = f"{type(exc).__name__}: {exc}"
    out.write_text(json.dumps({"loads": loads, "pinned": pinned, "unpinned": unpinned}))


if __name__ == "__main__":
    mode, target = sys.argv[1], Path(sys.argv[2])
    {"structure": _structure, "e2e": _e2e, "share": _share, "pin": _pin}[mode](target)
