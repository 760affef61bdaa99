"""Issue 17 item 5: the simulator writes its output as a FHIR Bulk Data export too.

`--format ndjson` (`ndjson.gz`): one file per resource type under `<landing>/_bulk/`, one
resource per line, references spelled `Type/id`. Checked against the test helper that turns
the same run's bundles into an export (tests/_bulk.py, written independently from the
bundles' fullUrl and ifNoneExist), for byte-identical output at any worker count, for a
failed run leaving nothing behind, and end to end: the export builds the marts its bundles
build.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from _bulk import bundles_to_ndjson
from _generate_helpers import another_thread_running, file_bytes, references
from _helpers import clean_environ, duckdb_rows, run_cli
from fhirflow import pipeline
from fhirflow.atomic import is_temp_name, remove_stale_temps
from fhirflow.config import DagSettings, load_settings
from fhirflow.errors import ConfigError
from fhirflow.generate import generate_patients
from fhirflow.landing import scan_landing
from fhirflow.orchestration.tasks import generate_for_run
from test_bulk_equivalence import LOAD_METADATA

RELATIVE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
# Columns that say when dbt built a row (the snapshot's version id hashes its build time).
BUILD_TIME = ("patient_version_id", "valid_from", "valid_to")


def marts(warehouse: Path) -> dict[str, list[tuple]]:
    """Every mart's rows, sorted, without load metadata and build times."""
    out: dict[str, list[tuple]] = {}
    for (table,) in duckdb_rows(warehouse, "select table_name from information_schema.tables "
                                           "where table_schema = 'marts' order by 1"):
        columns = [c for (c,) in duckdb_rows(
            warehouse, "select column_name from information_schema.columns where "
                       f"table_schema = 'marts' and table_name = '{table}' "
                       "order by ordinal_position") if c not in LOAD_METADATA + BUILD_TIME]
        listed = ", ".join(f'"{c}"' for c in columns)
        out[table] = duckdb_rows(warehouse, f"select {listed} from marts.{table} order by all")
    return out


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    assert data.endswith(b"\n")
    return data.decode("utf-8").splitlines()


def _by_type(folder: Path) -> dict[str, list[dict]]:
    """Resource type -> its resources, from every NDJSON file of an export folder."""
    found: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(folder.iterdir()):
        for line in _lines(path):
            resource = json.loads(line)
            found[resource["resourceType"]].append(resource)
    return dict(found)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ndjson")
    generate_patients(root, patients=20, seed=5, years_of_history=5, output_format="ndjson",
                      workers=1)
    return root


def test_one_file_per_resource_type_named_for_the_run(export: Path) -> None:
    assert sorted(p.name for p in export.iterdir()) == ["_bulk"]
    names = sorted(p.name for p in (export / "_bulk").iterdir())
    assert {"Patient.5.ndjson", "Observation.5.ndjson", "Encounter.5.ndjson",
            "Organization.5.ndjson", "Practitioner.5.ndjson"} <= set(names)
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+\.5\.ndjson", name) for name in names), names
    by_type = _by_type(export / "_bulk")
    for path in (export / "_bulk").iterdir():
        kinds = {json.loads(line)["resourceType"] for line in _lines(path)}
        assert kinds == {path.name.split(".")[0]}, path.name  # one type per file
    assert len(by_type["Patient"]) == 20
    # The landing listing takes every file (no part or temp file is left over).
    assert sorted(f.relpath for f in scan_landing(export).files) == \
        [f"_bulk/{name}" for name in names]


def test_every_reference_is_relative_and_resolves(export: Path) -> None:
    by_type = _by_type(export / "_bulk")
    present = {f"{kind}/{r['id']}" for kind, resources in by_type.items() for r in resources}
    checked = 0
    for resources in by_type.values():
        for resource in resources:
            contained = {"#" + c["id"] for c in resource.get("contained", [])}
            for ref in references(resource):
                checked += 1
                assert ref in contained or (RELATIVE.match(ref) and ref in present), ref
    assert checked > 1000
    text = "".join(p.read_text() for p in (export / "_bulk").iterdir())
    assert "urn:uuid:" not in text.replace('"value":"urn:uuid:', "")  # identifiers may be URNs
    assert "?identifier=" not in text


