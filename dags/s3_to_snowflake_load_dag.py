"""S3 -> Snowflake load: new bundle files into RAW.FHIR_BUNDLES, every 5 minutes.

The seed's five steps, one task each:

1. `create_snowflake_tables`: RAW.FHIR_BUNDLES, RAW.LOAD_WATERMARK, RAW.LOAD_ERRORS if missing.
2. `get_last_watermark`: the highest object key a completed load covered.
3. `list_new_s3_files`: keys after the watermark that RAW holds neither as a bundle nor as
   an error (at most `FHIRFLOW_LOAD_MAX_FILES_PER_RUN`; the next run takes the rest).
4. `load_files_to_snowflake`: batches of `FHIRFLOW_LOAD_BATCH_SIZE` (100) files. Each batch
   inserts its rows, quarantines its bad files in RAW.LOAD_ERRORS and writes its watermark
   row **in one transaction**. Skipped when there is nothing new.
5. `update_watermark`: because the watermark is committed together with the rows it covers
   (writing it in a separate step would leave a window where rows are committed but the
   watermark is not, and a crash there would load them again), this task writes nothing:
   it reads the committed watermark back, fails if it is behind the last key step 4 loaded,
   and reports the recent loads.

When step 4 loaded new files it updates the Asset `fhirflow_raw_fhir_bundles`; the dbt
transform DAG can be scheduled on it (`FHIRFLOW_TRANSFORM_TRIGGER=asset`).

Store and warehouse: S3 + Snowflake with `FHIRFLOW_STORE=s3` and `FHIRFLOW_WAREHOUSE=snowflake`
(parameters from the connections `aws_default` / `snowflake_default` when they exist, else
from `AWS_*` / `SNOWFLAKE_*`); by default the local lake folder and DuckDB, under the same
task names. Every task that opens the warehouse takes the `fhirflow_warehouse` pool (one
slot: DuckDB allows one writer). Schedule: `FHIRFLOW_LOAD_SCHEDULE` (default `*/5 * * * *`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Asset, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from fhirflow import orchestration as orch
from fhirflow.orchestration import schedules, tasks
from fhirflow.orchestration.connections import task_settings

ds = orch.dag_settings()
raw_bundles = Asset(name=orch.RAW_BUNDLES_ASSET_NAME, uri=orch.RAW_BUNDLES_ASSET_URI)


@dag(
    dag_id=orch.LOAD_DAG_ID,
    schedule=schedules.parse_schedule(ds.load_schedule),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=orch.default_args(ds),
    tags=["fhirflow", "load"],
    doc_md=__doc__,
)
def s3_to_snowflake_load() -> None:
    @task(pool=ds.warehouse_pool)
    def create_snowflake_tables() -> str:
        with task_settings() as settings:
            return tasks.create_tables(settings)

    @task(pool=ds.warehouse_pool)
    def get_last_watermark() -> dict:
        with task_settings() as settings:
            return tasks.last_watermark(settings)

    @task(pool=ds.warehouse_pool)
    def list_new_s3_files(last: dict) -> dict:
        with task_settings() as settings:
            return tasks.list_new_files(settings, last["watermark"],
                                        limit=orch.dag_settings().load_max_files_per_run)

    @task(pool=ds.warehouse_pool, outlets=[raw_bundles])
    def load_files_to_snowflake(listing: dict) -> dict:
        if not listing["files"]:
            # Skipped, not succeeded: no Asset event, so an Asset-scheduled transform
            # does not run for nothing.
            raise AirflowSkipException("no new files to load")
        with task_settings() as settings:
            summary = tasks.load_listed_files(settings, listing["files"])
        ctx = get_current_context()
        logical = ctx.get("logical_date") or ctx["dag_run"].run_after
        ctx["outlet_events"][raw_bundles].extra = {
            "load_logical_date": logical.isoformat(),
            "files_loaded": summary["files_loaded"],
            "watermark": summary["watermark"],
        }
        return summary

    @task(pool=ds.warehouse_pool, trigger_rule="none_failed")
    def update_watermark() -> dict:
        loaded = get_current_context()["ti"].xcom_pull(task_ids="load_files_to_snowflake")
        expected = loaded["watermark"] if loaded else None
        with task_settings() as settings:
            return tasks.verify_watermark(settings, expected)

    tables = create_snowflake_tables()
    watermark = get_last_watermark()
    tables >> watermark
    loaded = load_files_to_snowflake(list_new_s3_files(watermark))
    loaded >> update_watermark()


s3_to_snowflake_load()
