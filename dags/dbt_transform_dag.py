"""dbt transform: RAW -> staging (18) -> intermediate (4) -> marts (5), every 10 minutes.

`wait_for_s3_load` waits for the `update_watermark` task of the newest `s3_to_snowflake_load`
run at or before this run's logical date (the load runs every 5 minutes, this DAG every 10,
so their logical dates are matched through the load DAG's cron schedule), in reschedule
mode (or deferred, `FHIRFLOW_SENSOR_DEFERRABLE=true`) so it never holds a worker slot, and
fails after `FHIRFLOW_SENSOR_TIMEOUT_MINUTES` (15).

Two ways to trigger it (`FHIRFLOW_TRANSFORM_TRIGGER`):

- `time` (default, the seed's): on `FHIRFLOW_TRANSFORM_SCHEDULE` (`*/10 * * * *`).
- `asset`: whenever the load DAG loaded new files (Asset `fhirflow_raw_fhir_bundles`);
  new data reaches the marts minutes sooner and no run starts when nothing was loaded.
  The sensor then waits for the load run that emitted the event.

dbt runs in the Airflow environment, in-process (dbt-duckdb or dbt-snowflake), layer by
layer with `--select tag:<layer>` and without tests (staging also loads the dbt seeds it
joins); tests run in `dbt_test`. These are the same checked builds as `fhirflow transform
--layer X`: a layer task refuses, before dbt starts, to build over an upstream layer that
is behind (built from an older load, or failed), so marts never mix loads. Each
`dbt_run_*` fails only then or when dbt cannot run; model failures are reported by the
following `parse_*_results`, which logs per layer the models that succeeded, failed and
were skipped and the seconds per model from `run_results.json` (in
`$FHIRFLOW_HOME/state/dbt/target/`, shared with `fhirflow transform`), and then fails the
run. `dbt_docs_generate` writes the docs site to the dbt project's `target/`
(`dbt/target/index.html`; `FHIRFLOW_DBT_DOCS_DIR` overrides). Tasks that open the
warehouse take the `fhirflow_warehouse` pool.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import Asset, chain, dag, task

from fhirflow import orchestration as orch
from fhirflow.orchestration import schedules, tasks
from fhirflow.orchestration.connections import task_settings

ds = orch.dag_settings()
raw_bundles = Asset(name=orch.RAW_BUNDLES_ASSET_NAME, uri=orch.RAW_BUNDLES_ASSET_URI)
pool = ds.warehouse_pool


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
    def dbt_deps() -> None:
        with task_settings() as settings:
            tasks.invoke_dbt(settings, "deps")

    @task(pool=pool)
    def dbt_debug() -> None:
        with task_settings() as settings:
            tasks.invoke_dbt(settings, "debug")

    def dbt_layer(layer: str) -> Any:
        @task(task_id=f"dbt_run_{layer}", pool=pool)
        def run() -> dict:
            with task_settings() as settings:
                return tasks.run_dbt_layer(settings, layer)

        return run()

    def parse(layer: str, tests: bool = False) -> Any:
        @task(task_id=f"parse_{layer}_results")
        def parse_results() -> dict:
            from fhirflow.transform import dbt_target_path

            with task_settings() as settings:
                return tasks.parse_dbt_results(dbt_target_path(settings), layer, tests=tests)

        return parse_results()

    @task(pool=pool)
    def dbt_test() -> dict:
        with task_settings() as settings:
            return tasks.run_dbt_layer(settings, "test")

    @task(pool=pool)
    def dbt_docs_generate() -> str:
        with task_settings() as settings:
            return tasks.generate_docs(settings, orch.dag_settings())

    chain(
        wait_for_s3_load,
        check_dbt_installation(),
        dbt_deps(),
        dbt_debug(),
        dbt_layer("staging"),
        parse("staging"),
        dbt_layer("intermediate"),
        parse("intermediate"),
        dbt_layer("marts"),
        parse("marts"),
        dbt_test(),
        parse("test", tests=True),
        dbt_docs_generate(),
    )


dbt_transform_fhir()
