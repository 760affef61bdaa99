"""Untrusted input at landing: ids and file names never choose a path outside the landing
folder, links are refused, every file is landed or reported, no file can crash the stage."""

from __future__ import annotations

import json
import os
import random
import string
from pathlib import Path

import pytest

from _helpers import bundle, land, upload_local
from fhirflow.config import Settings
from fhirflow.landing import (
    EMPTY_BUNDLE,
    NOT_INSPECTED,
    UNRESOLVED,
    IngestResult,
    ingest_synthea_output,
    list_landed,
    patient_id_for,
    scan_landing,
)
from fhirflow.safepath import is_safe_component
from fhirflow.warehouse import files

# The classes of hostile ids: traversal, absolute paths, separators of both kinds, NUL and
# control characters, Windows device names and drive letters, dots, our own folder names,
# very long, non-ASCII (including look-alikes and bidi controls), and shell-ish text.
HOSTILE_IDS = [
    "../../../escaped", "..", ".", "...", "/etc/passwd", "/", "a/b/c", "a/../../b",
    "..\\..\\windows", "C:\\Users\\x", "C:", "\\\\server\\share", "nul", "CON", "com1.json",
    "lpt9", "aux.txt", "x\x00y", "\x00", "line\nbreak", "tab\there", "\x1b[31m", "_run",
    "_bulk", ".hidden", "-rf", "~root", "%2e%2e%2f", "a" * 300, "é" * 200, "ü/../x",
    "\u202eevil", "ｆｕｌｌ／ｗｉｄｔｈ", "\u2215etc", "trailing.", "trailing ", " ",
    "$(touch pwned)", "*", "?", "a:b", "\ud800", "x" * 64, "Zx-09.ok",
]


def _fuzzed_ids(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.printable + "/\\.\x00éü\u202e\u2215:"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
            for _ in range(n)]


def _patient_bundle(patient_id: str) -> bytes:
    doc = {"resourceType": "Bundle", "type": "transaction",
           "entry": [{"resource": {"resourceType": "Patient", "id": patient_id}}]}
    return json.dumps(doc).encode()


def _outside(tmp_path: Path, home: Path) -> set[str]:
    """Every path under tmp_path but outside home (and home itself)."""
    return {str(p) for p in tmp_path.rglob("*") if p != home and not p.is_relative_to(home)}


def test_no_id_or_name_places_a_file_outside_the_landing_folder(
    settings: Settings, tmp_path: Path
) -> None:
    ids = HOSTILE_IDS + _fuzzed_ids(200)
    source = tmp_path / "in"
    source.mkdir()
    for i, patient_id in enumerate(ids):
        # No uuid in the name, so landing takes the patient id from the bundle.
        (source / f"custom-{i:04d}.json").write_bytes(_patient_bundle(patient_id))
    outside_before = _outside(tmp_path, settings.home)

    result = ingest_synthea_output(source, settings.landing_dir)

    assert _outside(tmp_path, settings.home) == outside_before
    landed = list_landed(settings.landing_dir)
    assert result.copied == len(landed) == len(ids) and result.skipped == []
    real_root = settings.landing_dir.resolve()
    for file in landed:
        parts = file.relpath.split("/")
        assert len(parts) == 2 and all(is_safe_component(p) for p in parts), file.relpath
        assert file.path.resolve().parent.parent == real_root
    # Distinct ids never share a folder (nor overwrite each other's files).
    folders = {f.relpath.split("/")[0] for f in landed if not f.relpath.startswith("_run/")}
    ids_with_a_folder = {i for i in ids if i}
    assert len(folders) == len(ids_with_a_folder)
    # Landing again is a no-op: the same id always maps to the same folder.
    again = ingest_synthea_output(source, settings.landing_dir)
    assert (again.copied, again.unchanged) == (0, len(ids))
    # And everything landed is what the upload sends, under keys inside the store.
    store, up = upload_local(settings)
    assert up.uploaded == len(ids)
    for obj in store.list_after(settings.patients_prefix, None):
        assert (settings.lake_dir / obj.key).resolve().is_relative_to(settings.lake_dir.resolve())


HOSTILE_NAMES = [
    "UPPER.JSON", "Mixed.Json", "back\\slash.json", "new\nline.json", "con.json", "NUL.JSON",
    "é-ü-日本.json", "\u202enosj.json", "sp ace.json", "a" * 240 + ".json", "semi;colon.json",
    "quote'\".json", "x.json.json", "-dash.json", "trailing..json", "%2e%2e.json",
]


