"""`fhirflow views run | compile | test`, through click's CliRunner on the `views` group."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from fhirflow.views.cli import views

REPO = Path(__file__).resolve().parents[1]
VIEWS = REPO / "dbt" / "views"
SUITE = REPO.parent / "shared" / "sql-on-fhir-v2"

VIEW = {
    "resourceType": "ViewDefinition", "name": "people", "resource": "Patient",
    "select": [{"column": [{"name": "id", "path": "getResourceKey()"},
                           {"name": "active", "path": "active"},
                           {"name": "given", "path": "name.given", "collection": True}]}],
}


def patient(pid: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"given": [pid.upper()]}], **more}


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(views, [str(a) for a in args])


@pytest.fixture
def view_file(tmp_path: Path) -> Path:
    path = tmp_path / "people.json"
    path.write_text(json.dumps(VIEW))
    return path


def test_run_on_a_synthea_output_folder(synthea_fhir: Path) -> None:
    result = invoke("run", VIEWS / "patient_demographics.json", "--input", synthea_fhir)
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 10 and len({r["patient_id"] for r in rows}) == 10
    names = [c["name"] for c in json.loads((VIEWS / "patient_demographics.json").read_text())
             ["select"][0]["column"]]
    assert all(list(r) == names for r in rows)  # keys in the view's column order
    assert "10 rows from 4892 resources in 12 files" in result.stderr


def test_run_reads_every_input_shape(tmp_path: Path, view_file: Path) -> None:
    inputs = tmp_path / "in"
    (inputs / "deeper").mkdir(parents=True)
    (inputs / "a.ndjson").write_text(
        json.dumps(patient("a")) + "\n\n" + json.dumps(patient("b")) + "\n{not json\n")
    (inputs / "c.json").write_text(json.dumps(patient("c", active=True)))
    (inputs / "array.json").write_text(json.dumps([patient("d"), patient("e")]))
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [{"resource": patient("f")}, {"resource": {"resourceType": "Observation",
                                                                  "id": "o", "status": "final",
                                                                  "code": {}}}]}
    (inputs / "deeper" / "bundle.json").write_text(json.dumps(bundle))
    (inputs / "broken.json").write_text('{"resourceType": "Patient", ')
    (inputs / "notes.txt").write_text("not an input")
    result = invoke("run", view_file, "--input", inputs)
    assert result.exit_code == 0, result.stderr
    rows = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert sorted(rows) == ["a", "b", "c", "d", "e", "f"]
    assert rows["c"] == {"id": "c", "active": True, "given": ["C"]}
    assert "skipped 1 files that are not JSON" in result.stderr


def test_run_takes_several_inputs(tmp_path: Path, view_file: Path) -> None:
    one, two = tmp_path / "1.json", tmp_path / "2.ndjson"
    one.write_text(json.dumps(patient("x")))
    two.write_text(json.dumps(patient("y")))
    result = invoke("run", view_file, "--input", one, "--input", two)
    assert sorted(json.loads(line)["id"] for line in result.stdout.splitlines()) == ["x", "y"]


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    path = tmp_path / "patients.ndjson"
    path.write_text("\n".join(json.dumps(p) for p in
                              [patient("a", active=True), patient("b", active=False),
                               patient("c")]))
    return path


def test_csv_on_stdout(view_file: Path, inputs: Path) -> None:
    result = invoke("run", view_file, "--input", inputs, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "id,active,given"
    assert sorted(lines[1:]) == ['a,true,"[""A""]"', 'b,false,"[""B""]"', 'c,,"[""C""]"']


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "parquet"])
def test_out_file(tmp_path: Path, view_file: Path, inputs: Path, fmt: str) -> None:
    out = tmp_path / f"rows.{fmt}"
    result = invoke("run", view_file, "--input", inputs, "--format", fmt, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    reader = {"ndjson": "read_json", "csv": "read_csv", "parquet": "read_parquet"}[fmt]
    rows = duckdb.sql(f"select id, active from {reader}('{out}') order by id").fetchall()
    assert rows == [("a", True), ("b", False), ("c", None)]


def test_parquet_needs_a_file(view_file: Path, inputs: Path) -> None:
    result = invoke("run", view_file, "--input", inputs, "--format", "parquet")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --format parquet writes a file: give it with --out FILE"


def test_compile_prints_each_dialect(view_file: Path) -> None:
    duck = invoke("compile", view_file)
    snow = invoke("compile", view_file, "--dialect", "snowflake")
    assert duck.exit_code == snow.exit_code == 0
    assert "json_extract_string(_resource, '$.id')" in duck.stdout
    assert "r.resource:id::varchar as id" in snow.stdout


@pytest.mark.parametrize(("content", "message"), [
    ({"resource": "Patient", "select": [{"column": [{"name": "x", "path": "name.("}]}]},
     "error: invalid view: select[0].column[0].path: `name.(`: expected a name at 6, found '('"),
    ({"resource": "Patient"}, "error: invalid view: select: required"),
    ("{broken", "error: invalid view: "),
])
@pytest.mark.parametrize("command", ["run", "compile"])
def test_an_invalid_view_exits_2_with_one_line(tmp_path: Path, inputs: Path, content: Any,
                                               message: str, command: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    extra = ["--input", str(inputs)] if command == "run" else []
    result = invoke(command, path, *extra)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)


def test_a_view_failing_at_run_time_is_one_line(tmp_path: Path, inputs: Path) -> None:
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"resource": "Patient", "select": [
        {"column": [{"name": "given", "path": "name.given | 'extra'"}]}]}))
    result = invoke("run", many, "--input", inputs)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "the view failed" in result.stderr and "column 'given'" in result.stderr


def test_missing_view_file(tmp_path: Path) -> None:
    result = invoke("compile", tmp_path / "nope.json")
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_suite_command_writes_the_report(tmp_path: Path) -> None:
    if not (SUITE / "tests").is_dir():
        pytest.skip("SQL on FHIR suite not found beside the repository")
    jsonschema = pytest.importorskip("jsonschema")
    report = tmp_path / "report.json"
    result = invoke("test", SUITE / "tests", "--dialect", "duckdb", "--report", report)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "duckdb: 134/134 tests passed"
    doc = json.loads(report.read_text())
    jsonschema.validate(doc, json.loads((SUITE / "test-report.schema.json").read_text()))
    assert sum(len(f["tests"]) for f in doc.values()) == 134


def test_suite_command_fails_on_a_failing_test(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "mine.json").write_text(json.dumps({
        "title": "mine", "resources": [patient("a")],
        "tests": [{"title": "right", "view": VIEW, "expectCount": 1},
                  {"title": "wrong", "view": VIEW, "expectCount": 2}]}))
    result = invoke("test", suite)
    assert result.exit_code == 1
    assert result.stdout.strip() == "duckdb: 1/2 tests passed"
    assert "FAIL mine.json: wrong: expected 2 rows, got 1" in result.stderr


def test_suite_command_on_snowflake(tmp_path: Path, clean_env: pytest.MonkeyPatch,
                                    fakesnow_server: Callable[..., Any]) -> None:
    """The Snowflake path end to end, on a suite file whose SQL fakesnow can run."""
    if not (SUITE / "tests").is_dir():
        pytest.skip("SQL on FHIR suite not found beside the repository")
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(SUITE / "tests" / "logic.json", suite)
    with fakesnow_server() as conn:
        for key, value in {"FHIRFLOW_HOME": str(tmp_path / "home"),
                           "FHIRFLOW_WAREHOUSE": "snowflake",
                           "SNOWFLAKE_ACCOUNT": conn["account"], "SNOWFLAKE_USER": conn["user"],
                           "SNOWFLAKE_PASSWORD": conn["password"], "SNOWFLAKE_HOST": conn["host"],
                           "SNOWFLAKE_PORT": str(conn["port"]),
                           "SNOWFLAKE_PROTOCOL": conn["protocol"],
                           "SNOWFLAKE_DATABASE": "views_cli"}.items():
            clean_env.setenv(key, value)
        report = tmp_path / "report.json"
        result = invoke("test", suite, "--dialect", "snowflake", "--report", report)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "snowflake: 3/3 tests passed"
    assert os.path.getsize(report) > 0


def test_run_over_a_warehouse_not_transformed_yet(tmp_path: Path, view_file: Path,
                                                 clean_env: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    duckdb.connect(str(home / "warehouse.duckdb")).close()
    clean_env.setenv("FHIRFLOW_HOME", str(home))
    result = invoke("run", view_file)
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: the warehouse has no staging.base_fhir_entries yet; "
                                     "run `fhirflow transform` (or give --input)")
    clean_env.setenv("FHIRFLOW_HOME", str(tmp_path / "nowhere"))
    result = invoke("run", view_file)
    assert result.exit_code == 1 and "no warehouse at" in result.stderr


def test_run_over_a_warehouse_held_open_for_writing(tmp_path: Path, view_file: Path,
                                                    clean_env: pytest.MonkeyPatch) -> None:
    """The warehouse layer opens the file, so every DuckDB error is its one line (the
    same-process writer's ConnectionException too, which used to escape as a traceback)."""
    home = tmp_path / "home"
    home.mkdir()
    writer = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        clean_env.setenv("FHIRFLOW_HOME", str(home))
        result = invoke("run", view_file)
    finally:
        writer.close()
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot open {home / 'warehouse.duckdb'}: "), line
