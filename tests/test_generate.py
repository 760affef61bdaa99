"""The simulator: determinism, landing layout, a believable life, resolvable references."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from _generate_helpers import another_thread_running, file_bytes, references
from fhirflow.errors import ConfigError
from fhirflow.generate import DEFAULT_REFERENCE_DATE, generate_patients

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SYNTHEA = "https://github.com/synthetichealth/synthea"
NPI = "http://hl7.org/fhir/sid/us-npi"
OFFSET_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d$")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("landing")
    result = generate_patients(root, patients=40, seed=11, years_of_history=10)
    return root, result


def _patient_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*.json") if p.parent.name != "_run")


def _resources(root: Path) -> list[dict]:
    out = []
    for path in _patient_files(root):
        out += [e["resource"] for e in json.loads(path.read_bytes())["entry"]]
    return out


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    a = generate_patients(tmp_path / "a", patients=5, seed=3)
    b = generate_patients(tmp_path / "b", patients=5, seed=3)
    rel_a = sorted(p.relative_to(tmp_path / "a") for p in a.paths)
    rel_b = sorted(p.relative_to(tmp_path / "b") for p in b.paths)
    assert rel_a == rel_b
    for rel in rel_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_same_files_whatever_the_number_of_workers(tmp_path: Path) -> None:
    """40 patients are three chunks: one process, two or five give the same bytes."""
    runs = {workers: generate_patients(tmp_path / str(workers), patients=40, seed=21,
                                       workers=workers)
            for workers in (1, 2, 5)}
    assert [p.relative_to(tmp_path / "1") for p in runs[1].paths] == \
        [p.relative_to(tmp_path / "2") for p in runs[2].paths]
    one, two, five = (file_bytes(tmp_path / n, "**/*.json") for n in ("1", "2", "5"))
    assert len(one) == 42 and one == two == five
    assert runs[1].bytes == runs[2].bytes == runs[5].bytes


def test_workers_spawned_from_a_threaded_caller_write_the_same_files(tmp_path: Path) -> None:
    """A caller with threads running (an Airflow task) gets spawned workers, not forked ones."""
    from fhirflow.generate import run

    with another_thread_running():
        assert run._start_method() == "spawn"
        threaded = generate_patients(tmp_path / "threaded", patients=20, seed=8, workers=2)
    alone = generate_patients(tmp_path / "alone", patients=20, seed=8, workers=1)
    assert [p.read_bytes() for p in threaded.paths] == [p.read_bytes() for p in alone.paths]


def test_workers_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="workers"):
        generate_patients(tmp_path, patients=1, workers=0)


def test_unknown_module_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown module 'dentistry'"):
        generate_patients(tmp_path, patients=1, modules=["dentistry"])


def test_leaving_a_module_out_removes_its_care(tmp_path: Path) -> None:
    with_dental = _resources_of(generate_patients(tmp_path / "a", patients=30, seed=4).paths)
    without = _resources_of(generate_patients(tmp_path / "b", patients=30, seed=4,
                                              modules=["pregnancy", "contraceptives"]).paths)
    def codes(resources: list[dict]) -> set[str]:
        return {r["code"]["coding"][0]["code"] for r in resources
                if r["resourceType"] == "Procedure"}
    dental_care = "225362009"
    assert dental_care in codes(with_dental) and dental_care not in codes(without)
    assert not any(r["resourceType"] == "MedicationAdministration" and "fluoride" in
                   r["medicationCodeableConcept"]["text"] for r in without)


def _resources_of(paths: list[Path]) -> list[dict]:
    return [e["resource"] for p in paths if p.parent.name != "_run"
            for e in json.loads(p.read_bytes())["entry"]]


def test_default_reference_date_is_fixed_not_today(tmp_path: Path) -> None:
    a = generate_patients(tmp_path / "a", patients=2, seed=9)
    b = generate_patients(tmp_path / "b", patients=2, seed=9, reference_date=DEFAULT_REFERENCE_DATE)
    assert [p.read_bytes() for p in a.paths] == [p.read_bytes() for p in b.paths]
    c = generate_patients(tmp_path / "c", patients=2, seed=9, reference_date=dt.date(2020, 1, 1))
    assert [p.read_bytes() for p in a.paths] != [p.read_bytes() for p in c.paths]


def test_landing_layout_and_synthea_file_names(run: tuple[Path, object]) -> None:
    root, result = run
    assert result.patients == 40 and result.files == 42
    assert result.bytes == sum(p.stat().st_size for p in result.paths)
    assert sorted(p.name for p in (root / "_run").iterdir()) == [
        "hospitalInformation11.json", "practitionerInformation11.json"]
    for path in _patient_files(root):
        bundle = json.loads(path.read_bytes())
        patient = bundle["entry"][0]["resource"]
        assert patient["resourceType"] == "Patient"
        assert UUID.match(patient["id"]) and path.parent.name == patient["id"]
        official = patient["name"][0]
        assert path.name == "_".join([*official["given"], official["family"],
                                      patient["id"]]) + ".json"
        assert all(re.search(r"\d+$", n) for n in [*official["given"], official["family"]])
        assert bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            res = entry["resource"]
            assert entry["fullUrl"] == f"urn:uuid:{res['id']}"
            assert entry["request"] == {"method": "POST", "url": res["resourceType"]}


def test_run_level_bundles_are_conditional_creates(run: tuple[Path, object]) -> None:
    root, _ = run
    for name in ("hospitalInformation11.json", "practitionerInformation11.json"):
        bundle = json.loads((root / "_run" / name).read_bytes())
        assert bundle["type"] == "batch"
        for entry in bundle["entry"]:
            res = entry["resource"]
            system, value = res["identifier"][0]["system"], res["identifier"][0]["value"]
            assert entry["request"]["ifNoneExist"] == f"identifier={system}|{value}"
    types = Counter(e["resource"]["resourceType"]
                    for n in ("hospitalInformation11.json", "practitionerInformation11.json")
                    for e in json.loads((root / "_run" / n).read_bytes())["entry"])
    assert set(types) == {"Organization", "Location", "Practitioner", "PractitionerRole"}


def test_provider_ids_depend_on_state_not_seed(tmp_path: Path) -> None:
    def org_ids(seed: int, state: str) -> dict[str, str]:
        root = tmp_path / f"{state}-{seed}"
        generate_patients(root, patients=12, seed=seed, state=state)
        bundle = json.loads(next((root / "_run").glob("hospitalInformation*.json")).read_bytes())
        return {e["resource"]["name"]: e["resource"]["id"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Organization"}

    a, b = org_ids(1, "Massachusetts"), org_ids(2, "MA")
    shared = set(a) & set(b)
    assert shared and all(a[n] == b[n] for n in shared)
    assert not set(org_ids(1, "Texas").values()) & set(a.values())


def test_unknown_state_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown state"):
        generate_patients(tmp_path, patients=1, state="Atlantis")


def test_every_reference_resolves(run: tuple[Path, object]) -> None:
    root, _ = run
    known: set[str] = set()
    for path in (root / "_run").iterdir():
        for entry in json.loads(path.read_bytes())["entry"]:
            res = entry["resource"]
            for ident in res.get("identifier", []):
                known.add(f"{res['resourceType']}?identifier={ident['system']}|{ident['value']}")
    checked = 0
    for path in _patient_files(root):
        bundle = json.loads(path.read_bytes())
        full_urls = {e["fullUrl"] for e in bundle["entry"]}
        for entry in bundle["entry"]:
            contained = {"#" + c["id"] for c in entry["resource"].get("contained", [])}
            for ref in references(entry["resource"]):
                checked += 1
                assert ref in full_urls or ref in contained or ref in known, (path.name, ref)
    assert checked > 1000


def test_a_believable_population(run: tuple[Path, object]) -> None:
    root, _ = run
    resources = _resources(root)
    by_type: dict[str, list[dict]] = {}
    for res in resources:
        by_type.setdefault(res["resourceType"], []).append(res)
    patients = by_type["Patient"]
    assert {p["gender"] for p in patients} == {"male", "female"}
    ext_urls = {e["url"].rsplit("/", 1)[-1] for p in patients for e in p["extension"]}
    assert {"us-core-race", "us-core-ethnicity", "us-core-birthsex", "patient-birthPlace",
            "disability-adjusted-life-years", "quality-adjusted-life-years"} <= ext_urls
    id_types = {i["type"]["coding"][0]["code"]
                for p in patients for i in p["identifier"] if "type" in i}
    assert id_types == {"MR", "SS", "DL", "PPN"}
    assert all("geolocation" in p["address"][0]["extension"][0]["url"] for p in patients)
    # wellness vitals, the BP panel with its two components
    obs_codes = Counter(o["code"]["coding"][0]["code"] for o in by_type["Observation"])
    for code in ("8302-2", "29463-7", "39156-5", "85354-9", "8867-4", "9279-1", "72166-2"):
        assert obs_codes[code] > 0, code
    bp = next(o for o in by_type["Observation"] if o["code"]["coding"][0]["code"] == "85354-9")
    assert {c["code"]["coding"][0]["code"] for c in bp["component"]} == {"8480-6", "8462-4"}
    labs = [r for r in by_type["DiagnosticReport"]
            if r.get("category", [{}])[0].get("coding", [{}])[0].get("code") == "LAB"]
    assert labs and all(r["result"] for r in labs)
    assert {i["vaccineCode"]["coding"][0]["system"] for i in by_type["Immunization"]} == {"http://hl7.org/fhir/sid/cvx"}
    conditions = {c["code"]["coding"][0]["display"] for c in by_type["Condition"]}
    chronic = {"Essential hypertension (disorder)", "Hyperlipidemia (disorder)", "Prediabetes",
               "Asthma (disorder)", "Body mass index 30+ - obesity (finding)",
               "Diabetes mellitus type 2 (disorder)"}
    assert len(conditions & chronic) >= 3, conditions
    acute = {"Viral sinusitis (disorder)", "Acute viral pharyngitis (disorder)",
             "Acute bronchitis (disorder)",
             "Sprain of ankle", "Otitis media", "Streptococcal sore throat (disorder)"}
    assert len(conditions & acute) >= 3, conditions
    classes = {e["class"]["code"] for e in by_type["Encounter"]}
    assert {"AMB", "EMER"} <= classes
    rx = [m for m in by_type["MedicationRequest"] if "medicationCodeableConcept" in m]
    assert rx and all(m["medicationCodeableConcept"]["coding"][0]["system"].endswith("rxnorm")
                      for m in rx)
    for plan in by_type["CarePlan"]:
        assert plan["category"][0]["coding"][0]["code"] == "assess-plan"
        assert len(plan["category"]) == 2
    assert any("addresses" in p for p in by_type["CarePlan"])
    for kind in ("CareTeam", "Provenance", "AllergyIntolerance", "Procedure", "DocumentReference"):
        assert by_type.get(kind), kind
    assert len(by_type["Provenance"]) == len(patients)
    # timestamps carry the local offset like Synthea's
    assert all(OFFSET_DATETIME.match(e["period"]["start"]) for e in by_type["Encounter"])
    assert {e["period"]["start"][-6:] for e in by_type["Encounter"]} == {"-05:00", "-04:00"}


def test_one_claim_and_eob_per_encounter_and_prescription(run: tuple[Path, object]) -> None:
    root, _ = run
    payers: set[str] = set()
    for path in _patient_files(root):
        entries = [e["resource"] for e in json.loads(path.read_bytes())["entry"]]
        encounters = [r for r in entries if r["resourceType"] == "Encounter"]
        requests = [r for r in entries if r["resourceType"] == "MedicationRequest"]
        claims = [r for r in entries if r["resourceType"] == "Claim"]
        eobs = [r for r in entries if r["resourceType"] == "ExplanationOfBenefit"]
        assert len(claims) == len(eobs) == len(encounters) + len(requests)
        assert sum(1 for c in claims if "prescription" in c) == len(requests)
        claim_ids = {c["id"] for c in claims}
        for claim in claims:
            payers.add(claim["insurance"][0]["coverage"]["display"])
            assert claim["total"]["value"] >= 0 and claim["total"]["currency"] == "USD"
            if "prescription" not in claim:
                nets = sum(i["net"]["value"] for i in claim["item"] if "net" in i)
                assert claim["total"]["value"] >= round(nets, 2) - 0.01
        for eob in eobs:
            assert eob["identifier"][0]["value"] in claim_ids
            assert eob["claim"]["reference"] == f"urn:uuid:{eob['identifier'][0]['value']}"
            assert eob["total"][0]["category"]["coding"][0]["code"] == "submitted"
            assert eob["provider"]["reference"].startswith(f"Practitioner?identifier={NPI}|")
            assert {c["resourceType"] for c in eob["contained"]} == {"ServiceRequest", "Coverage"}
    assert "Medicare" in payers and len(payers) >= 3


def test_some_people_die(tmp_path: Path) -> None:
    generate_patients(tmp_path, patients=120, seed=5, years_of_history=5)
    deceased = []
    for path in _patient_files(tmp_path):
        with path.open("rb") as fh:  # one entry per line: the Patient is on line 2
            fh.readline()
            patient = json.loads(fh.readline().decode().rstrip().rstrip(","))["resource"]
        if "deceasedDateTime" in patient:
            deceased.append(patient)
    assert deceased, "nobody died in 120 lives"
    assert all(OFFSET_DATETIME.match(p["deceasedDateTime"]) for p in deceased)


def test_progress_is_reported_per_patient(tmp_path: Path) -> None:
    ticks: list[int] = []
    generate_patients(tmp_path, patients=3, seed=1, progress=ticks.append)
    assert ticks == [1, 1, 1]


def test_every_event_kind_has_a_handler() -> None:
    from fhirflow.generate.events import ORDER
    from fhirflow.generate.simulate import all_handlers

    assert set(ORDER) == set(all_handlers())
