"""The DuckDB warehouse's connection for writing (capped, spilling beside the file, not into
the working folder), and the migration of a RAW of the whole-bundle layout."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from fhirflow.errors import FhirflowError
from fhirflow.warehouse.duckdb import DuckDBWarehouse


def test_writes_spill_beside_the_file_within_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "it's here" / "warehouse.duckdb"
    wh = DuckDBWarehouse(path, memory_limit="200MB")
    try:
        wh.create_tables()
        settings = wh.con.execute(
            "select current_setting('temp_directory'), current_setting('memory_limit'), "
            "current_database()").fetchone()
        assert settings[0] == str(path) + ".tmp"
        assert settings[1] == "190.7 MiB"  # 200 MB, as DuckDB prints it
        assert settings[2] == "warehouse"
    finally:
        wh.close()


def test_a_file_that_is_no_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(b"not a duckdb file at all" * 100)
    with pytest.raises(FhirflowError, match=f"cannot open {path}"):
        DuckDBWarehouse(path)


def test_a_raw_of_the_whole_bundle_layout_is_flattened_once(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    doc = ('{"resourceType": "Bundle", "type": "transaction", "entry": ['
           '{"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p", '
           '"gender": "male", "birthDate": "1980-01-01"}}, '
           '{"resource": {"resourceType": "Patient", "id": "q", "gender": "male"}}]}')
    con = duckdb.connect(str(path))
    con.execute("create schema raw")
    con.execute("create table raw.fhir_bundles (object_key varchar primary key, "
                "bundle_type varchar, file_size bigint not null, content_hash varchar not null, "
                "load_id varchar not null, loaded_at timestamp not null, bundle json)")
    con.execute("insert into raw.fhir_bundles values "
                "('raw/patients/20260101T000000000000Z-000001-a.json', 'transaction', 10, 'h', "
                "'L1', '2026-01-01', ?)", [doc])
    con.close()
    for _ in range(2):  # the second open finds nothing left to migrate
        wh = DuckDBWarehouse(path)
        try:
            wh.create_tables()
        finally:
            wh.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("select resource_id, full_url, load_id from raw.fhir_resources"
                           ).fetchall() == [("p", "urn:uuid:p", "L1")]
        assert con.execute("select entry_index, reason from raw.entry_errors").fetchall() == [
            (1, "Patient.birthDate missing or not a date")]
        assert con.execute("select entries, entries_rejected, source_name from raw.fhir_bundles"
                           ).fetchall() == [(2, 1, "a.json")]
        columns = {r[0] for r in con.execute("describe raw.fhir_bundles").fetchall()}
        assert "bundle" not in columns
    finally:
        con.close()
