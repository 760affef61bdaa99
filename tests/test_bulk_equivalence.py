"""Issue 17: the shared Synthea run as a FHIR Bulk Data export (one NDJSON file per resource
type, `Type/id` references, written by the test helper as a server's $export would) builds
the same marts as its bundles: same rows, same values. Only load metadata differs."""

from __future__ import annotations

from pathlib import Path

import pytest

from _bulk import bundles_to_ndjson
from _helpers import clean_environ, duckdb_rows, run_cli

# Columns that say when and from which file a row was loaded, not what it holds.
LOAD_METADATA = ("_loaded_at", "_load_id", "_object_key")
# Columns that say when a build saw a row: the patient history's versions are the times of
# the snapshot runs (dbt_valid_from, and dbt_scd_id hashes it), which two builds never share.
BUILD_TIME = {"dim_patients_history": ("patient_version_id", "valid_from", "valid_to")}


def marts(warehouse: Path) -> dict[str, list[tuple]]:
    tables = [t for (t,) in duckdb_rows(
        warehouse, "select table_name from information_schema.tables "
                   "where table_schema = 'marts' order by 1")]
    out: dict[str, list[tuple]] = {}
    for table in tables:
        columns = [c for (c,) in duckdb_rows(
            warehouse, "select column_name from information_schema.columns "
                       f"where table_schema = 'marts' and table_name = '{table}' "
                       "order by ordinal_position")
                   if c not in LOAD_METADATA and c not in BUILD_TIME.get(table, ())]
        listed = ", ".join(f'"{c}"' for c in columns)
        out[table] = duckdb_rows(warehouse, f"select {listed} from marts.{table} "
                                            f"order by all")
    return out


@pytest.mark.slow
def test_bulk_ndjson_export_builds_the_same_marts_as_its_bundles(
    tmp_path: Path, synthea_fhir: Path
) -> None:
    bulk = tmp_path / "bulk"
    written = bundles_to_ndjson(sorted(synthea_fhir.glob("*.json")), bulk)
    assert {p.name for p in written} >= {"Patient.ndjson", "Encounter.ndjson",
                                         "Observation.ndjson", "Practitioner.ndjson"}
    text = (bulk / "Encounter.ndjson").read_text()
    assert "urn:uuid:" not in text and "?identifier=" not in text  # a server's spelling
    homes = {}
    for name, source in (("bundles", synthea_fhir), ("ndjson", bulk)):
        home = tmp_path / name
        run = run_cli("run", "--from-dir", str(source),
                      env=clean_environ(FHIRFLOW_HOME=str(home)))
        assert run.returncode == 0, run.stdout + run.stderr
        homes[name] = home / "warehouse.duckdb"
    from_bundles, from_ndjson = marts(homes["bundles"]), marts(homes["ndjson"])
    assert set(from_bundles) == set(from_ndjson) and from_bundles
    for table, rows in from_bundles.items():
        assert rows, table
        assert from_ndjson[table] == rows, table
    formats = duckdb_rows(homes["ndjson"], "select distinct file_format from raw.fhir_bundles")
    assert formats == [("ndjson",)]
