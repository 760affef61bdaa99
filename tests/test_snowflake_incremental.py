"""Incremental runs on the Snowflake adapter: a second `dbt build` on fakesnow runs the MERGE.

A first build creates the incremental models; a second load brings a new patient and a
re-delivered bundle whose Patient changed; the second build merges them (dbt-snowflake's
merge strategy with our override in dbt/macros/overrides/snowflake__get_merge_sql.sql) and
must update the re-delivered patient in place, not add a second row. The SQL dbt ran is then
checked as text: a MERGE, with no BEGIN ... COMMIT around it, and with nothing the Snowflake
guard (tests/_snowflake_guard.py) finds.

Only the models the two staging models need are built (seeds, base_fhir_entries,
stg_patients, stg_encounters): fakesnow is slow, and the MERGE is the same macro for all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _snowflake_guard import offences
from fhirflow.config import Settings, load_settings

fakesnow = pytest.importorskip("fakesnow")
SELECT = "+stg_patients +stg_encounters"
# Only the tests whose every parent is selected (not the relationships into unbuilt models).
# Unit tests aside: dbt-snowflake runs them in a qualified temporary table, beyond fakesnow.
CAUTIOUS = ["--indirect-selection", "cautious", "--exclude", "test_type:unit"]


@pytest.fixture(scope="module")
def snowflake_settings(
    tmp_path_factory: pytest.TempPathFactory, fakesnow_server: Callable[..., Any]
) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("snowflake-incremental")
    with pytest.MonkeyPatch.context() as mp, fakesnow_server() as conn:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        yield load_settings(
            home=home, warehouse="snowflake", snowflake_account=conn["account"],
            snowflake_user=conn["user"], snowflake_password=conn["password"],
            snowflake_host=conn["host"], snowflake_port=conn["port"],
            snowflake_protocol=conn["protocol"], snowflake_load_mode="insert",
            # fakesnow servers in one process share their databases: use our own
            snowflake_database="SYNTHEA_INCREMENTAL", dbt_threads=1,
        )


def _load(settings: Settings) -> None:
    from fhirflow import pipeline

    pipeline.upload(settings, lambda _m: None, store_kind="local")
    result = pipeline.load(settings, lambda _m: None, store_kind="local").result
    assert result.files_loaded >= 1 and result.files_failed == 0, result


def _rows(settings: Settings, sql: str) -> list[tuple]:
    import snowflake.connector

    secret = settings.snowflake_password
    con = snowflake.connector.connect(
        account=settings.snowflake_account, user=settings.snowflake_user,
        password=secret.get_secret_value() if secret else None, host=settings.snowflake_host,
        port=settings.snowflake_port, protocol=settings.snowflake_protocol,
        database=settings.snowflake_database)
    try:
        return con.cursor().execute(sql).fetchall()
    finally:
        con.close()


def _patient_bundle(landing: Path) -> tuple[Path, dict]:
    for path in sorted(landing.rglob("*.json")):
        if path.parent.name == "_run":
            continue
        doc = json.loads(path.read_text())
        if any(e["resource"]["resourceType"] == "Patient" for e in doc["entry"]):
            return path, doc
    raise AssertionError(f"no patient bundle under {landing}")


@pytest.fixture(scope="module")
def two_builds(snowflake_settings: Settings) -> dict[str, Any]:
    from fhirflow.generate import generate_patients
    from fhirflow.transform import dbt_target_path, run_dbt

    settings = snowflake_settings
    generate_patients(settings.landing_dir, patients=2, seed=7, years_of_history=1)
    _load(settings)
    first = run_dbt(settings, "build", select=SELECT, extra=CAUTIOUS)
    assert first.success, first.failures
    before = dict(_rows(settings, "select patient_id, city from staging.stg_patients"))
    encounters_before = _rows(settings, "select count(*) from staging.stg_encounters")[0][0]

    # A new patient, and one bundle of the first load delivered again with its Patient moved
    # to another city.
    path, doc = _patient_bundle(settings.landing_dir)
    generate_patients(settings.landing_dir, patients=1, seed=8, years_of_history=1)
    patient = next(e["resource"] for e in doc["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    patient["address"][0]["city"] = "Merged Falls"
    path.write_text(json.dumps(doc))
    _load(settings)
    second = run_dbt(settings, "build", select=SELECT, extra=CAUTIOUS)
    run_sql = {p.stem: p.read_text()
               for p in (dbt_target_path(settings) / "run").rglob("*.sql")}
    return {"settings": settings, "first": first, "second": second, "before": before,
            "moved": patient["id"], "encounters_before": encounters_before, "run_sql": run_sql}


def test_second_build_merges_new_and_changed_rows(two_builds: dict[str, Any]) -> None:
    settings, second = two_builds["settings"], two_builds["second"]
    assert second.success, second.failures
    assert second.layers["staging"].models_failed == 0
    after = _rows(settings, "select patient_id, city from staging.stg_patients")
    ids = [pid for pid, _city in after]
    assert len(ids) == len(set(ids)) == 3  # the re-delivered patient is still one row
    assert set(two_builds["before"]) < set(ids)
    assert dict(after)[two_builds["moved"]] == "Merged Falls"
    assert two_builds["before"][two_builds["moved"]] != "Merged Falls"
    encounters = _rows(settings, "select count(*), count(distinct encounter_id) "
                                 "from staging.stg_encounters")[0]
    assert encounters[0] == encounters[1] > two_builds["encounters_before"]


def test_the_second_build_ran_a_merge_without_an_explicit_transaction(
    two_builds: dict[str, Any],
) -> None:
    sql = two_builds["run_sql"]["stg_patients"]
    normal = " ".join(sql.lower().split())
    # dbt's merge macro leads with a comment line ("-- back compat for old kwarg name").
    assert "merge into synthea_incremental.staging.stg_patients as dbt_internal_dest" in normal
    assert 'using synthea_incremental.staging.stg_patients__dbt_tmp as dbt_internal_source' in (
        normal)
    assert "when not matched then insert" in normal
    assert 'values (dbt_internal_source."patient_id"' in normal
    # One statement under dbt-snowflake's autocommit: no BEGIN ... COMMIT for fakesnow to trip on.
    assert "begin;" not in normal and "commit;" not in normal
    for name in ("stg_patients", "stg_encounters", "base_fhir_entries"):
        assert offences(two_builds["run_sql"][name]) == [], name
