"""S3 upload: landing folder -> object store, every 30 seconds.

`upload_to_s3` uploads every landed file whose content the store does not hold yet (the
upload ledger makes it idempotent: a retried or overlapping run uploads nothing twice).
`clean_landing` then removes landed files older than `FHIRFLOW_LANDING_TTL_HOURS` (24 h),
but only those the store holds: a file never uploaded is kept however old it is.

The store is S3 (`FHIRFLOW_STORE=s3`, bucket `AWS_S3_BUCKET`, prefix `AWS_S3_PREFIX`,
credentials from the Airflow connection `aws_default` when it exists) or, by default, the
local folder `$FHIRFLOW_HOME/lake/`. Schedule: `FHIRFLOW_UPLOAD_SCHEDULE` (default `30s`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag, task

from fhirflow import orchestration as orch
from fhirflow.orchestration import schedules, tasks
from fhirflow.orchestration.connections import task_settings

ds = orch.dag_settings()


@dag(
    dag_id=orch.UPLOAD_DAG_ID,
    schedule=schedules.parse_schedule(ds.upload_schedule),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=orch.default_args(ds),
    tags=["fhirflow", "upload"],
    doc_md=__doc__,
)
def s3_upload() -> None:
    @task
    def upload_to_s3() -> dict:
        with task_settings() as settings:
            return tasks.upload_new_files(settings)

    @task
    def clean_landing() -> dict:
        with task_settings() as settings:
            return tasks.clean_landing_folder(settings)

    upload_to_s3() >> clean_landing()


s3_upload()
