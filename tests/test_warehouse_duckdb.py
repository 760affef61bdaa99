"""The DuckDB warehouse's connection for writing: the file attached with the load's row group
size, spilling beside the file (not into the working folder), and readable as usual after."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from fhirflow.errors import FhirflowError
from fhirflow.warehouse.duckdb import ROW_GROUP_SIZE, DuckDBWarehouse


def test_writes_spill_beside_the_file_and_plain_readers_open_it(tmp_path: Path) -> None:
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
        wh.con.execute("create table raw.probe as select range as i "
                       f"from range({ROW_GROUP_SIZE * 2 + 1})")
    finally:
        wh.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        groups = con.execute("select count(distinct row_group_id) "
                             "from pragma_storage_info('raw.probe')").fetchone()[0]
        assert groups == 3
        assert con.execute("select count(*) from raw.fhir_bundles").fetchone() == (0,)
    finally:
        con.close()


def test_a_file_that_is_no_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    path.write_bytes(b"not a duckdb file at all" * 100)
    with pytest.raises(FhirflowError, match=f"cannot open {path}"):
        DuckDBWarehouse(path)
