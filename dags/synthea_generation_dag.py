"""Synthea generation: new synthetic patients into the landing folder, every 10 seconds.

Each run generates `FHIRFLOW_GENERATION_PATIENTS` patients with the built-in simulator, or
with the real Synthea when `SYNTHEA_JAR` is set, into
`$FHIRFLOW_HOME/output/bundles/<patient_id>/`. The generator is deterministic per seed, so
the seed is derived from the run's logical date: every run makes new patients, and a retry of a run
makes the same ones again (it overwrites its own files instead of adding patients).

Schedule: `FHIRFLOW_GENERATION_SCHEDULE` (default `10s`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag, get_current_context, task

from fhirflow import orchestration as orch
from fhirflow.orchestration import schedules, tasks
from fhirflow.orchestration.connections import task_settings

ds = orch.dag_settings()


@dag(
    dag_id=orch.GENERATION_DAG_ID,
    schedule=schedules.parse_schedule(ds.generation_schedule),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=orch.default_args(ds),
    tags=["fhirflow", "generate"],
    doc_md=__doc__,
)
def synthea_generation() -> None:
    @task
    def generate_synthea_data() -> dict:
        ctx = get_current_context()
        with task_settings() as settings:
            return tasks.generate_for_run(settings, orch.dag_settings(),
                                          dag_id=ctx["dag"].dag_id, run_id=ctx["run_id"],
                                          logical_date=ctx.get("logical_date"))

    generate_synthea_data()


synthea_generation()