def test_same_resources_as_the_bundles_exported_by_the_test_helper(
    export: Path, tmp_path: Path
) -> None:
    """The same run as bundles, turned into an export by tests/_bulk.py: the same resources,
    with the same references, type by type."""
    bundles = tmp_path / "bundles"
    generate_patients(bundles, patients=20, seed=5, years_of_history=5, workers=1)
    bundles_to_ndjson(sorted(bundles.rglob("*.json")), tmp_path / "helper")
    ours, theirs = _by_type(export / "_bulk"), _by_type(tmp_path / "helper")
    assert set(ours) == set(theirs)
    for kind in theirs:
        def key(resource: dict) -> str:
            return resource["id"]

        assert sorted(ours[kind], key=key) == sorted(theirs[kind], key=key), kind


def test_byte_identical_whatever_the_number_of_workers(tmp_path: Path) -> None:
    """40 patients are three chunks; gzip output decompresses to the plain output."""
    runs = {}
    for fmt in ("ndjson", "ndjson.gz"):
        for workers in (1, 2):
            root = tmp_path / f"{fmt}-{workers}"
            made = generate_patients(root, patients=40, seed=21, years_of_history=3,
                                     workers=workers, output_format=fmt)
            written = file_bytes(root / "_bulk")
            assert made.files == len(written) and made.bytes == sum(
                len(b) for b in written.values())
            runs[fmt, workers] = written
    assert runs["ndjson", 1] == runs["ndjson", 2]
    assert runs["ndjson.gz", 1] == runs["ndjson.gz", 2]
    plain = runs["ndjson", 1]
    assert {name + ".gz" for name in plain} == set(runs["ndjson.gz", 1])
    for name, data in plain.items():
        assert gzip.decompress(runs["ndjson.gz", 1][name + ".gz"]) == data, name


def test_spawned_workers_write_the_same_export(tmp_path: Path) -> None:
    """A caller with threads running (an Airflow task) gets spawned workers: the run's
    target pickles to them and the files are the same."""
    with another_thread_running():
        generate_patients(tmp_path / "spawned", patients=20, seed=8, years_of_history=2,
                          workers=2, output_format="ndjson")
    generate_patients(tmp_path / "alone", patients=20, seed=8, years_of_history=2, workers=1,
                      output_format="ndjson")
    spawned = file_bytes(tmp_path / "spawned" / "_bulk")
    alone = file_bytes(tmp_path / "alone" / "_bulk")
    assert spawned == alone and spawned


def test_a_failed_run_leaves_no_part_and_no_file(tmp_path: Path) -> None:
    seen = []

    def stop_after_twenty(done: int) -> None:
        seen.append(done)
        if len(seen) == 20:  # the second chunk: the first chunk's parts are on disk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_patients(tmp_path, patients=40, seed=2, years_of_history=2, workers=1,
                          output_format="ndjson", progress=stop_after_twenty)
    assert list((tmp_path / "_bulk").iterdir()) == []


def test_parts_of_a_killed_run_are_temp_files_the_clean_up_removes(tmp_path: Path) -> None:
    """What a SIGKILL leaves: parts named as atomic.py's temp files of the final file."""
    from fhirflow.generate.ndjson import BulkTarget, ChunkParts, conditional_targets

    target = BulkTarget(tmp_path, 3, False, 2**22 + 12345, "00c0ffee")  # no such pid
    parts = ChunkParts(target, 16, "Massachusetts")
    parts.write({"resourceType": "Bundle", "entry": [
        {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "Patient", "id": "a"}}]})
    left = list(parts.close().values())
    assert left and all(is_temp_name(p.name) for p in left)
    assert scan_landing(tmp_path).files == [] and scan_landing(tmp_path).skipped == []
    assert conditional_targets("Massachusetts")  # the network's conditional spellings
    assert remove_stale_temps(tmp_path, now=time.time() + 600) == left


