"""The SQL-on-FHIR view models are incremental (issue 11: a +1% run rebuilt every view in
full): a run reads only the resources loaded after the newest a view holds, replaces every
row of a resource delivered again (newest version wins, also where the new version yields
fewer rows or none), and ends with the rows a full rebuild makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _helpers import clean_environ, duckdb_rows, run_cli

PATIENT = "00000000-0000-0000-0000-00000000c0de"
BP, PULSE, LATE = (f"00000000-0000-0000-0000-0000000000{n}" for n in ("b1", "b2", "b3"))
LOINC = "http://loinc.org"


def coding(code: str, display: str) -> dict:
    return {"coding": [{"system": LOINC, "code": code, "display": display}]}


def quantity(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def observation(obs_id: str, code: dict, **value: object) -> dict:
    return {"resourceType": "Observation", "id": obs_id, "status": "final",
            "category": [{"coding": [{"code": "vital-signs"}]}], "code": code,
            "subject": {"reference": f"urn:uuid:{PATIENT}"},
            "effectiveDateTime": "2020-01-01T10:00:00+00:00",
            "issued": "2020-01-01T10:00:00.000+00:00", **value}


def blood_pressure(obs_id: str) -> dict:
    return observation(obs_id, coding("85354-9", "Blood pressure panel"), component=[
        {"code": coding("8480-6", "Systolic"), "valueQuantity": quantity(120, "mm[Hg]")},
        {"code": coding("8462-4", "Diastolic"), "valueQuantity": quantity(80, "mm[Hg]")}])


def bundle(*resources: dict) -> str:
    patient = {"resourceType": "Patient", "id": PATIENT, "gender": "female",
               "birthDate": "1990-01-01", "address": [{"city": "Boston", "state": "MA"}]}
    entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]}}
               for r in (patient, *resources)]
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def run(home: Path, *args: str) -> None:
    done = run_cli(*args, env=clean_environ(FHIRFLOW_HOME=str(home)))
    assert done.returncode == 0, done.stdout + done.stderr


VIEWS = {
    "observations": "select observation_id, component_index, code, value_number, "
                    "_resource_id from views.observations",
    "blood_pressure": "select observation_id, systolic, diastolic, _resource_id "
                      "from views.blood_pressure",
    "patient_demographics": "select patient_id, _resource_id from views.patient_demographics",
}


def view_rows(home: Path) -> dict[str, list[tuple]]:
    return {name: sorted(duckdb_rows(home / "warehouse.duckdb", sql), key=repr)
            for name, sql in VIEWS.items()}


@pytest.mark.slow
def test_views_merge_redelivered_resources_and_match_a_full_rebuild(tmp_path: Path) -> None:
    home, src = tmp_path / "home", tmp_path / "in"
    src.mkdir()
    name = f"Jane_Doe_{PATIENT}.json"
    pulse = observation(PULSE, coding("8867-4", "Heart rate"),
                        valueQuantity=quantity(70, "/min"))
    (src / name).write_text(bundle(blood_pressure(BP), pulse))
    run(home, "run", "--from-dir", str(src))
    first = view_rows(home)
    assert [r[:2] for r in first["observations"]] == [(BP, 0), (BP, 1), (PULSE, -1)]
    assert first["blood_pressure"] == [(BP, 120.0, 80.0, BP)]
    ((loaded_first,),) = duckdb_rows(home / "warehouse.duckdb",
                                  "select max(_loaded_at) from views.observations")

    # Re-delivered: the panel has lost a component and is no longer a blood pressure panel
    # (one row fewer in observations, none in blood_pressure); a late observation arrives.
    changed = observation(BP, coding("8480-6", "Systolic only"), component=[
        {"code": coding("8480-6", "Systolic"), "valueQuantity": quantity(125, "mm[Hg]")}])
    late = observation(LATE, coding("8867-4", "Heart rate"), valueQuantity=quantity(72, "/min"))
    (src / name).write_text(bundle(changed, pulse, late))
    run(home, "run", "--from-dir", str(src))
    incremental = view_rows(home)
    assert [r[:4] for r in incremental["observations"]] == [
        (BP, 0, "8480-6", 125.0), (PULSE, -1, "8867-4", 70.0), (LATE, -1, "8867-4", 72.0)]
    assert incremental["blood_pressure"] == []
    assert incremental["patient_demographics"] == [(PATIENT, PATIENT)]
    # The second load's rows (the file came again whole): each row carries its load time.
    times = duckdb_rows(home / "warehouse.duckdb", "select _loaded_at from views.observations")
    assert len(times) == 3 and all(t > loaded_first for (t,) in times)

    run(home, "transform", "--full-refresh", "--select", "tag:views")
    assert view_rows(home) == incremental


@pytest.mark.slow
def test_a_view_table_built_before_it_carried_load_times_is_rebuilt(tmp_path: Path) -> None:
    """A warehouse whose views were plain tables (before this change): the first
    incremental run replaces their rows instead of appending to them."""
    home, src = tmp_path / "home", tmp_path / "in"
    src.mkdir()
    (src / f"Jane_Doe_{PATIENT}.json").write_text(bundle(blood_pressure(BP)))
    run(home, "run", "--from-dir", str(src))
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:  # the views as the earlier project built them: no load metadata
        for view in ("observations", "blood_pressure"):
            con.execute(f"alter table views.{view} drop column _loaded_at")
            con.execute(f"alter table views.{view} drop column _resource_id")
    finally:
        con.close()
    run(home, "transform", "--select", "tag:views")
    rows = view_rows(home)
    assert [r[:2] for r in rows["observations"]] == [(BP, 0), (BP, 1)]
    assert rows["blood_pressure"] == [(BP, 120.0, 80.0, BP)]
