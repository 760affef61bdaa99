"""Bad entries are isolated where they are found (issue 10): at load time, per entry, with
file, entry index and reason in RAW.ENTRY_ERRORS, while the rest of the bundle loads; a
corrected file, re-landed and re-run, supersedes what its earlier version left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _helpers import clean_environ, duckdb_rows, land, run_cli, upload_and_load
from fhirflow.config import Settings, load_settings
from fhirflow.warehouse import entry_rules

PATIENT = {"resourceType": "Patient", "id": "pa", "gender": "male", "birthDate": "1980-02-03"}
ENCOUNTER = {"resourceType": "Encounter", "id": "ea", "class": {"code": "AMB"},
             "subject": {"reference": "urn:uuid:pa"},
             "period": {"start": "2020-01-01T10:00:00+00:00"}}
# entry -> the reason it is refused with
BAD_ENTRIES: list[tuple[dict[str, object], str]] = [
    ({"fullUrl": "urn:uuid:x", "resource": {"id": "x"}}, entry_rules.NO_RESOURCE_TYPE),
    ({"resource": {"resourceType": "Condition", "subject": {"reference": "urn:uuid:pa"}}},
     entry_rules.NO_ID),
    ({"request": {"method": "POST"}}, entry_rules.NO_RESOURCE_TYPE),
    ({"resource": ENCOUNTER | {"id": "r5", "class": [{"coding": [{"code": "AMB"}]}]}},
     entry_rules.R5_ENCOUNTER),
    ({"resource": {k: v for k, v in ENCOUNTER.items() if k != "period"}
      | {"id": "r5b", "actualPeriod": {"start": "2020-01-01"}}}, entry_rules.R5_ENCOUNTER),
    ({"resource": {k: v for k, v in ENCOUNTER.items() if k != "subject"}
      | {"id": "stu3", "patient": {"reference": "Patient/pa"}}}, entry_rules.OLD_VERSION),
    ({"resource": ENCOUNTER | {"id": "nostart", "period": {"start": "soon"}}},
     entry_rules.NO_START),
    ({"resource": {"resourceType": "Patient", "id": "pb", "gender": "female"}},
     entry_rules.NO_BIRTH_DATE),
    ({"resource": {"resourceType": "Immunization", "id": "im"}}, entry_rules.NO_PATIENT),
]


def bundle_with(entries: list[dict[str, object]]) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "transaction",
                       "entry": entries}).encode()


GOOD_ENTRIES = [{"fullUrl": "urn:uuid:pa", "resource": PATIENT},
                {"fullUrl": "urn:uuid:ea", "resource": ENCOUNTER}]


@pytest.fixture
def s(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Settings:
    return load_settings(home=tmp_path / "home")


def rows(settings: Settings, sql: str) -> list[tuple]:
    return duckdb_rows(settings.duckdb_path, sql)


def test_each_bad_entry_is_quarantined_with_index_and_reason(s: Settings) -> None:
    entries = GOOD_ENTRIES + [e for e, _ in BAD_ENTRIES]
    land(s.landing_dir, {"pa/mixed.json": bundle_with(entries)})
    res = upload_and_load(s)
    assert res.files_loaded == 1 and res.files_failed == 0
    assert (res.entries_loaded, res.entries_rejected) == (2, len(BAD_ENTRIES))
    assert rows(s, "select resource_id, entry_index from raw.fhir_resources order by 2") == [
        ("pa", 0), ("ea", 1)]
    errors = rows(s, "select entry_index, reason, source_name from raw.entry_errors order by 1")
    assert errors == [(i + 2, reason, "mixed.json") for i, (_, reason) in enumerate(BAD_ENTRIES)]
    assert rows(s, "select entries, entries_rejected from raw.fhir_bundles") == [
        (len(entries), len(BAD_ENTRIES))]


def test_synthea_bundles_break_no_rule(s: Settings, synthea_fhir: Path) -> None:
    for path in synthea_fhir.glob("*.json"):
        land(s.landing_dir, {f"_run/{path.name}": path.read_bytes()})
    res = upload_and_load(s)
    assert res.files_failed == 0 and res.entries_rejected == 0
    assert res.entries_loaded == rows(s, "select sum(entries) from raw.fhir_bundles")[0][0]


def test_a_corrected_file_supersedes_its_earlier_errors(s: Settings) -> None:
    land(s.landing_dir, {"pa/b.json": bundle_with(GOOD_ENTRIES + [e for e, _ in BAD_ENTRIES[:2]]),
                         "pa/c.json": b"{broken"})
    first = upload_and_load(s)
    assert first.entries_rejected == 2 and first.files_failed == 1
    # The user fixes both files in the landing folder and runs again.
    fixed = dict(BAD_ENTRIES[1][0]["resource"]) | {"id": "cond"}  # type: ignore[arg-type]
    land(s.landing_dir, {"pa/b.json": bundle_with(GOOD_ENTRIES + [{"resource": fixed}]),
                         "pa/c.json": bundle_with(GOOD_ENTRIES)})
    second = upload_and_load(s)
    assert second.files_loaded == 2 and second.entries_rejected == 0
    new_keys = {k for (k,) in rows(s, "select object_key from raw.fhir_bundles "
                                      f"where load_id = '{second.batches[0].load_id}'")}
    open_errors = rows(s, "select count(*) from raw.entry_errors where superseded_by is null")
    assert open_errors == [(0,)]
    assert {k for (k,) in rows(s, "select superseded_by from raw.entry_errors")} <= new_keys
    assert rows(s, "select count(*) from raw.load_errors where superseded_by is null") == [(0,)]
    assert rows(s, "select count(*) from raw.fhir_bundles where superseded_by is null") == [(2,)]
    # Nothing accepted is lost: the first version's rows stay; staging keeps the newest.
    assert rows(s, "select count(*) from raw.fhir_resources where resource_id = 'pa'") == [(3,)]


@pytest.mark.slow
def test_bad_entries_do_not_block_the_build_and_corrections_heal(
    tmp_path: Path, synthea_fhir: Path
) -> None:
    """The issue's case: entries without resourceType/id and R5/STU3 shapes used to fail
    base and mart tests and skip every model; now the build is green and the file is named."""
    src = tmp_path / "in"
    shutil.copytree(synthea_fhir, src)
    patient_file = next(p for p in sorted(src.glob("*.json")) if "Information" not in p.name)
    original = json.loads(patient_file.read_bytes())
    broken = json.loads(patient_file.read_bytes())
    broken["entry"] += [e for e, _ in BAD_ENTRIES]
    patient_file.write_text(json.dumps(broken))
    env = clean_environ(FHIRFLOW_HOME=str(tmp_path / "home"))
    run = run_cli("run", "--from-dir", str(src), env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(BAD_ENTRIES)} entries quarantined in RAW.ENTRY_ERRORS" in run.stdout
    warehouse = tmp_path / "home" / "warehouse.duckdb"
    named = duckdb_rows(warehouse, "select distinct source_name from raw.entry_errors")
    assert named == [(patient_file.name,)]
    # Corrected in the input folder and re-run: the quarantine is superseded, build green.
    patient_file.write_text(json.dumps(original))
    again = run_cli("run", "--from-dir", str(src), env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert duckdb_rows(warehouse, "select count(*) from raw.entry_errors "
                                  "where superseded_by is null") == [(0,)]
    encounters = duckdb_rows(warehouse, "select count(*), count(distinct encounter_id) "
                                        "from staging.stg_encounters")
    assert encounters[0][0] == encounters[0][1] > 0
