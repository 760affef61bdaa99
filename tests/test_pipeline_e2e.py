"""The whole slice end to end through the command line, on the real Synthea sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow


def fhirflow(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_"))}
    env["FHIRFLOW_HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-m", "fhirflow.cli", *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def status(home: Path) -> dict:
    return json.loads(fhirflow(home, "status", "--json").stdout)


def resource_counts(fhir_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in fhir_dir.glob("*.json"):
        for entry in json.loads(path.read_bytes()).get("entry", []):
            counts[entry["resource"]["resourceType"]] += 1
    return counts


@pytest.fixture(scope="module")
def loaded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SHARED_SAMPLE

    if not (SHARED_SAMPLE / "fhir").is_dir():
        pytest.skip(f"real Synthea sample not found at {SHARED_SAMPLE}")
    home = tmp_path_factory.mktemp("e2e") / "home"
    proc = fhirflow(home, "run", "--from-dir", str(SHARED_SAMPLE / "fhir"))
    assert "Stages" in proc.stdout and "transform" in proc.stdout
    return home


def test_run_from_dir_fills_raw_and_models(loaded_home: Path, synthea_fhir: Path) -> None:
    doc = status(loaded_home)
    assert doc["raw"]["bundles"] == 12
    assert doc["raw"]["errors"] == 0
    counts = resource_counts(synthea_fhir)
    assert doc["models"]["stg_patients"] == counts["Patient"] == 10
    assert doc["models"]["stg_encounters"] == counts["Encounter"]
    assert doc["models"]["dim_patients"] == 10
    assert doc["models"]["base_fhir_entries"] == sum(counts.values())
    assert doc["loads"] and doc["loads"][0]["status"] == "complete"


def test_every_encounter_has_its_patient(loaded_home: Path) -> None:
    con = duckdb.connect(str(loaded_home / "warehouse.duckdb"), read_only=True)
    orphans = con.execute(
        "select count(*) from staging.stg_encounters e "
        "left join marts.dim_patients p using (patient_id) where p.patient_id is null"
    ).fetchone()[0]
    per_patient = con.execute(
        "select sum(encounter_count), count(*) from marts.dim_patients"
    ).fetchone()
    total = con.execute("select count(*) from staging.stg_encounters").fetchone()[0]
    con.close()
    assert orphans == 0
    assert per_patient == (total, 10)


def test_second_run_over_the_same_input_adds_nothing(
    loaded_home: Path, synthea_fhir: Path
) -> None:
    before = status(loaded_home)
    fhirflow(loaded_home, "run", "--from-dir", str(synthea_fhir))
    after = status(loaded_home)
    assert after["raw"] == before["raw"]
    assert after["models"] == before["models"]
    assert [x["load_id"] for x in after["loads"]] == [x["load_id"] for x in before["loads"]]


def test_status_table_lists_loads_and_layers(loaded_home: Path) -> None:
    out = fhirflow(loaded_home, "status").stdout
    assert "Recent loads" in out and "stg_patients" in out and "complete" in out


def test_models_first_built_on_an_empty_raw_fill_later(
    tmp_path: Path, synthea_fhir: Path
) -> None:
    """Regression: incremental staging models built while RAW was empty stayed empty,
    because their lookback filter compared with max(_loaded_at) of an empty table (NULL)."""
    home = tmp_path / "home"
    fhirflow(home, "load")  # creates the RAW tables, loads nothing
    fhirflow(home, "transform")
    assert status(home)["models"]["stg_patients"] == 0
    fhirflow(home, "run", "--from-dir", str(synthea_fhir))
    doc = status(home)
    assert doc["models"]["stg_patients"] == 10
    assert doc["models"]["dim_patients"] == 10


def _patient_bundle(patient_id: str, race_code: str, race_text: str) -> str:
    patient = {
        "resourceType": "Patient", "id": patient_id, "gender": "female",
        "birthDate": "1990-01-01",
        "name": [{"use": "official", "family": "Doe1", "given": ["Jane2"]}],
        "extension": [
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
             "extension": [
                 {"url": "ombCategory", "valueCoding": {
                     "system": "urn:oid:2.16.840.1.113883.6.238", "code": race_code,
                     "display": race_text}},
                 {"url": "text", "valueString": race_text}]},
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
             "extension": [
                 {"url": "ombCategory", "valueCoding": {
                     "system": "urn:oid:2.16.840.1.113883.6.238", "code": "2186-5",
                     "display": "Not Hispanic or Latino"}},
                 {"url": "text", "valueString": "Not Hispanic or Latino"}]},
        ],
    }
    entry = {"fullUrl": f"urn:uuid:{patient_id}", "resource": patient,
             "request": {"method": "POST", "url": "Patient"}}
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})


def test_race_comes_from_the_omb_code_whatever_the_text(tmp_path: Path) -> None:
    """Regression: a race text other than the five we listed ("Other Race") failed the
    accepted_values test and with it the whole dbt build."""
    ids = {"2131-1": "00000000-0000-0000-0000-000000000001",
           "1002-5": "00000000-0000-0000-0000-000000000002"}
    src = tmp_path / "synthea"
    src.mkdir()
    (src / f"Jane2_Doe1_{ids['2131-1']}.json").write_text(
        _patient_bundle(ids["2131-1"], "2131-1", "Other Race"))
    (src / f"Ann3_Roe4_{ids['1002-5']}.json").write_text(
        _patient_bundle(ids["1002-5"], "1002-5", "American Indian or Alaska Native"))
    home = tmp_path / "home"
    fhirflow(home, "run", "--from-dir", str(src))
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    races = dict(con.execute("select patient_id, race from staging.stg_patients").fetchall())
    con.close()
    assert races == {ids["2131-1"]: "other", ids["1002-5"]: "native"}
