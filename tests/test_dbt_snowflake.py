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

    # fakesnow cannot run the views' FILTER/TRANSFORM/REDUCE over VARIANT: their Snowflake SQL
    # is checked as text and by sqlglot in tests/test_views_sql.py.
    return run_dbt(loaded, "build", extra=["--exclude", "tag:views"])


def test_dbt_build_on_snowflake_adapter(built: Any) -> None:
    result = built
    assert result.success, result.failures
    models = {layer: s.models_ok for layer, s in result.layers.items()}
    assert models.get("staging") == 18
    assert models.get("intermediate") == 4
    assert models.get("marts") == 5
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
# Snowflake, list_filter on DuckDB) or flatten_json_array, and a few plain ones.
COMPARED = ["stg_patients", "stg_claims", "stg_careplans", "stg_providers", "stg_organizations",
            "stg_claims_transactions", "stg_observations", "stg_encounters"]


@pytest.mark.parametrize("model", COMPARED)
def test_snowflake_and_duckdb_build_the_same_staging_rows(
    loaded: Settings, built: Any, duckdb_twin: Settings, model: str
) -> None:
    import snowflake.connector

    password = loaded.snowflake_password.get_secret_value() if loaded.snowflake_password else ""
    sf = snowflake.connector.connect(
        account=loaded.snowflake_account, user=loaded.snowflake_user, password=password,
        host=loaded.snowflake_host, port=loaded.snowflake_port,
        protocol=loaded.snowflake_protocol, database=loaded.snowflake_database)
    try:
        cursor = sf.cursor()
        cursor.execute(f"select * from staging.{model}")
        columns = [d[0].lower() for d in cursor.description]
        snowflake_rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        sf.close()
    # Not read_only: dbt-duckdb may still hold its read-write connection to the file.
    con = duckdb.connect(str(duckdb_twin.duckdb_path))
    try:
        relation = con.execute(f"select * from staging.{model}")
        names = [d[0] for d in relation.description]
        duckdb_rows = [dict(zip(names, row, strict=True)) for row in relation.fetchall()]
    finally:
        con.close()
    assert set(columns) == set(names)
    # Load metadata differs between the two loads; the rest must be equal, value for value.
    compared = sorted(c for c in names if not c.startswith("_"))

    def keyed(rows: list[dict[str, Any]]) -> list[tuple]:
        return sorted((tuple(_normalised(r[c]) for c in compared) for r in rows), key=repr)

    assert snowflake_rows, f"{model} is empty on Snowflake"
    assert keyed(snowflake_rows) == keyed(duckdb_rows)


def test_compiled_incremental_branches_pass_the_snowflake_guard(
    loaded: Settings, built: Any
) -> None:
    """After the build every incremental model exists, so a compile now takes the
    is_incremental() branches (lookback filters, the load filter of base_fhir_entries) that
    the first build did not; tests/test_snowflake_guard.py guards the first-run branches."""
    from _snowflake_guard import offences
    from fhirflow.transform import dbt_target_path, run_dbt

    result = run_dbt(loaded, "compile", select="tag:staging")
    assert result.success, result.failures
    compiled = dbt_target_path(loaded) / "compiled" / "fhirflow" / "models"
    files = sorted(p for p in compiled.rglob("*.sql") if not p.parent.suffix)
    branches = ("_loaded_at >= coalesce(", "not in (select distinct _load_id")
    incremental = [p for p in files if any(b in " ".join(p.read_text().split()) for b in branches)]
    assert len(incremental) == 19, [p.stem for p in files]  # base_fhir_entries + 18 staging
    offenders = {p.stem: found for p in files if (found := offences(p.read_text()))}
    assert offenders == {}
