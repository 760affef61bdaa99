"""ViewDefinitions as dbt models: the generated files, the build over the real Synthea sample
(each starter view against the staging model it overlaps with), their docs, `views run`
over the warehouse, and the Snowflake SQL dbt renders for them."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from fhirflow.config import Settings, load_settings
from fhirflow.views.dbt_models import MARKER, load_models, render_files, write_dbt_models
from fhirflow.views.definition import InvalidViewError

REPO = Path(__file__).resolve().parents[1]
DBT = REPO / "dbt"
VIEWS = DBT / "views"
MODELS = DBT / "models" / "views"
SAMPLE = REPO.parent / "shared" / "synthea" / "synthea-2024-04"
STARTERS = ["blood_pressure", "conditions", "encounters", "medication_requests", "observations",
            "patient_demographics"]


def test_generated_files_match_the_view_definitions() -> None:
    """Edit a ViewDefinition without regenerating and this fails:
    run `fhirflow views compile dbt/views --dbt-models dbt/models/views`."""
    expected = render_files(VIEWS, MODELS)
    for path, text in expected.items():
        assert path.read_text() == text, f"{path} is out of date"
    generated = [p for folder in (MODELS, DBT / "macros" / "views") for p in folder.glob("*.sql")
                 if MARKER in p.read_text()[:300]]
    assert sorted(generated) == sorted(p for p in expected if p.suffix == ".sql")
    assert sorted(p.stem for p in MODELS.glob("*.sql")) == STARTERS


def test_generator_writes_prunes_and_refuses_clashes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "models" / "staging").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: t\n")
    views_dir = tmp_path / "views"
    views_dir.mkdir()
    for name in ("conditions", "encounters"):
        shutil.copy(VIEWS / f"{name}.json", views_dir)
    models = project / "models" / "views"
    (models).mkdir()
    (models / "hand_written.sql").write_text("select 1 as x\n")
    written = write_dbt_models(views_dir, models)
    assert [p.name for p in written] == ["conditions.sql", "encounters.sql"]
    assert (project / "macros" / "views" / "encounters.sql").exists()
    (views_dir / "encounters.json").unlink()
    write_dbt_models(views_dir, models)
    assert sorted(p.name for p in models.glob("*.sql")) == ["conditions.sql", "hand_written.sql"]
    assert not (project / "macros" / "views" / "encounters.sql").exists()
    (project / "models" / "staging" / "conditions.sql").write_text("select 1 as x\n")
    with pytest.raises(Exception, match="would clash with the model"):
        write_dbt_models(views_dir, models)


def test_the_yaml_documents_every_column_from_the_view() -> None:
    text = (MODELS / "views_models.yml").read_text()
    for name in STARTERS:
        doc = json.loads((VIEWS / f"{name}.json").read_text())
        assert f"  - name: {name}\n" in text
        for column in (c for s in doc["select"] for c in s.get("column", [])):
            assert f"      - name: {column['name']}\n" in text
            if "description" in column:
                assert json.dumps(column["description"]) in text


# ------------------------------------------------------------- built over Synthea


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    if not (SAMPLE / "fhir").is_dir():
        pytest.skip(f"real Synthea sample not found at {SAMPLE} (../shared is absent)")
    from fhirflow.pipeline import run_once

    home = tmp_path_factory.mktemp("views_dbt")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        mp.setenv("FHIRFLOW_HOME", str(home))
        settings = load_settings()
        result = run_once(settings, from_dir=SAMPLE / "fhir")
        assert result.success, result.transform.failures if result.transform else None
        yield settings


@pytest.fixture(scope="module")
def wh(built: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    from fhirflow.views.connect import duckdb_connection

    con = duckdb_connection(built)  # read-only unless dbt-duckdb holds it in this process
    yield con
    con.close()


def differences(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


@pytest.mark.slow
def test_views_build_with_their_tests(built: Settings) -> None:
    from fhirflow.transform import run_dbt

    result = run_dbt(built, "build", select="tag:views")
    assert result.success, result.failures
    layer = next(iter(result.layers.values()))
    assert layer.models_ok == 6 and layer.tests_failed == 0 and layer.tests_passed >= 6


@pytest.mark.slow
def test_patient_demographics_against_stg_patients(wh: duckdb.DuckDBPyConnection) -> None:
    assert differences(wh, """
        select s.patient_id, v.patient_id from staging.stg_patients as s
        full join views.patient_demographics as v on s.patient_id = v.patient_id
        where s.patient_id is null or v.patient_id is null
           or s.first_name is distinct from v.given_name
           or s.last_name is distinct from v.family_name
           or s.prefix is distinct from v.prefix
           or s.maiden_name is distinct from v.maiden_name
           or s.birth_date is distinct from v.birth_date
           or s.ssn is distinct from v.ssn
           or s.marital is distinct from v.marital_status
           or s.gender is distinct from upper(left(v.gender, 1))
           or s.city is distinct from v.city
           or s.state_code is distinct from v.state
           or s.lat is distinct from v.latitude or s.lon is distinct from v.longitude
    """) == []
    assert wh.execute("select count(*) from views.patient_demographics "
                      "where race_code is null or ethnicity_code is null").fetchone() == (0,)


@pytest.mark.slow
def test_conditions_against_stg_conditions(wh: duckdb.DuckDBPyConnection) -> None:
    assert differences(wh, """
        select s.condition_id, v.condition_id from staging.stg_conditions as s
        full join views.conditions as v on s.condition_id = v.condition_id
        where s.condition_id is null or v.condition_id is null
           or s.patient_id is distinct from v.patient_id
           or s.encounter_id is distinct from v.encounter_id
           or s.code is distinct from v.code or s.code_system is distinct from v.code_system
           or s.description is distinct from v.display
           or s.clinical_status is distinct from v.clinical_status
           or s.start_date is distinct from cast(left(v.onset_at, 10) as date)
    """) == []


@pytest.mark.slow
def test_encounters_against_stg_encounters(wh: duckdb.DuckDBPyConnection) -> None:
    assert differences(wh, """
        select s.encounter_id, v.encounter_id from staging.stg_encounters as s
        full join views.encounters as v on s.encounter_id = v.encounter_id
        where s.encounter_id is null or v.encounter_id is null
           or s.patient_id is distinct from v.patient_id
           or s.encounter_class_code is distinct from v.class_code
           or s.code is distinct from v.type_code or s.description is distinct from v.type_display
           or s.reason_code is distinct from v.reason_code
           or s.status is distinct from v.status
           or s.provider_reference is distinct from v.practitioner_reference
           -- staging holds UTC without a zone; the view's ansi/type column is an instant
           or s.start_at is distinct from cast(v.start_instant as timestamp)
    """) == []


@pytest.mark.slow
def test_observations_against_stg_observations(wh: duckdb.DuckDBPyConnection) -> None:
    assert differences(wh, """
        select s.observation_key, v.observation_id, v.component_index
        from staging.stg_observations as s
        full join views.observations as v
            on s.observation_id = v.observation_id and s.component_index = v.component_index
        where s.observation_key is null or v.observation_id is null
           or s.patient_id is distinct from v.patient_id
           or s.encounter_id is distinct from v.encounter_id
           or s.category is distinct from v.category
           or s.code is distinct from v.code or s.description is distinct from v.display
           or s.value_number is distinct from v.value_number
           or s.units is distinct from v.unit
           or (s.value_number is null and s.value_text is distinct from v.value_text)
    """) == []
    assert wh.execute("select count(*) from views.observations where component_index >= 0"
                      ).fetchone()[0] > 0


@pytest.mark.slow
def test_medication_requests_against_stg_medications(wh: duckdb.DuckDBPyConnection) -> None:
    assert differences(wh, """
        select s.medication_request_id, v.medication_request_id from staging.stg_medications as s
        full join views.medication_requests as v
            on s.medication_request_id = v.medication_request_id
        where s.medication_request_id is null or v.medication_request_id is null
           or s.patient_id is distinct from v.patient_id
           or s.encounter_id is distinct from v.encounter_id
           or s.status is distinct from v.status or s.category is distinct from v.category
           or s.medication_id is distinct from v.medication_id
           or s.reason_condition_id is distinct from v.reason_condition_id
           or (v.medication_code is not null and s.code is distinct from v.medication_code)
    """) == []


@pytest.mark.slow
def test_blood_pressure_against_stg_observations(wh: duckdb.DuckDBPyConnection) -> None:
    components = wh.execute("""
        select observation_id,
               max(case when code = '8480-6' then value_number end),
               max(case when code = '8462-4' then value_number end)
        from staging.stg_observations
        where observation_id in (select observation_id from staging.stg_observations
                                 where code in ('8480-6', '8462-4'))
        group by observation_id order by observation_id
    """).fetchall()
    view = wh.execute("select observation_id, systolic, diastolic from views.blood_pressure "
                      "order by observation_id").fetchall()
    assert view == components and len(view) > 50
    assert wh.execute("select distinct systolic_unit, diastolic_unit from views.blood_pressure"
                      ).fetchall() == [("mm[Hg]", "mm[Hg]")]


@pytest.mark.slow
def test_views_are_documented_in_the_manifest(built: Settings) -> None:
    from fhirflow.transform import dbt_target_path

    manifest = json.loads((dbt_target_path(built) / "manifest.json").read_text())
    nodes = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for name in STARTERS:
        node = nodes[name]
        assert node["schema"] == "views" and node["description"]
        assert node["columns"] and all(c["description"] for c in node["columns"].values())


@pytest.mark.slow
def test_views_run_over_the_warehouse(built: Settings, wh: duckdb.DuckDBPyConnection) -> None:
    from fhirflow.views.cli import views

    result = CliRunner().invoke(views, ["run", str(VIEWS / "encounters.json")],
                                env={"FHIRFLOW_HOME": str(built.home)})
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    table = wh.execute("select encounter_id, type_code from views.encounters").fetchall()
    assert sorted((r["encounter_id"], r["type_code"]) for r in rows) == sorted(table)


# ------------------------------------------------------------- the Snowflake adapter


@pytest.mark.slow
def test_dbt_renders_the_snowflake_sql_for_views(tmp_path: Path,
                                                  fakesnow_server: Callable[..., Any]) -> None:
    """dbt-snowflake picks the snowflake__ macros; the compiled models parse as Snowflake SQL.
    (fakesnow cannot run them: see test_views_conformance for what it lacks.)"""
    sqlglot = pytest.importorskip("sqlglot")
    from fhirflow.transform import dbt_target_path, run_dbt

    with pytest.MonkeyPatch.context() as mp, fakesnow_server() as conn:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        settings = load_settings(
            home=tmp_path / "home", warehouse="snowflake", snowflake_account=conn["account"],
            snowflake_user=conn["user"], snowflake_password=conn["password"],
            snowflake_host=conn["host"], snowflake_port=conn["port"],
            snowflake_protocol=conn["protocol"], snowflake_load_mode="insert", dbt_threads=1)
        result = run_dbt(settings, "compile", select="tag:views")
    assert result.success, result.failures
    compiled = dbt_target_path(settings) / "compiled" / "fhirflow" / "models" / "views"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        for name in STARTERS:
            sql = (compiled / f"{name}.sql").read_text()
            assert "lateral flatten" in sql or "r.resource:" in sql
            assert "json_extract" not in sql and "lambda" not in sql
            sqlglot.parse_one(sql, read="snowflake")
    finally:
        sys.setrecursionlimit(limit)


def test_a_view_column_named_as_a_carried_column_is_refused(tmp_path: Path) -> None:
    """The view models carry `_resource_id` and `_loaded_at` beside the view's columns (the
    incremental merge needs them). No view column can take those names: the specification's
    name rule (a letter first) refuses them when the ViewDefinition is read, with a line
    that names the column, rather than dbt failing on a duplicate column at build time."""
    views_dir = tmp_path / "views"
    views_dir.mkdir()
    view = {"resourceType": "ViewDefinition", "name": "clash", "resource": "Patient",
            "status": "active",
            "select": [{"column": [{"name": "_loaded_at", "path": "birthDate"}]}]}
    (views_dir / "clash.json").write_text(json.dumps(view))
    with pytest.raises(InvalidViewError, match="_loaded_at"):
        load_models(views_dir)
