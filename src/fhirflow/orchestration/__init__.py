"""What the Airflow DAGs need beyond the stages. The DAG files in `dags/` only schedule and
wire tasks; every task body is a few lines over `fhirflow.pipeline`, the module the CLI
calls too. Nothing here imports Airflow at module level, so the CLI and the tests use it
without Airflow installed.

- `schedules`: schedule strings, which load run the transform waits for, seeds per run.
- `connections`: Settings from the Airflow connections `aws_default` / `snowflake_default`,
  mapped declaratively (a field map and the secret fields).
- `tasks`: one function per task: generate, upload, clean, the seed's five load steps, dbt.
- `alerts`: the failure callback (a log line; e-mail when configured).

This module: the DAG and connection ids, and what every DAG shares (settings, task defaults).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhirflow.config import DagSettings, load_dag_settings
from fhirflow.orchestration.alerts import on_task_failure

# DAG ids as the seed's deployment steps name them.
GENERATION_DAG_ID = "synthea_generation"
UPLOAD_DAG_ID = "s3_upload"
LOAD_DAG_ID = "s3_to_snowflake_load"
TRANSFORM_DAG_ID = "dbt_transform_fhir"

AWS_CONN_ID = "aws_default"
# dbt's DuckDB profile (Cosmos's DuckDB mapping: the connection's host is the database file);
# without it, $FHIRFLOW_HOME/warehouse.duckdb.
DUCKDB_CONN_ID = "fhirflow_duckdb"
SNOWFLAKE_CONN_ID = "snowflake_default"

# The Asset the load DAG updates when it loaded new files; the transform DAG can run on it.
RAW_BUNDLES_ASSET_NAME = "fhirflow_raw_fhir_bundles"
RAW_BUNDLES_ASSET_URI = "fhirflow://warehouse/raw/fhir_bundles"


def dag_settings() -> DagSettings:
    return load_dag_settings()


def default_args(ds: DagSettings) -> dict[str, Any]:
    """Task defaults every DAG shares: retries with exponential backoff, failure callback."""
    return {
        "owner": "fhirflow",
        "retries": ds.retries,
        "retry_delay": timedelta(seconds=ds.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=ds.max_retry_delay_minutes),
        "on_failure_callback": on_task_failure,
    }
