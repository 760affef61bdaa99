"""Landing folder: Synthea-output ingestion and the TTL clean-up."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from _helpers import bundle, clean_environ, land, run_cli
from fhirflow.config import Settings
from fhirflow.landing import clean_landing, ingest_synthea_output, list_landed, patient_id_for
from fhirflow.store import LocalStore
from fhirflow.upload import is_uploaded, upload_landing

PATIENT = "Ann12_Lee34_0b6e7c1a-1111-2222-3333-444455556666.json"


@pytest.fixture
def synthea_dir(tmp_path: Path) -> Path:
    src = tmp_path / "synthea" / "fhir"
    land(src, {
        PATIENT: bundle("0b6e7c1a-1111-2222-3333-444455556666"),
        "custom-name.json": bundle("p-2"),
        "hospitalInformation1700000000000.json": '{"resourceType":"Bundle"}',
        "practitionerInformation1700000000000.json": '{"resourceType":"Bundle"}',
    })
    return src.parent


def test_patient_id_from_name_or_content(synthea_dir: Path) -> None:
    assert patient_id_for(synthea_dir / "fhir" / PATIENT) == "0b6e7c1a-1111-2222-3333-444455556666"
    assert patient_id_for(synthea_dir / "fhir" / "custom-name.json") == "p-2"


def test_ingest_places_files_in_the_landing_layout(synthea_dir: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    result = ingest_synthea_output(synthea_dir, landing)  # the folder above fhir/ works too
    assert (result.copied, result.unchanged, len(result.patients)) == (4, 0, 2)
    assert sorted(f.relpath for f in list_landed(landing)) == [
        f"0b6e7c1a-1111-2222-3333-444455556666/{PATIENT}",
        "_run/hospitalInformation1700000000000.json",
        "_run/practitionerInformation1700000000000.json",
        "p-2/custom-name.json",
    ]
    again = ingest_synthea_output(synthea_dir / "fhir", landing)
    assert (again.copied, again.unchanged) == (0, 4)


def test_ingest_of_a_folder_without_bundles_is_an_error(tmp_path: Path) -> None:
    from fhirflow.errors import FhirflowError

    with pytest.raises(FhirflowError, match="no .json bundles"):
        ingest_synthea_output(tmp_path, tmp_path / "landing")


def _age(path: Path, hours: float) -> None:
    old = time.time() - hours * 3600
    os.utime(path, (old, old))


def test_clean_removes_only_old_uploaded_files(settings: Settings, synthea_dir: Path) -> None:
    ingest_synthea_output(synthea_dir, settings.landing_dir)
    store = LocalStore(settings.lake_dir)
    landed = {f.relpath: f.path for f in list_landed(settings.landing_dir)}
    never_uploaded = settings.landing_dir / "zz-late" / "late.json"
    never_uploaded.parent.mkdir()
    upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                   state_dir=settings.state_dir)
    never_uploaded.write_bytes(bundle("zz-late"))  # lands after the upload ran
    young = "_run/hospitalInformation1700000000000.json"
    for relpath, path in landed.items():
        if relpath != young:
            _age(path, 30)
    _age(never_uploaded, 1000)

    result = clean_landing(settings.landing_dir, 24, is_uploaded(settings.state_dir, store))

    assert sorted(result.removed) == sorted(r for r in landed if r != young)
    kept = dict(result.kept)
    assert kept == {young: "younger than the TTL", "zz-late/late.json": "not uploaded yet"}
    assert never_uploaded.exists() and (settings.landing_dir / young).exists()
    assert not (settings.landing_dir / "p-2").exists()  # emptied patient folders go too


def test_clean_keeps_a_file_whose_content_changed_after_upload(
    settings: Settings, synthea_dir: Path
) -> None:
    ingest_synthea_output(synthea_dir, settings.landing_dir)
    store = LocalStore(settings.lake_dir)
    upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                   state_dir=settings.state_dir)
    changed = settings.landing_dir / "p-2" / "custom-name.json"
    changed.write_bytes(bundle("p-2") + b" ")
    for f in list_landed(settings.landing_dir):
        _age(f.path, 48)
    result = clean_landing(settings.landing_dir, 24, is_uploaded(settings.state_dir, store))
    assert dict(result.kept) == {"p-2/custom-name.json": "not uploaded yet"}


def test_clean_keeps_files_the_store_lost(settings: Settings, synthea_dir: Path) -> None:
    ingest_synthea_output(synthea_dir, settings.landing_dir)
    store = LocalStore(settings.lake_dir)
    upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                   state_dir=settings.state_dir)
    shutil.rmtree(settings.lake_dir)
    for f in list_landed(settings.landing_dir):
        _age(f.path, 48)
    result = clean_landing(settings.landing_dir, 24, is_uploaded(settings.state_dir, store))
    assert result.removed == [] and len(result.kept) == 4


def test_clean_command_reports_what_it_did(settings: Settings, synthea_dir: Path) -> None:
    ingest_synthea_output(synthea_dir, settings.landing_dir)
    for f in list_landed(settings.landing_dir):
        _age(f.path, 48)
    proc = run_cli("--home", str(settings.home), "clean", env=clean_environ(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "kept: not uploaded yet" in proc.stdout and "removed" in proc.stdout
    assert len(list_landed(settings.landing_dir)) == 4


def test_landing_copies_are_fsynced_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash after an un-fsynced rename can leave an empty or truncated file under the final
    # name, which upload would then send. Every copy into landing is flushed to disk first.
    from fhirflow.atomic import copy_atomic

    source = tmp_path / "a.json"
    source.write_bytes(b'{"resourceType": "Bundle"}')
    target = tmp_path / "landing" / "p" / "a.json"
    synced: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        assert str(src) in synced, "renamed before its data was fsynced"
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    copy_atomic(source, target)
    assert target.read_bytes() == source.read_bytes()
    assert [p for p in target.parent.iterdir() if p.name.startswith(".")] == []
