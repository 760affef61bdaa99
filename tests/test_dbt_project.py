"""The dbt project on DuckDB: every layer builds and tests, the marts agree with what they
summarise, the snapshot keeps patient history, the data-quality models count what is wrong,
layers select by tag, an incremental re-run after a re-delivered bundle keeps one row per key,
docs generate with the project's overview."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from fhirflow.cli import main
from fhirflow.config import Settings, load_settings
from fhirflow.pipeline import run_once
from fhirflow.transform import run_dbt

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "synthea" / "synthea-2024-04"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    if not (SAMPLE / "fhir").is_dir():
        pytest.skip(f"real Synthea sample not found at {SAMPLE} (../shared is absent)")
    home = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        mp.setenv("FHIRFLOW_HOME", str(home))
        settings = load_settings()
        result = run_once(settings, from_dir=SAMPLE / "fhir")
        assert result.success, result.transform.failures if result.transform else None
        yield settings


def test_all_models_and_their_tests(built: Settings) -> None:
    result = run_dbt(built, "build", select="tag:staging tag:intermediate tag:marts")
    assert result.success, result.failures
    counts = {layer: s.models_ok for layer, s in result.layers.items()}
    assert counts["staging"] == 18 and counts["intermediate"] == 6 and counts["marts"] == 24
    assert counts["other"] == 1  # the patient snapshot
    assert sum(s.tests_passed for s in result.layers.values()) > 300
    assert not any(s.tests_warned for s in result.layers.values())  # the sample is complete
    results = json.loads((result.target_path / "run_results.json").read_text())["results"]
    unit_tests = {r["unique_id"].split(".")[-1]: r["status"] for r in results
                  if r["unique_id"].startswith("unit_test.")}
    assert unit_tests == {
        "stg_patients_maps_race_ethnicity_and_gender": "pass",
        "stg_encounters_resolves_reference_keys": "pass",
        "fct_conditions_categorises_by_semantic_tag": "pass",
        "mart_utilization_monthly_sums_costs_exactly": "pass",
    }


def _rows(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.duckdb_path))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_prevalence_counts_patients_as_the_conditions_do(built: Settings) -> None:
    mart = dict(_rows(built, """
        select condition_code, patients_with_condition from marts.mart_condition_prevalence
        where gender = 'all' and age_band = 'all'"""))
    direct = dict(_rows(built, """
        select code, count(distinct patient_id) from staging.stg_conditions group by code"""))
    assert mart == direct
    (patients,) = _rows(built, "select count(*) from staging.stg_patients")[0]
    populations = {p for (p,) in _rows(built, """
        select population from marts.mart_condition_prevalence
        where gender = 'all' and age_band = 'all'""")}
    assert populations == {patients}
    # The groups of one dimension add up to its 'all' row.
    mismatched = _rows(built, """
        select code_rows.condition_code from marts.mart_condition_prevalence as code_rows
        where code_rows.gender = 'all' and code_rows.age_band = 'all'
          and code_rows.patients_with_condition <> (
              select sum(by_sex.patients_with_condition)
              from marts.mart_condition_prevalence as by_sex
              where by_sex.condition_code = code_rows.condition_code
                and by_sex.gender <> 'all' and by_sex.age_band = 'all')""")
    assert mismatched == []
    categories = dict(_rows(built, """
        select description, condition_category from marts.fct_conditions
        where description in ('Viral sinusitis (disorder)', 'Stress (finding)',
                              'Medication review due (situation)')"""))
    assert categories == {"Viral sinusitis (disorder)": "disorder",
                          "Stress (finding)": "social_determinant",
                          "Medication review due (situation)": "situation"}


def test_monthly_utilization_adds_up_to_the_encounters(built: Settings) -> None:
    mart = _rows(built, """
        select sum(encounters), round(sum(total_claim_cost), 2), count(distinct payer_name)
        from marts.mart_utilization_monthly""")[0]
    facts = _rows(built, """
        select count(*), round(sum(total_claim_cost), 2), count(distinct coalesce(payer_name,
            'none')) from marts.fct_encounters""")[0]
    assert mart == facts
    (months,) = _rows(built, """
        select count(distinct cast(date_trunc('month', start_date) as date))
        from marts.fct_encounters""")[0]
    assert _rows(built, "select count(distinct month_start_date) from "
                        "marts.mart_utilization_monthly")[0] == (months,)


def test_dim_dates_has_every_day_of_the_range(built: Settings) -> None:
    first, last, days, distinct = _rows(built, """
        select min(date_day), max(date_day), count(*), count(distinct date_day)
        from marts.dim_dates""")[0]
    assert days == distinct == (last - first).days + 1
    (earliest_birth,) = _rows(built, "select min(birth_date) from marts.dim_patients")[0]
    assert first == earliest_birth
    # 2021-01-03 (inside the sample's range) is a Sunday in ISO week 53 of 2020.
    assert _rows(built, """select day_of_week, day_name, iso_week, iso_year, is_weekend,
        month_name, quarter, month_start_date from marts.dim_dates
        where date_day = date '2021-01-03'""") == [
        (7, "Sunday", 53, 2020, True, "January", 1, first.replace(2021, 1, 1))]


def test_data_quality_models_on_a_complete_load(built: Settings) -> None:
    counts = dict(_rows(built, """
        select resource_type || '.' || reference_path, reference_count
        from marts.dq_reference_integrity"""))
    per_type = dict(_rows(built, """
        select resource_type, count(distinct resource_id) from staging.base_fhir_entries
        group by resource_type"""))
    assert counts["Encounter.participant[0].individual"] == per_type["Encounter"]
    assert counts["Observation.encounter"] == per_type["Observation"]
    assert _rows(built, "select sum(undefined), sum(unresolved), bool_and(is_within_threshold) "
                        "from marts.dq_reference_integrity") == [(0, 0, True)]
    (rows, nulls) = _rows(built, "select count(*), count(*) - count(encounter_id) "
                                 "from staging.stg_observations")[0]
    assert _rows(built, """select row_count, null_count from marts.dq_completeness
        where dq_key = 'stg_observations.encounter_id'""") == [(rows, nulls)]


def test_no_column_is_a_reserved_word(built: Settings) -> None:
    """A column named after a reserved word (dq_reference_integrity's `references` was one)
    must be quoted in every query; DuckDB lists its reserved words in duckdb_keywords()."""
    assert _rows(built, """
        select c.table_schema, c.table_name, c.column_name
        from information_schema.columns as c
        inner join duckdb_keywords() as k on lower(c.column_name) = k.keyword_name
        where k.keyword_category = 'reserved'
          and c.table_schema in ('staging', 'intermediate', 'marts')""") == []

def _scratch_copy(built: Settings, home: Path) -> Settings:
    """A copy of the built warehouse, for a test that changes data: the shared one stays."""
    scratch = load_settings(home=home)
    scratch.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(built.duckdb_path))
    try:
        con.execute(f"attach '{scratch.duckdb_path}' as scratch")
        con.execute(f"copy from database {built.duckdb_path.stem} to scratch")
        con.execute("detach scratch")
    finally:
        con.close()
    return scratch


def test_snapshot_keeps_patient_history_and_the_mart_stands_without_it(
    built: Settings, tmp_path: Path
) -> None:
    scratch = _scratch_copy(built, tmp_path / "scratch")
    (moved,) = _rows(scratch, "select min(patient_id) from staging.stg_patients")[0]
    _rows(scratch, f"""update staging.stg_patients set address = '1 New Street', marital = 'D'
        where patient_id = '{moved}'""")
    result = run_dbt(scratch, "build", select="snp_patients dim_patients_history")
    assert result.success, result.failures
    versions = _rows(scratch, f"""select version_number, address, marital, is_current,
        valid_to is null from marts.dim_patients_history where patient_id = '{moved}'
        order by version_number""")
    assert [v[0] for v in versions] == [1, 2]
    assert versions[1][1:] == ("1 New Street", "D", True, True)
    assert versions[0][3:] == (False, False)
    (patients,) = _rows(scratch, "select count(*) from staging.stg_patients")[0]
    assert _rows(scratch, "select count(*), count(distinct patient_id) from "
                          "marts.dim_patients_history") == [(patients + 1, patients)]
    # A deployment whose layer tasks never took the snapshot: the mart still builds, each
    # patient's current row its only version.
    _rows(scratch, "drop table snapshots.snp_patients")
    result = run_dbt(scratch, "run", select="dim_patients_history")
    assert result.success, result.failures
    assert _rows(scratch, "select count(*), count(distinct patient_id), bool_and(is_current), "
                          "max(version_number) from marts.dim_patients_history") == [
        (patients, patients, True, 1)]


def test_unresolved_references_are_counted_and_warned_about(
    built: Settings, tmp_path: Path
) -> None:
    scratch = _scratch_copy(built, tmp_path / "scratch")
    # As if the run's practitionerInformation bundle had never been loaded (base_fhir_entries
    # is a view over RAW). Rewriting RAW's history takes a full build of the incremental
    # intermediate models, which otherwise read only what later loads add.
    _rows(scratch, "delete from raw.fhir_resources where resource_type = 'Practitioner'")
    result = run_dbt(scratch, "build", full_refresh=True,
                     select="int_reference_map int_resource_references dq_reference_integrity")
    assert result.success, result.failures  # a warning, not a failure
    assert sum(s.tests_warned for s in result.layers.values()) >= 1
    (encounters,) = _rows(scratch, "select count(*) from staging.stg_encounters")[0]
    assert _rows(scratch, """select unresolved, undefined, is_within_threshold
        from marts.dq_reference_integrity
        where dq_key = 'Encounter.participant[0].individual'""") == [(encounters, 0, False)]
    assert _rows(scratch, """select count(*) from marts.dq_reference_integrity
        where unresolved > 0 and resource_type = 'Patient'""") == [(0,)]


def _manifest(settings: Settings) -> dict:
    from fhirflow.transform import dbt_target_path

    return json.loads((dbt_target_path(settings) / "manifest.json").read_text())


def test_every_staging_model_feeds_a_mart(built: Settings) -> None:
    manifest = _manifest(built)
    children = manifest["child_map"]
    nodes = manifest["nodes"]

    def marts_below(uid: str, seen: set[str]) -> bool:
        for child in children.get(uid, []):
            if child in seen:
                continue
            seen.add(child)
            node = nodes.get(child, {})
            if node.get("resource_type") == "model" and "marts" in node.get("fqn", []):
                return True
            if marts_below(child, seen):
                return True
        return False

    staging = [uid for uid, n in nodes.items()
               if n["resource_type"] == "model" and n["name"].startswith("stg_")]
    assert len(staging) == 18
    assert [uid for uid in staging if not marts_below(uid, set())] == []


def test_marts_are_contracted_documented_and_exposed(built: Settings) -> None:
    manifest = _manifest(built)
    marts = {n["name"]: n for n in manifest["nodes"].values()
             if n["resource_type"] == "model" and "marts" in n["fqn"]}
    for name, node in marts.items():
        assert node["description"].strip(), name
        if name.startswith("fct_") or name.startswith("mart_"):
            assert "Grain:" in node["description"], name
        if name.startswith("dq_"):
            continue
        assert node["config"]["contract"]["enforced"], name
        assert all(c.get("data_type") and c.get("description") for c in node["columns"].values()
                   ), name
    exposed = {dep for e in manifest["exposures"].values() for dep in e["depends_on"]["nodes"]}
    assert {f"model.fhirflow.{m}" for m in ("mart_condition_prevalence",
            "mart_utilization_monthly", "dq_reference_integrity", "dq_completeness")} <= exposed
    assert "doc.fhirflow.__overview__" in manifest["docs"]


@pytest.mark.parametrize("layer", ["staging", "intermediate", "marts"])
def test_transform_selects_a_layer(built: Settings, layer: str) -> None:
    outcome = CliRunner().invoke(main, ["transform", "--layer", layer])
    assert outcome.exit_code == 0, outcome.output
    from fhirflow.transform import dbt_target_path, summarise_run_results

    summary = summarise_run_results(dbt_target_path(built))
    assert summary.layers[layer].models_ok > 0
    assert not {"staging", "intermediate", "marts"} - {layer} & {
        name for name, s in summary.layers.items() if s.models_ok}


def test_incremental_rerun_keeps_one_row_per_key(built: Settings) -> None:
    con = duckdb.connect(str(built.duckdb_path))
    try:
        before = con.execute("select count(*) from staging.stg_encounters").fetchone()[0]
        # Re-deliver every entry as if a new load brought the bundles again (base_fhir_entries
        # is a view over RAW.FHIR_RESOURCES, so the load time is changed there).
        con.execute("update raw.fhir_resources set loaded_at = loaded_at + interval 1 hour")
    finally:
        con.close()
    result = run_dbt(built, "build", select="tag:staging")
    assert result.success, result.failures
    con = duckdb.connect(str(built.duckdb_path))
    try:
        after = con.execute("select count(*) from staging.stg_encounters").fetchone()[0]
    finally:
        con.close()
    assert after == before


def test_docs_generate(built: Settings) -> None:
    result = run_dbt(built, "docs generate")
    target = result.target_path
    assert target is not None and (target / "catalog.json").exists()
    assert (target / "index.html").exists()
    docs = json.loads((target / "manifest.json").read_text())["docs"]
    overview = docs["doc.fhirflow.__overview__"]
    assert "mart_condition_prevalence" in overview["block_contents"]
