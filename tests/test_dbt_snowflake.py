"""The whole dbt project on the Snowflake adapter, against fakesnow running as a server.

fakesnow (Snowflake's SQL on DuckDB) cannot hold real-size bundles, so the RAW layer gets
small generated ones: 2 patients with 1 year of history, loaded by the production Snowflake
loader in its "insert" mode (the stage-less mode fakesnow can run). dbt-snowflake then
connects over HTTP (profile host/port/protocol from SNOWFLAKE_HOST/PORT/PROTOCOL) and builds
every model and its tests. The same bundles then go through the DuckDB path, and the staging
rows of both warehouses must be equal; the models' incremental branches, compiled after the
build, pass the Snowflake guard (tests/_snowflake_guard.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from fhirflow.config import Settings, load_settings

fakesnow = pytest.importorskip("fakesnow")


@pytest.fixture(scope="module")
def snowflake_settings(
    tmp_path_factory: pytest.TempPathFactory, fakesnow_server: Callable[..., Any]
) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("snowflake")
    with pytest.MonkeyPatch.context() as mp, fakesnow_server() as conn:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        yield load_settings(
            home=home,
            warehouse="snowflake",
            snowflake_account=conn["account"],
            snowflake_user=conn["user"],
            snowflake_password=conn["password"],
            snowflake_host=conn["host"],
            snowflake_port=conn["port"],
            snowflake_protocol=conn["protocol"],
            snowflake_load_mode="insert",
            dbt_threads=1,
        )


@pytest.fixture(scope="module")
def loaded(snowflake_settings: Settings) -> Settings:
    from fhirflow import pipeline
    from fhirflow.generate import generate_patients

    settings = snowflake_settings
    made = generate_patients(settings.landing_dir, patients=2, seed=7, years_of_history=1)
    assert made.patients == 2
    pipeline.upload(settings, lambda _m: None, store_kind="local")
    result = pipeline.load(settings, lambda _m: None, store_kind="local").result
    assert result.files_loaded >= 3, result  # 2 patients + the run-level bundles
    return settings


@pytest.fixture(scope="module")
def built(loaded: Settings) -> Any:
    from fhirflow.transform import run_dbt

    # fakesnow cannot run the views' FILTER/TRANSFORM/REDUCE over VARIANT (their Snowflake SQL
    # is checked as text and by sqlglot in tests/test_views_sql.py), nor unit tests: dbt-snowflake
    # runs them in `create temporary table <db>.<schema>.<x>`, valid on Snowflake but beyond
    # fakesnow; test_unit_tests_hold_on_snowflake runs their compiled queries instead.
    return run_dbt(loaded, "build", extra=["--exclude", "tag:views", "test_type:unit"])


def test_dbt_build_on_snowflake_adapter(built: Any) -> None:
    result = built
    assert result.success, result.failures
    models = {layer: s.models_ok for layer, s in result.layers.items()}
    assert models.get("staging") == 18
    assert models.get("intermediate") == 6
    assert models.get("marts") == 24  # 22 star-schema marts and 2 data-quality models
    assert models.get("other") == 1  # the patient snapshot
    # The incremental re-run (MERGE) is in test_snowflake_incremental.py.


def test_export_csv_from_snowflake(loaded: Settings, built: Any, tmp_path: Path) -> None:
    from fhirflow.export_csv import export_csv

    result = export_csv(loaded, tmp_path, tables=["patients", "encounters", "observations"])
    assert result.rows["patients"] == 2
    assert result.rows["encounters"] > 0
    header = (tmp_path / "patients.csv").read_text().splitlines()[0]
    assert header.startswith("Id,BIRTHDATE,DEATHDATE,SSN")


@pytest.fixture(scope="module")
def duckdb_twin(loaded: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The same landed bundles through the embedded path: upload, load and dbt on DuckDB."""
    from fhirflow import pipeline
    from fhirflow.transform import run_dbt

    settings = load_settings(home=tmp_path_factory.mktemp("duckdb-twin"))
    shutil.copytree(loaded.landing_dir, settings.landing_dir)
    pipeline.upload(settings, lambda _m: None, store_kind="local")
    pipeline.load(settings, lambda _m: None, store_kind="local")
    result = run_dbt(settings, "build")
    assert result.success, result.failures
    return settings


def _normalised(value: Any) -> Any:
    if isinstance(value, (float, Decimal)):
        return round(float(value), 9)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