def test_hostile_file_names_land_under_safe_names_and_upload(
    settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for i, name in enumerate(HOSTILE_NAMES):
        (source / name).write_bytes(_patient_bundle(f"p{i}"))
    (source / os.fsdecode(b"latin1-\xe9.json")).write_bytes(_patient_bundle("p-latin1"))
    outside_before = _outside(tmp_path, settings.home)

    result = ingest_synthea_output(source, settings.landing_dir)

    assert _outside(tmp_path, settings.home) == outside_before
    assert result.skipped == [] and result.copied == len(HOSTILE_NAMES) + 1
    landed = list_landed(settings.landing_dir)
    assert len(landed) == result.copied
    for file in landed:
        name = file.relpath.split("/")[1]
        assert name.endswith(".json") and is_safe_component(name), file.relpath
        assert len(name.encode()) < 120
    store, up = upload_local(settings)
    assert up.uploaded == result.copied and up.skipped == []
    keys = [o.key for o in store.list_after(settings.patients_prefix, None)]
    assert len(keys) == result.copied and all(k.endswith(".json.gz") for k in keys)
    assert all(files.source_name(k).endswith(".json") for k in keys)
    assert all(k.encode("utf-8") for k in keys)  # no lone surrogates from odd bytes


def test_links_leading_outside_the_input_folder_are_refused_and_named(
    settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.json").write_bytes(bundle("stolen"))
    source = tmp_path / "in"
    land(source, {"real/inside.json": bundle("inside")})
    (source / "ok.json").write_bytes(bundle("ok"))
    (source / "to-file.json").symlink_to(secret / "private.json")
    (source / "to-dir.json").symlink_to(secret)
    (source / "rel.json").symlink_to("../secret/private.json")
    (source / "inside-link.json").symlink_to(source / "real" / "inside.json")
    (source / "broken.json").symlink_to(tmp_path / "nowhere.json")

    result = ingest_synthea_output(source, settings.landing_dir)

    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    for name in ("to-file.json", "to-dir.json", "rel.json"):
        assert "outside" in reasons[name] and "refused" in reasons[name], reasons
    assert reasons["broken.json"] == "broken symbolic link"
    landed_bytes = [f.path.read_bytes() for f in list_landed(settings.landing_dir)]
    assert bundle("stolen") not in landed_bytes
    assert sorted(landed_bytes) == sorted([bundle("ok"), bundle("inside")])


def test_a_fhir_subfolder_linked_elsewhere_is_refused(settings: Settings, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    land(elsewhere, {"x.json": bundle("x")})
    source = tmp_path / "run"
    source.mkdir()
    (source / "fhir").symlink_to(elsewhere)
    from fhirflow.errors import FhirflowError

    with pytest.raises(FhirflowError, match="fhir: symbolic link to .*outside"):
        ingest_synthea_output(source, settings.landing_dir)
    assert list_landed(settings.landing_dir) == []


def test_links_planted_in_the_landing_folder_are_neither_written_through_nor_uploaded(
    settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd.json").write_bytes(b'{"resourceType": "Bundle", "secret": 1}')
    landing = settings.landing_dir
    landing.mkdir(parents=True)
    (landing / "p1").mkdir()
    (landing / "p1" / "link.json").symlink_to(outside / "passwd.json")
    (landing / "evil").symlink_to(outside)  # a patient folder that is a link
    source = tmp_path / "in"
    source.mkdir()
    (source / "custom.json").write_bytes(_patient_bundle("evil"))

    result = ingest_synthea_output(source, landing)

    assert [p.name for p in outside.iterdir()] == ["passwd.json"]  # nothing written there
    assert "leads outside" in result.skipped[0].reason
    scan = scan_landing(landing)
    refused = {s.path: s.reason for s in scan.skipped}
    assert "symbolic link" in refused["p1/link.json"] and "symbolic link" in refused["evil"]
    _store, up = upload_local(settings)
    assert up.uploaded == 0 and {s.path for s in up.skipped} == {"p1/link.json", "evil"}


def test_every_file_is_landed_or_reported_with_its_reason(
    settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    land(source, {
        "UPPER.JSON": bundle("upper"),
        "Title.Json": bundle("title"),
        ".hidden.json": bundle("hidden"),
        "._appledouble.json": b"\x00\x05\x16\x07",
        "notes.txt": "not data",
        "Observation.ndjson": '{"resourceType": "Observation", "id": "o1"}\n',
        "Patient.NDJSON.GZ": b"\x1f\x8b\x08\x00",
        "folder.json/inner.json": bundle("nested"),
        "sub/x.json": bundle("sub"),
    })
    os.mkfifo(source / "pipe.json")

    result = ingest_synthea_output(source, settings.landing_dir)

    entries = {p.name for p in source.iterdir()}
    reported = {Path(s.path).name: s.reason for s in result.skipped}
    landed_names = {"UPPER.JSON", "Title.Json", "Observation.ndjson", "Patient.NDJSON.GZ"}
    assert result.copied == len(landed_names)
    assert set(reported) | landed_names == entries and not set(reported) & landed_names
    assert reported[".hidden.json"].startswith("hidden")
    assert reported["pipe.json"] == "a FIFO"
    assert reported["folder.json"] == "a folder"
    assert reported["notes.txt"].startswith("not a .json")
    relpaths = sorted(f.relpath for f in list_landed(settings.landing_dir))
    assert "_bulk/Observation.ndjson" in relpaths and "_bulk/Patient-" in "".join(relpaths)
    assert all(not r.endswith((".JSON", ".Json", ".GZ")) for r in relpaths)
    # What landed is what the upload sends; nothing is left unreported there either.
    _store, up = upload_local(settings)
    assert up.uploaded == len(relpaths) and up.skipped == []


def _empty_and_odd(source: Path) -> None:
    land(source, {
        "no-entries.json": '{"resourceType": "Bundle", "type": "collection"}',
        "empty-list.json": '{"resourceType": "Bundle", "type": "transaction", "entry": []}',
        "full.json": bundle("full"),
    })


def test_bundles_without_entries_are_warned_about_and_counted(
    settings: Settings, tmp_path: Path
) -> None:
    _empty_and_odd(tmp_path / "in")
    result = ingest_synthea_output(tmp_path / "in", settings.landing_dir)
    warned = {Path(w.path).name for w in result.warnings if w.kind == EMPTY_BUNDLE}
    assert warned == {"no-entries.json", "empty-list.json"}
    assert result.empty_bundles == 2 and "2 empty bundles" in result.note()
    assert result.as_dict()["empty_bundles"] == 2
    assert result.copied == 3  # warned about, still landed: the load decides what RAW takes


def _deep(levels: int) -> bytes:
    return b'{"resourceType": "Bundle", "x": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize("shape", ["array", "object", "unbalanced", "unterminated"])
def test_pathological_json_never_stops_the_files_after_it(
    settings: Settings, tmp_path: Path, shape: str
) -> None:
    body = {
        "array": _deep(100_000),
        "object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "unbalanced": b"[" * 500_000,
        "unterminated": b'{"resourceType": "Bundle", "x": "' + b'\\"[' * 200_000,
    }[shape]
    source = tmp_path / "in"
    land(source, {"aaa-deep.json": body, "zzz-after.json": bundle("after")})
    land(source, {"Ann_Lee_0b6e7c1a-1111-2222-3333-444455556666.json": body})

    result = ingest_synthea_output(source, settings.landing_dir)

    assert result.copied == 3 and result.skipped == []
    problems = {Path(w.path).name for w in result.warnings if w.kind == NOT_INSPECTED}
    assert "aaa-deep.json" in problems
    assert patient_id_for(source / "aaa-deep.json") is None
    assert {f.path.read_bytes() for f in list_landed(settings.landing_dir)} >= {bundle("after")}


def _referring(patient: str, org: str) -> bytes:
    doc = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": patient}},
        {"resource": {"resourceType": "Encounter", "id": f"e-{patient}", "serviceProvider": {
            "reference": f"Organization?identifier=https://github.com/synthetichealth/synthea|{org}"
        }}},
    ]}
    return json.dumps(doc).encode()


def _hospitals(*orgs: str) -> bytes:
    doc = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Organization", "id": o, "identifier": [
            {"system": "https://github.com/synthetichealth/synthea", "value": o}]}}
        for o in orgs
    ]}
    return json.dumps(doc).encode()


