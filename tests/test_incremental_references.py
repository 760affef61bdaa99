"""Incremental intermediate models (issue 11): int_reference_map and int_resource_references
read only what a load added, and a reference whose target arrives in a later load than its
referrer still resolves (the rows already built are resolved again), as a full build would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _helpers import duckdb_rows
from _home import isolated_home

PATIENT_ID = "00000000-0000-0000-0000-0000000000c1"
ENCOUNTER_ID = "00000000-0000-0000-0000-0000000000c2"
PRACTITIONER_ID = "00000000-0000-0000-0000-0000000000c3"
NPI = "9999999901"
PRACTITIONER_REF = f"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{NPI}"


def bundle(kind: str, *resources: dict) -> str:
    return json.dumps({"resourceType": "Bundle", "type": kind, "entry": [
        {"fullUrl": f"urn:uuid:{r['id']}", "resource": r,
         "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]})


def patient_bundle() -> str:
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "gender": "male",
               "birthDate": "1980-02-02"}
    encounter = {"resourceType": "Encounter", "id": ENCOUNTER_ID, "status": "finished",
                 "subject": {"reference": f"urn:uuid:{PATIENT_ID}"},
                 "participant": [{"individual": {"reference": PRACTITIONER_REF}}],
                 "period": {"start": "2020-01-01T10:00:00+00:00"}}
    return bundle("transaction", patient, encounter)


def practitioner_bundle() -> str:
    practitioner = {"resourceType": "Practitioner", "id": PRACTITIONER_ID,
                    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": NPI}]}
    return bundle("batch", practitioner)


def participant(warehouse: Path) -> list[tuple]:
    return duckdb_rows(warehouse, """select reference, target_resource_id, is_resolved
        from intermediate.int_resource_references
        where resource_type = 'Encounter' and reference_path = 'participant[0].individual'""")


def everything(warehouse: Path) -> list[tuple]:
    return duckdb_rows(warehouse, """select resource_reference_key, reference,
        target_resource_type, target_resource_id, is_defined, is_resolved
        from intermediate.int_resource_references order by 1""") + duckdb_rows(
        warehouse, "select reference, reference_form, resource_type, resource_id "
                   "from intermediate.int_reference_map order by 1")


@pytest.mark.slow
def test_a_target_loaded_after_its_referrer_resolves_incrementally(tmp_path: Path) -> None:
    from fhirflow import pipeline
    from fhirflow.config import load_settings
    from fhirflow.transform import run_dbt

    src = tmp_path / "in"
    src.mkdir()
    (src / f"Max_Roe_{PATIENT_ID}.json").write_text(patient_bundle())
    with isolated_home(tmp_path / "home"):
        settings = load_settings()

        def load_and_build(full_refresh: bool = False) -> None:
            pipeline.land(settings, src)
            pipeline.upload(settings)
            pipeline.load(settings)
            result = run_dbt(settings, "run", select="+int_resource_references",
                             full_refresh=full_refresh)
            assert result.success, result.failures

        load_and_build()
        warehouse = settings.duckdb_path
        assert participant(warehouse) == [(PRACTITIONER_REF, None, False)]
        # The run-level bundle arrives in a later load: the row built before resolves.
        (src / "practitionerInformation1.json").write_text(practitioner_bundle())
        load_and_build()
        assert participant(warehouse) == [(PRACTITIONER_REF, PRACTITIONER_ID, True)]
        # Only the Practitioner's load was read: the Encounter's row keeps its load time.
        loaded = duckdb_rows(warehouse, """select resource_type, count(distinct _loaded_at)
            from intermediate.int_resource_references group by 1 order by 1""")
        assert loaded == [("Encounter", 1)]
        # The same as a full build of the same RAW.
        incremental = everything(warehouse)
        result = run_dbt(settings, "run", select="int_reference_map int_resource_references",
                         full_refresh=True)
        assert result.success, result.failures
        assert everything(warehouse) == incremental
