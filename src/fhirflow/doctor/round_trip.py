"""The round trip of `fhirflow doctor`: two generated patients through upload, load and a dbt
build of a few models, on the deployment's own store and warehouse but nowhere a real run
looks, and cleaned up afterwards.

- Landing, upload ledger and dbt's target folder: a temporary FHIRFLOW_HOME, removed.
- Store: the configured one, under `<prefix>/_doctor/<run>/` (loads list `<prefix>/patients/`
  only). A local store lives in the temporary home; S3 objects stay (the store interface has
  no delete): a few KB per run, named in the result.
- Warehouse: DuckDB, a file in the temporary home. Snowflake, the schemas
  FHIRFLOW_DOCTOR_<run>_RAW (RAW tables and, in mode copy, the stage on the scratch prefix)
  and FHIRFLOW_DOCTOR_<run>_STAGING etc. (dbt, through FHIRFLOW_DBT_SCHEMA_PREFIX), dropped.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from fhirflow.doctor import CheckResult
from fhirflow.doctor.checks import DBT_SCHEMAS
from fhirflow.errors import FhirflowError, first_line

if TYPE_CHECKING:
    from fhirflow.config import Settings

# Enough of the project to prove a build: the seeds, base_fhir_entries and two staging
# models (with their own tests, not the relationships into models left out).
BUILD_SELECT = "+stg_patients +stg_encounters"
# cautious: only the tests whose every parent is built; unit tests are the project's own
# checks of its SQL, not of the deployment.
BUILD_EXTRA = ["--indirect-selection", "cautious", "--exclude", "test_type:unit"]
PATIENTS = 2


def scratch_settings(settings: Settings, home: Path, run: str) -> Settings:
    """The same deployment, pointed at the scratch home, prefix and schemas of `run`."""
    prefix = "/".join(p for p in (settings.aws_s3_prefix, "_doctor", run.lower()) if p)
    return settings.model_copy(update={
        "home": home,
        "aws_s3_prefix": prefix,
        "snowflake_schema": f"FHIRFLOW_DOCTOR_{run}_RAW",
        "dbt_schema_prefix": f"FHIRFLOW_DOCTOR_{run}_",
    })


def _scratch_schemas(scratch: Settings) -> list[str]:
    return [scratch.snowflake_schema, *(scratch.dbt_schema_prefix + s for s in DBT_SCHEMAS)]


def _drop_scratch_schemas(scratch: Settings) -> list[str]:
    """Drop the run's Snowflake schemas; the ones that could not be dropped."""
    from fhirflow.warehouse import open_warehouse

    left = _scratch_schemas(scratch)
    with contextlib.suppress(FhirflowError):
        warehouse = open_warehouse(scratch)
        try:
            cur = warehouse.cursor()
            for schema in list(left):
                with contextlib.suppress(Exception):
                    cur.execute(f"drop schema if exists {schema} cascade")
                    left.remove(schema)
        finally:
            warehouse.close()
    return left


def _trip(scratch: Settings) -> str:
    """Generate, upload, load, build and count; what was done, or FhirflowError naming the
    step that failed."""
    from fhirflow.generate import generate_patients
    from fhirflow.load import run_load
    from fhirflow.store import open_store
    from fhirflow.transform import run_dbt
    from fhirflow.upload import upload_landing
    from fhirflow.warehouse import open_warehouse

    step = "generate"
    try:
        generate_patients(scratch.landing_dir, patients=PATIENTS, seed=20261201,
                          years_of_history=1)
        step = "upload"
        store = open_store(scratch)
        uploaded = upload_landing(scratch.landing_dir, store, prefix=scratch.patients_prefix,
                                  state_dir=scratch.state_dir, workers=scratch.upload_workers)
        step = "load"
        warehouse = open_warehouse(scratch)
        try:
            loaded = run_load(store, warehouse, prefix=scratch.patients_prefix,
                              batch_size=scratch.load_batch_size,
                              max_file_bytes=scratch.max_file_bytes)
        finally:
            warehouse.close()
        if loaded.files_failed or loaded.files_loaded < uploaded.uploaded:
            reasons = sorted({r.reason for b in loaded.batches for r in b.errors})
            raise FhirflowError(f"{loaded.files_loaded} of {uploaded.uploaded} files "
                                f"loaded ({'; '.join(reasons)[:200]})")
        step = "dbt build"
        with contextlib.redirect_stdout(io.StringIO()):  # dbt's own lines stay out of --json
            built = run_dbt(scratch, "build", select=BUILD_SELECT, extra=BUILD_EXTRA)
        if not built.success:
            raise FhirflowError("; ".join(built.failures)[:300] or "failed")
        step = "count"
        staging = (scratch.dbt_schema_prefix + "staging" if scratch.warehouse == "snowflake"
                   else "staging")
        warehouse = open_warehouse(scratch)
        try:
            (patients,) = warehouse.cursor().execute(
                f"select count(*) from {staging}.stg_patients").fetchone()
        finally:
            warehouse.close()
        if int(patients) != PATIENTS:
            raise FhirflowError(f"{staging}.stg_patients has {patients} rows, not {PATIENTS}")
    except FhirflowError as exc:
        raise FhirflowError(f"{step}: {first_line(exc)}") from None
    models = sum(s.models_ok for s in built.layers.values())
    tests = sum(s.tests_passed for s in built.layers.values())
    return (f"{PATIENTS} patients, {uploaded.uploaded} files uploaded to "
            f"{scratch.patients_prefix}, loaded, {models} models and {tests} tests built")


def check_round_trip(settings: Settings) -> CheckResult:
    run = secrets.token_hex(3).upper()
    with tempfile.TemporaryDirectory(prefix="fhirflow-doctor-") as tmp:
        scratch = scratch_settings(settings, Path(tmp) / "home", run)
        try:
            done = _trip(scratch)
            failure = None
        except FhirflowError as exc:
            done, failure = "", str(exc)
        finally:
            left = _drop_scratch_schemas(scratch) if settings.warehouse == "snowflake" else []
    where = "" if settings.store == "local" else (
        f"; its objects stay under {scratch.aws_s3_prefix}/ (loads never list them)")
    if failure:
        fix = {"upload": "see the store check", "load": "see the privileges and stage checks",
               "dbt build": "run `fhirflow transform` for the whole log"}.get(
                   failure.split(":", 1)[0], "run with --verbose")
        return CheckResult("round trip", "fail", failure + where, fix)
    if left:
        return CheckResult("round trip", "fail", f"{done}, but could not drop "
                           f"{', '.join(left)}",
                           "; ".join(f"drop schema {s} cascade" for s in left))
    dropped = "; scratch schemas dropped" if settings.warehouse == "snowflake" else ""
    return CheckResult("round trip", "pass", done + dropped + where)