# Staging models whose columns come through json_array_lookup (FLATTEN + MIN_BY on
# Snowflake, list_filter on DuckDB) or flatten_json_array, and a few plain ones; then every
# mart, whose dispatched macros (date spine, ISO week parts) differ too.
COMPARED = [
    *(f"staging.{m}" for m in (
        "stg_patients", "stg_claims", "stg_careplans", "stg_providers", "stg_organizations",
        "stg_claims_transactions", "stg_observations", "stg_encounters",
        "stg_payer_transitions")),
    *(f"marts.{m}" for m in (
        "dim_patients", "dim_providers", "dim_organizations", "dim_payers", "dim_dates",
        "fct_encounters", "fct_conditions", "fct_medications", "fct_procedures",
        "fct_observations", "fct_immunizations", "fct_allergies", "fct_careplans",
        "fct_claims", "fct_claim_lines", "fct_devices", "fct_supplies",
        "fct_imaging_studies", "fct_payer_coverage", "mart_condition_prevalence",
        "mart_utilization_monthly", "dq_reference_integrity", "dq_completeness")),
]
# fakesnow's defect, not ours: Snowflake documents FLATTEN's INDEX as the element's index in
# the array (0-based), which the Snowflake macro reads and the DuckDB macro computes as the
# list position. fakesnow 0.12's _fs_flatten macro numbers INDEX with `row_number() over ()`;
# under a lateral join over many rows DuckDB evaluates that window without the array's
# order, so INDEX is a permutation of 0..n-1 per array, not the element's position
# (test_fakesnow_flatten_index_is_not_the_array_position shows it). The line ids built from
# it (claim_transaction_id, claim_line_id) then differ on claims with many items; every other
# column agrees (test_claim_lines_agree_but_for_the_flatten_index).
LINE_NUMBERS_DIFFER = {"staging.stg_claims_transactions": "claim_transaction_id",
                       "marts.fct_claim_lines": "claim_line_id"}
COMPARED = [pytest.param(r, marks=pytest.mark.xfail(
                reason="fakesnow 0.12's FLATTEN INDEX is row_number() over () without the "
                       "array's order, not the element's position", strict=False))
            if r in LINE_NUMBERS_DIFFER else r for r in COMPARED]
# dim_patients_history is left out: its versions carry the build's own timestamps.
# Two generated patients with a year of history had no allergy and no imaging study.
MAY_BE_EMPTY = {"marts.fct_allergies", "marts.fct_imaging_studies"}


def _rows(cursor_description: Any, rows: list[tuple]) -> tuple[list[str], list[dict]]:
    names = [d[0].lower() for d in cursor_description]
    return names, [dict(zip(names, row, strict=True)) for row in rows]


def _both(loaded: Settings, duckdb_twin: Settings,
          relation: str) -> tuple[list[str], list[dict], list[dict]]:
    """The relation's columns, its rows on fakesnow and its rows on DuckDB."""
    sf = _connect(loaded)
    try:
        cursor = sf.cursor()
        cursor.execute(f"select * from {relation}")
        columns, snowflake_rows = _rows(cursor.description, cursor.fetchall())
    finally:
        sf.close()
    # Not read_only: dbt-duckdb may still hold its read-write connection to the file.
    con = duckdb.connect(str(duckdb_twin.duckdb_path))
    try:
        result = con.execute(f"select * from {relation}")
        names, duckdb_rows = _rows(result.description, result.fetchall())
    finally:
        con.close()
    assert set(columns) == set(names)
    return names, snowflake_rows, duckdb_rows


def _keyed(rows: list[dict[str, Any]], compared: list[str]) -> list[tuple]:
    return sorted((tuple(_normalised(r[c]) for c in compared) for r in rows), key=repr)


@pytest.mark.parametrize("relation", COMPARED)
def test_snowflake_and_duckdb_build_the_same_rows(
    loaded: Settings, built: Any, duckdb_twin: Settings, relation: str
) -> None:
    names, snowflake_rows, duckdb_rows = _both(loaded, duckdb_twin, relation)
    # Load metadata differs between the two loads; the rest must be equal, value for value.
    compared = sorted(c for c in names if not c.startswith("_"))
    if relation not in MAY_BE_EMPTY:
        assert snowflake_rows, f"{relation} is empty on Snowflake"
    assert _keyed(snowflake_rows, compared) == _keyed(duckdb_rows, compared)


@pytest.mark.parametrize("relation", sorted(LINE_NUMBERS_DIFFER))
def test_claim_lines_agree_but_for_the_flatten_index(
    loaded: Settings, built: Any, duckdb_twin: Settings, relation: str
) -> None:
    """What the xfail above leaves unchecked: all but the id built from FLATTEN's INDEX."""
    names, snowflake_rows, duckdb_rows = _both(loaded, duckdb_twin, relation)
    compared = sorted(c for c in names
                      if not c.startswith("_") and c != LINE_NUMBERS_DIFFER[relation])
    assert snowflake_rows, f"{relation} is empty on Snowflake"
    assert _keyed(snowflake_rows, compared) == _keyed(duckdb_rows, compared)


