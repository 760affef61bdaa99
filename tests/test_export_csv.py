"""export-csv over the warehouse layer's connection: values in Synthea's formats, one-line
errors, and the export beside a read-write connection this process already holds."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from fhirflow.config import Settings
from fhirflow.errors import FhirflowError
from fhirflow.export_csv import TABLES, export_csv

PATIENT_COLUMNS = (
    "patient_id", "birth_date", "death_date", "ssn", "drivers", "passport", "prefix",
    "first_name", "middle_name", "last_name", "suffix", "maiden_name", "marital", "race",
    "ethnicity", "gender", "birthplace", "address", "city", "state", "zip", "lat", "lon",
)


def make_staging(path: Path) -> None:
    """A warehouse with only staging.stg_patients, two rows, as dbt would leave it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema staging")
        columns = ", ".join(
            f"{c} {'double' if c in ('lat', 'lon') else 'date' if 'date' in c else 'varchar'}"
            for c in PATIENT_COLUMNS)
        con.execute(f"create table staging.stg_patients ({columns})")
        con.execute(
            "insert into staging.stg_patients (patient_id, birth_date, first_name, last_name, "
            "address, lat, lon) values "
            "('b', date '1990-02-03', 'Ann', 'Lee', '1 Main St, Apt 2', 42.5, -71.25), "
            "('a', date '2001-12-31', 'Bo', 'Ng', null, null, null)")
    finally:
        con.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_export_writes_synthea_headers_and_formats(settings: Settings, tmp_path: Path) -> None:
    make_staging(settings.duckdb_path)
    result = export_csv(settings, tmp_path / "csv", ["patients"])
    assert result.rows == {"patients": 2}
    rows = read_csv(tmp_path / "csv" / "patients.csv")
    patients = next(t for t in TABLES if t.name == "patients")
    assert list(rows[0]) == patients.headers
    assert [r["Id"] for r in rows] == ["a", "b"]  # ordered by patient id
    ann = rows[1]
    assert (ann["BIRTHDATE"], ann["FIRST"], ann["DEATHDATE"]) == ("1990-02-03", "Ann", "")
    assert ann["ADDRESS"] == "1 Main St  Apt 2"  # Synthea's clean(): commas become spaces
    assert (ann["LAT"], ann["LON"]) == ("42.5", "-71.25")
    assert [p.name for p in (tmp_path / "csv").iterdir()] == ["patients.csv"]


def test_export_errors_are_one_line(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(FhirflowError, match="no warehouse at .*run `fhirflow run`"):
        export_csv(settings, tmp_path / "csv")
    make_staging(settings.duckdb_path)
    with pytest.raises(FhirflowError, match="cannot read encounters from the warehouse") as info:
        export_csv(settings, tmp_path / "csv", ["encounters"])
    assert "\n" not in str(info.value)
    assert not (tmp_path / "csv" / "encounters.csv").exists()
    with pytest.raises(FhirflowError, match="unknown table"):
        export_csv(settings, tmp_path / "csv", ["patient"])
