"""Incremental staging with the default lookback of 0 days (issue 11): a run reads only the
rows loaded after the newest row a model holds, and still merges late and re-delivered
resources newest-wins; the seed's 7-day lookback stays a setting that behaves the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _helpers import clean_environ, duckdb_rows, run_cli

PATIENT_ID = "00000000-0000-0000-0000-0000000000aa"
OTHER_ID = "00000000-0000-0000-0000-0000000000bb"


def patient_bundle(patient_id: str, city: str) -> str:
    patient = {"resourceType": "Patient", "id": patient_id, "gender": "female",
               "birthDate": "1990-01-01", "address": [{"city": city, "state": "MA"}]}
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{patient_id}", "resource": patient,
         "request": {"method": "POST", "url": "Patient"}}]})


def run(home: Path, src: Path, **env: str) -> None:
    done = run_cli("run", "--from-dir", str(src),
                   env=clean_environ(FHIRFLOW_HOME=str(home), **env))
    assert done.returncode == 0, done.stdout + done.stderr


def cities(home: Path) -> list[tuple]:
    return duckdb_rows(home / "warehouse.duckdb", "select patient_id, city from "
                       "staging.stg_patients order by 1")


@pytest.mark.slow
@pytest.mark.parametrize("lookback", ["0", "7"])
def test_redelivered_and_late_resources_merge_newest_wins(tmp_path: Path, lookback: str) -> None:
    home, src = tmp_path / "home", tmp_path / "in"
    src.mkdir()
    name = f"Jane_Doe_{PATIENT_ID}.json"
    (src / name).write_text(patient_bundle(PATIENT_ID, "Boston"))
    run(home, src, FHIRFLOW_STAGING_LOOKBACK_DAYS=lookback)
    assert cities(home) == [(PATIENT_ID, "Boston")]
    # Re-delivered with a change, plus a patient arriving late: one row each, newest wins.
    (src / name).write_text(patient_bundle(PATIENT_ID, "Salem"))
    (src / f"Ann_Roe_{OTHER_ID}.json").write_text(patient_bundle(OTHER_ID, "Lowell"))
    run(home, src, FHIRFLOW_STAGING_LOOKBACK_DAYS=lookback)
    assert cities(home) == [(PATIENT_ID, "Salem"), (OTHER_ID, "Lowell")]
    assert duckdb_rows(home / "warehouse.duckdb",
                       "select count(*) from marts.dim_patients") == [(2,)]
    # The first version delivered once more, under a new name (a re-upload): the newest
    # load wins, as it always did.
    (src / f"Jane_Doe_again_{PATIENT_ID}.json").write_text(patient_bundle(PATIENT_ID, "Boston"))
    run(home, src, FHIRFLOW_STAGING_LOOKBACK_DAYS=lookback)
    assert cities(home) == [(PATIENT_ID, "Boston"), (OTHER_ID, "Lowell")]