def test_fakesnow_flatten_index_is_not_the_array_position() -> None:
    """The fakesnow defect behind LINE_NUMBERS_DIFFER, on its own: arrays of 3 to 52 items,
    one per row, flattened laterally. When this fails, fakesnow numbers INDEX by position:
    drop LINE_NUMBERS_DIFFER and its xfail."""
    import snowflake.connector

    with fakesnow.patch():
        con = snowflake.connector.connect(database="flatten_probe", schema="s")
        try:
            cursor = con.cursor()
            cursor.execute("create table arrays (id varchar, doc variant)")
            for i in range(40):
                items = [{"sequence": k} for k in range(3 + (i * 7) % 50)]
                cursor.execute("insert into arrays select %s, parse_json(%s)",
                               (f"a{i}", json.dumps({"item": items})))
            cursor.execute("""
                select arrays.id, flattened.index, flattened.value:sequence::int
                from arrays, lateral flatten(input => arrays.doc:item) as flattened""")
            rows = cursor.fetchall()
        finally:
            con.close()
    assert len(rows) == sum(3 + (i * 7) % 50 for i in range(40))
    per_array: dict[str, list[int]] = {}
    for array_id, index, _position in rows:
        per_array.setdefault(array_id, []).append(index)
    # Each array still gets the indexes 0..n-1, only not in the elements' order.
    assert all(sorted(v) == list(range(len(v))) for v in per_array.values())
    assert any(index != position for _id, index, position in rows), (
        "fakesnow's FLATTEN INDEX is now the element's position: remove LINE_NUMBERS_DIFFER")


def test_compiled_incremental_branches_pass_the_snowflake_guard(
    loaded: Settings, built: Any
) -> None:
    """After the build every incremental model exists, so a compile now takes the
    is_incremental() branches (the lookback filters of resources_of_type) that the first
    build did not; tests/test_snowflake_guard.py guards the first-run branches. The base
    model is a view over RAW.FHIR_RESOURCES, with no branch of its own."""
    from _snowflake_guard import offences
    from fhirflow.transform import dbt_target_path, run_dbt

    result = run_dbt(loaded, "compile", select="tag:staging")
    assert result.success, result.failures
    compiled = dbt_target_path(loaded) / "compiled" / "fhirflow" / "models"
    files = sorted(p for p in compiled.rglob("*.sql") if not p.parent.suffix)
    # The load filter of resources_of_type (loaded_after_last_build): `>` with the default
    # lookback of 0 days, the newest load time as a literal.
    branches = ("_loaded_at > cast(", "_loaded_at >= cast(")
    staging = [p for p in files if p.parent.name == "staging"]
    incremental = [p for p in staging
                   if any(b in " ".join(p.read_text().split()) for b in branches)]
    assert len(staging) == 18 and incremental == staging, [p.stem for p in staging]
    offenders = {p.stem: found for p in files if (found := offences(p.read_text()))}
    assert offenders == {}


def _connect(settings: Settings) -> Any:
    import snowflake.connector

    password = settings.snowflake_password.get_secret_value() if settings.snowflake_password else ""
    return snowflake.connector.connect(
        account=settings.snowflake_account, user=settings.snowflake_user, password=password,
        host=settings.snowflake_host, port=settings.snowflake_port,
        protocol=settings.snowflake_protocol, database=settings.snowflake_database)


def test_unit_tests_hold_on_snowflake(loaded: Settings, built: Any) -> None:
    """Each dbt unit test's compiled query (its fixtures in place of the model's inputs, the
    JSON ones through PARSE_JSON) run on the Snowflake dialect returns its `expect` rows."""
    from fhirflow.transform import dbt_target_path, run_dbt

    # `dbt compile` leaves unit tests out; `dbt test` writes their compiled SQL, then fails
    # on fakesnow at the temporary table (see the `built` fixture).
    tested = run_dbt(loaded, "test", select="test_type:unit")
    assert tested.success or all("TEMPORARY table" in f for f in tested.failures), tested.failures
    target = dbt_target_path(loaded)
    unit_tests = json.loads((target / "manifest.json").read_text())["unit_tests"]
    assert len(unit_tests) == 4
    sf = _connect(loaded)
    try:
        for test in unit_tests.values():
            (path,) = (target / "compiled").rglob(f"{test['name']}.sql")
            cursor = sf.cursor()
            cursor.execute(path.read_text())
            names = [d[0].lower() for d in cursor.description]
            actual = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            expected = test["expect"]["rows"]
            columns = sorted(expected[0])

            def shown(rows: list[dict[str, Any]], columns: list[str] = columns) -> list[tuple]:
                return sorted((tuple(None if r[c] is None else str(r[c]) for c in columns)
                               for r in rows), key=repr)

            assert shown(actual) == shown(expected), test["name"]
    finally:
        sf.close()