def test_the_24_hour_clean_up_removes_uploaded_ndjson(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    made = pipeline.generate(settings, pipeline.GenerateOptions(
        3, 4, 2, workers=1, output_format="ndjson.gz"))
    assert made.files > 5
    pipeline.upload(settings)
    old = time.time() - 25 * 3600
    for path in (settings.landing_dir / "_bulk").iterdir():
        os.utime(path, (old, old))
    cleaned = pipeline.clean(settings)
    assert len(cleaned.removed) == made.files
    assert not (settings.landing_dir / "_bulk").exists()


def test_format_is_the_simulators_and_named_in_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--format"):
        generate_patients(tmp_path, patients=1, output_format="csv")  # type: ignore[arg-type]
    settings = load_settings(home=tmp_path / "home", synthea_jar=tmp_path / "synthea.jar")
    with pytest.raises(ConfigError, match="--format ndjson"):
        pipeline.generate(settings, pipeline.GenerateOptions(1, engine="synthea",
                                                             output_format="ndjson"))
    env = clean_environ(FHIRFLOW_HOME=str(tmp_path / "cli"))
    done = run_cli("run", "--from-dir", str(tmp_path), "--format", "ndjson", env=env)
    assert done.returncode != 0 and "--format" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_cli_generate_writes_ndjson(tmp_path: Path) -> None:
    env = clean_environ(FHIRFLOW_HOME=str(tmp_path))
    done = run_cli("generate", "--patients", "2", "--seed", "9", "--years-of-history", "2",
                   "--format", "ndjson.gz", "--workers", "1", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    names = {p.name for p in (tmp_path / "output" / "bundles" / "_bulk").iterdir()}
    assert "Patient.9.ndjson.gz" in names and "Claim.9.ndjson.gz" in names


def test_the_generation_dag_task_reads_the_format_setting(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("FHIRFLOW_", "SYNTHEA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FHIRFLOW_GENERATION_FORMAT", "ndjson")
    monkeypatch.setenv("FHIRFLOW_GENERATION_PATIENTS", "1")
    monkeypatch.setenv("FHIRFLOW_GENERATION_YEARS", "1")
    settings = load_settings(home=tmp_path)
    summary = generate_for_run(settings, DagSettings(), dag_id="generation", run_id="r1")
    names = [p.name for p in (settings.landing_dir / "_bulk").iterdir()]
    assert f"Patient.{summary['seed']}.ndjson" in names
    assert not [p for p in settings.landing_dir.iterdir() if p.name != "_bulk"]


@pytest.mark.slow
def test_ndjson_output_builds_the_same_marts_as_the_bundles(tmp_path: Path) -> None:
    """`fhirflow run` over the same patients as bundles and as an export: equal marts
    (data-quality ones included: no reference the bundles resolve goes unresolved)."""
    homes = {}
    for fmt in ("bundle", "ndjson"):
        home = tmp_path / fmt
        done = run_cli("run", "--patients", "6", "--seed", "13", "--years-of-history", "3",
                       "--workers", "1", "--format", fmt,
                       env=clean_environ(FHIRFLOW_HOME=str(home)), timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
        homes[fmt] = home / "warehouse.duckdb"
    formats = duckdb_rows(homes["ndjson"], "select distinct file_format from raw.fhir_bundles")
    assert formats == [("ndjson",)]
    from_bundles, from_ndjson = marts(homes["bundle"]), marts(homes["ndjson"])
    assert set(from_bundles) == set(from_ndjson)
    for table, rows in from_bundles.items():
        assert from_ndjson[table] == rows, table
    # Six patients may have no allergy (fct_allergies); every other mart holds rows.
    assert sum(1 for rows in from_bundles.values() if not rows) <= 2, from_bundles.keys()
    unresolved = "select sum(unresolved), sum(resolved) from marts.dq_reference_integrity"
    resolved = duckdb_rows(homes["ndjson"], unresolved)
    assert resolved == duckdb_rows(homes["bundle"], unresolved)
    assert resolved[0][0] == 0 and resolved[0][1] > 1000
