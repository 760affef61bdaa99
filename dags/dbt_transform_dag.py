"""dbt transform: RAW -> staging (18) -> intermediate (4) -> marts (5), every 10 minutes.

`wait_for_s3_load` waits for the `update_watermark` task of the newest `s3_to_snowflake_load`
run at or before this run's logical date (the load runs every 5 minutes, this DAG every 10,
so their logical dates are matched through the load DAG's cron schedule), in reschedule
mode (or deferred, `FHIRFLOW_SENSOR_DEFERRABLE=true`) so it never holds a worker slot, and
fails after `FHIRFLOW_SENSOR_TIMEOUT_MINUTES` (15).

Two ways to trigger it (`FHIRFLOW_TRANSFORM_TRIGGER`):

- `time` (default, the seed's): on `FHIRFLOW_TRANSFORM_SCHEDULE` (`*/10 * * * *`).
- `asset`: whenever the load DAG loaded new files (Asset `fhirflow_raw_fhir_bundles`);
  new data reaches the marts within a minute and no run starts when nothing was loaded.
  The sensor then waits for the load run that emitted the event.

**One task per dbt model** (`FHIRFLOW_DBT_TASKS=model`, the default): `dbt_run_staging`,
`dbt_run_intermediate` and `dbt_run_marts` are astronomer-cosmos task groups holding one
task per model (`<model>.run`) and one for its tests (`<model>.test`), wired by dbt's own
dependencies. dbt runs once per layer (the group's `dbt_producer_watcher` task, `dbt build`
in this process with dbt's threads, pushing only the XComs the model tasks read) and each
model task turns green or red as dbt finishes that model, with its log; retrying or
clearing a model task runs that model alone. The
profile comes from the Airflow connections through Cosmos's profile mappings
(`fhirflow_duckdb`, `snowflake_default`; without them, `FHIRFLOW_HOME`'s warehouse file or
`SNOWFLAKE_*`). `FHIRFLOW_DBT_TASKS=layer` runs each layer as one task instead.

Either way a layer refuses, before dbt starts, to build over an upstream layer that is
behind (built from an older load, or failed), so marts never mix loads, and records what
each model now reflects (what `fhirflow status` reports as the marts' freshness). With
per-model tasks, intermediate and marts are checked against the RAW load this run's staging
was built from, so a load that lands while the run is under way (the load DAG keeps
running) does not refuse the rest of the run; the next run picks it up. Each
`parse_*_results` logs per layer the models that succeeded, failed and were skipped and the
seconds per model from `run_results.json` (in `$FHIRFLOW_HOME/state/dbt/target/`), and fails
the run when one failed. `dbt_test` runs the tests no layer ran (with per-model tasks: RAW's
source tests; with layer tasks: every test). `dbt_deps` and `dbt_debug` do nothing when the
project and profile are unchanged since they last succeeded. `dbt_source_freshness` fails
the run when RAW's newest load is older than `FHIRFLOW_RAW_FRESHNESS_MINUTES` (60): the
marts cannot be fresher than RAW. `dbt_docs_generate` writes the docs site to
`dbt/target/index.html` (`FHIRFLOW_DBT_DOCS_DIR` overrides) with the SQL the run's builds
compiled (`dbt docs generate --no-compile`; dbt compiles the project itself only when a
build did not compile a node). Tasks that open the warehouse take the `fhirflow_warehouse`
pool.

On the embedded defaults (`FHIRFLOW_WAREHOUSE=duckdb`) the "S3" and "Snowflake" of the
seed's task names are the local lake folder and the DuckDB file
`$FHIRFLOW_HOME/warehouse.duckdb`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import Asset, chain, dag, task

from fhirflow import orchestration as orch
from fhirflow.config import load_settings
from fhirflow.orchestration import schedules, tasks
from fhirflow.orchestration.connections import task_settings

ds = orch.dag_settings()
raw_bundles = Asset(name=orch.RAW_BUNDLES_ASSET_NAME, uri=orch.RAW_BUNDLES_ASSET_URI)
pool = ds.warehouse_pool
per_model = ds.dbt_tasks == "model"


@dag(
    dag_id=orch.TRANSFORM_DAG_ID,
    schedule=(
        [raw_bundles]
        if ds.transform_trigger == "asset"
        else schedules.parse_schedule(ds.transform_schedule)
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=orch.default_args(ds),
    tags=["fhirflow", "dbt"],
    doc_md=__doc__,
)
def dbt_transform_fhir() -> None:
    wait_for_s3_load = ExternalTaskSensor(
        task_id="wait_for_s3_load",
        external_dag_id=orch.LOAD_DAG_ID,
        external_task_id="update_watermark",
        execution_date_fn=schedules.latest_load_logical_date,
        allowed_states=["success"],
        failed_states=["failed", "upstream_failed"],
        mode="reschedule",
        deferrable=ds.sensor_deferrable,
        poke_interval=ds.sensor_poke_seconds,
        timeout=timedelta(minutes=ds.sensor_timeout_minutes).total_seconds(),
    )

    @task
    def check_dbt_installation() -> dict:
        with task_settings() as settings:
            return tasks.check_dbt(settings)

    @task
    def dbt_deps() -> dict:
        with task_settings() as settings:
            return tasks.invoke_dbt_when_changed(settings, "deps")

    @task(pool=pool)
    def dbt_debug() -> dict:
        with task_settings() as settings:
            return tasks.invoke_dbt_when_changed(settings, "debug")

    @task(pool=pool)
    def dbt_source_freshness() -> dict:
        with task_settings() as settings:
            return tasks.check_raw_freshness(settings, orch.dag_settings())

    def dbt_layer(layer: str) -> Any:
        if per_model:
            from fhirflow.orchestration.dbt_groups import layer_group

            # Rendered from the shared manifest; paths only, no connection, at parse time.
            return layer_group(layer, load_settings(), ds)

        @task(task_id=f"dbt_run_{layer}", pool=pool)
        def run() -> dict:
            with task_settings() as settings:
                return tasks.run_dbt_layer(settings, layer)

        return run()

    def parse(layer: str, tests: bool = False) -> Any:
        # After a group whose dbt build failed too, to log which models failed and why;
        # not after a refused one (nothing ran).
        @task(task_id=f"parse_{layer}_results",
              trigger_rule="all_done_min_one_success" if per_model and not tests
              else "all_success")
        def parse_results() -> dict:
            from fhirflow.transform import dbt_target_path

            with task_settings() as settings:
                return tasks.parse_dbt_results(dbt_target_path(settings), layer, tests=tests)

        return parse_results()

    @task(pool=pool)
    def dbt_test() -> dict:
        with task_settings() as settings:
            return tasks.run_dbt_layer(settings, "test-remaining" if per_model else "test")

    @task(pool=pool)
    def dbt_docs_generate() -> str:
        with task_settings() as settings:
            return tasks.generate_docs(settings, orch.dag_settings())

    @task(pool=pool)
    def write_report() -> str:
        with task_settings() as settings:
            return tasks.write_report(settings)

    debug = dbt_debug()
    chain(
        wait_for_s3_load,
        check_dbt_installation(),
        dbt_deps(),
        debug,
        dbt_layer("staging"),
        parse("staging"),
        dbt_layer("intermediate"),
        parse("intermediate"),
        dbt_layer("marts"),
        parse("marts"),
        dbt_test(),
        parse("test", tests=True),
        dbt_docs_generate(),
        write_report(),
    )
    # Beside the build, not before it: stale RAW fails the run, the marts are built anyway.
    debug >> dbt_source_freshness()


dbt_transform_fhir()