def test_patient_bundles_whose_run_level_bundles_are_missing_are_counted(
    settings: Settings, tmp_path: Path
) -> None:
    land(tmp_path / "run1", {"a.json": _referring("pa", "org-1"),
                             "b.json": _referring("pb", "org-2")})
    first = ingest_synthea_output(tmp_path / "run1", settings.landing_dir)
    assert first.unresolved_bundles == 2
    assert "2 with unresolved references" in first.note()
    assert "org-" in first.warnings[0].detail

    # A run that brings its hospital bundle: resolved, for this run and for later ones.
    land(tmp_path / "run2", {"c.json": _referring("pc", "org-1"),
                             "hospitalInformation1.json": _hospitals("org-1")})
    second = ingest_synthea_output(tmp_path / "run2", settings.landing_dir)
    assert second.unresolved_bundles == 0
    land(tmp_path / "run3", {"d.json": _referring("pd", "org-1"),
                             "e.json": _referring("pe", "org-9")})
    third = ingest_synthea_output(tmp_path / "run3", settings.landing_dir)
    assert [Path(w.path).name for w in third.warnings if w.kind == UNRESOLVED] == ["e.json"]


def test_the_real_synthea_sample_lands_without_warnings(
    settings: Settings, synthea_fhir: Path
) -> None:
    result = ingest_synthea_output(synthea_fhir, settings.landing_dir)
    assert result.skipped == [] and result.warnings == [], result.as_dict()
    assert isinstance(result, IngestResult) and result.copied == len(list(synthea_fhir.iterdir()))
