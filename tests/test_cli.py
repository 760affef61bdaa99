"""The command line's conventions: --version, -h, global options anywhere, one-line errors,
whole tables, plurals, and dbt's selection flags passed through to dbt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tests._helpers import bundle
from tests._home import isolated_home

from fhirflow import pipeline
from fhirflow.cli import _stage_rows, main
from fhirflow.config import load_settings


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def error_lines(result: Result) -> list[str]:
    """stderr without the progress lines (`· doing x`)."""
    return [line for line in result.stderr.splitlines()
            if line.strip() and not line.startswith("·")]


@pytest.fixture
def home(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Path:
    clean_env.setenv("FHIRFLOW_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with one generated patient uploaded and loaded into RAW (no dbt yet)."""
    home = tmp_path_factory.mktemp("cli") / "home"
    with isolated_home(home):
        settings = load_settings()
        pipeline.generate(settings, pipeline.GenerateOptions(1, 3, 1))
        pipeline.upload(settings)
        pipeline.load(settings)
        yield home


def test_version() -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"fhirflow {version('fhirflow')}"


@pytest.mark.parametrize("command", [[], ["status"], ["transform"], ["generate"]])
def test_short_and_long_help(command: list[str]) -> None:
    short, long = cli(*command, "-h"), cli(*command, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.output == long.output
    assert "Usage: fhirflow" in short.output


def test_no_command_prints_the_help() -> None:
    result = cli()
    assert result.exit_code == 0
    assert "Usage: fhirflow" in result.output and "transform" in result.output


def test_global_options_after_the_command(loaded: Path, clean_env: pytest.MonkeyPatch) -> None:
    before = cli("--home", str(loaded), "status", "--json")
    after = cli("status", "--json", "--home", str(loaded))
    equals = cli("status", f"--home={loaded}", "--json")
    assert before.exit_code == after.exit_code == equals.exit_code == 0, after.output
    assert json.loads(after.stdout)["home"] == str(loaded)
    assert json.loads(before.stdout) == json.loads(after.stdout) == json.loads(equals.stdout)


def test_verbose_after_the_command_shows_the_trace(home: Path) -> None:
    quiet = cli("status", env={"FHIRFLOW_WAREHOUSE": "oracle"})
    loud = cli("status", "--verbose", env={"FHIRFLOW_WAREHOUSE": "oracle"})
    assert quiet.exit_code == loud.exit_code == 2
    assert "Traceback" not in quiet.stderr and len(error_lines(quiet)) == 1
    assert "Traceback" in loud.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["status", "--loads", "-3"], "Invalid value for '--loads'"),  # was a 34-line trace
        (["nosuch"], "No such command 'nosuch'"),
        (["status", "--nosuch"], "No such option '--nosuch'"),
        (["status", "--home"], "Option '--home' requires an argument"),
        (["load", "--warehouse", "oracle"], "Invalid value for '--warehouse'"),
        (["generate", "--patients", "0"], "Invalid value for '--patients'"),
        (["generate", "--engine", "synthea"], "--engine synthea needs --synthea-jar"),
        (["generate", "--state", "Atlantis", "-p", "1"], "unknown state 'Atlantis'"),
        (["run", "--from-dir", "/nonexistent/synthea"], "--from-dir /nonexistent/synthea"),
        (["transform", "--layer", "marts", "--select", "x"], "--layer is a shorthand"),
        (["transform", "--vars", "[1, 2]"], "--vars must be a mapping"),
        (["transform", "--vars", "{a: [}"], "--vars is not valid YAML"),
        (["status"], "no warehouse at"),
        (["export-csv"], "Missing option '--out'"),
    ],
)
def test_every_user_mistake_is_one_line(home: Path, args: list[str], needle: str) -> None:
    result = cli(*args)
    assert result.exit_code in (1, 2), result.output
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    assert "Traceback" not in result.output + result.stderr


def test_usage_mistakes_exit_2_and_name_the_help(home: Path) -> None:
    result = cli("status", "--loads", "-3")
    assert result.exit_code == 2
    assert "(see `fhirflow status -h`)" in result.stderr


def test_an_unexpected_failure_is_one_line_unless_verbose(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kw: object) -> None:
        raise KeyError("no such thing")

    monkeypatch.setattr(pipeline, "status", broken)
    quiet = cli("status")
    assert quiet.exit_code == 1
    assert error_lines(quiet) == ["error: unexpected KeyError: 'no such thing' "
                                  "(run with --verbose for the traceback)"]
    assert "Traceback" in cli("--verbose", "status").stderr


def test_error_text_is_printed_as_is_not_as_markup(tmp_path: Path,
                                                   clean_env: pytest.MonkeyPatch) -> None:
    """Regression: rich took `[bold]` in a message (a path, a key) for markup and dropped it."""
    odd = tmp_path / "a[bold]b"
    odd.write_text("a file, not a folder")
    result = cli("--home", str(odd), "status")
    assert result.exit_code == 2
    assert f"{odd} exists and is not a directory" in result.stderr


def test_generate_says_patient_and_has_no_rows_column(home: Path) -> None:
    result = cli("generate", "-p", "1", "--years-of-history", "1", "-s", "5")
    assert result.exit_code == 0, result.output
    assert "generating 1 patient (seed 5)" in result.stderr
    assert "1 patient into" in result.stdout and "1 patients" not in result.output
    header = next(line for line in result.stdout.splitlines() if "stage" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "stage", "files", "MB", "seconds", "note"]


def test_plural() -> None:
    assert pipeline.plural(1, "patient") == "1 patient"
    assert pipeline.plural(0, "file") == "0 files"
    assert pipeline.plural(2, "batch", "batches") == "2 batches"
    assert pipeline.plural(1_234, "file") == "1,234 files"


def test_tables_are_whole_when_piped_and_narrow(loaded: Path) -> None:
    """Regression: a piped or narrow `status` cut the watermark key with `…`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRFLOW_")}
    env.update(FHIRFLOW_HOME=str(loaded), COLUMNS="40")
    proc = subprocess.run([sys.executable, "-m", "fhirflow.cli", "status"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    watermark = json.loads(cli("--home", str(loaded), "status", "--json").stdout
                           )["loads"][0]["watermark"]
    assert len(watermark) > 40
    assert watermark in proc.stdout
    assert "…" not in proc.stdout


def test_transform_selection_that_matches_nothing_is_an_error(loaded: Path) -> None:
    result = cli("--home", str(loaded), "transform", "--select", "no_such_model")
    assert result.exit_code == 1
    assert error_lines(result)[-1] == ("error: nothing matched --select 'no_such_model': "
                                       "dbt selected no model, seed or test")
    assert "Rows" not in result.stdout and "┃ layer" not in result.stdout


def test_transform_passes_dbt_flags_through(loaded: Path) -> None:
    result = cli("--home", str(loaded), "transform", "-s", "+stg_patients",
                 "--exclude", "resource_type:test", "--vars", "{staging_lookback_days: 3, x: 1}",
                 "--target", "duckdb", "--full-refresh")
    assert result.exit_code == 0, result.output + result.stderr
    target = load_settings(home=loaded).state_dir / "dbt" / "target"
    run = json.loads((target / "run_results.json").read_text())
    args = run["args"]
    assert args["select"] == ["+stg_patients"]
    assert args["exclude"] == ["resource_type:test"]
    assert args["target"] == "duckdb"
    assert args["full_refresh"] is True
    assert {"staging_lookback_days": 3, "x": 1}.items() <= dict(args["vars"]).items()
    built = {r["unique_id"] for r in run["results"]}
    # --exclude resource_type:test leaves out data tests; dbt's unit tests are their own type
    assert built == {"model.fhirflow.base_fhir_entries", "model.fhirflow.stg_patients",
                     "seed.fhirflow.us_states",
                     "unit_test.fhirflow.stg_patients.stg_patients_maps_race_ethnicity_and_gender"}
    bad = cli("--home", str(loaded), "transform", "--target", "nosuch")
    assert bad.exit_code == 1 and len(error_lines(bad)) == 1, bad.stderr
    assert "nosuch" in error_lines(bad)[0]


def test_status_before_any_load_is_one_line(home: Path) -> None:
    """Regression: a warehouse file without RAW (nothing loaded yet) gave a Catalog Error
    traceback."""
    import duckdb

    home.mkdir(parents=True)
    duckdb.connect(str(home / "warehouse.duckdb")).close()
    for command in (["status"], ["transform"]):
        result = cli(*command)
        assert result.exit_code == 1
        assert error_lines(result) == [line for line in error_lines(result)
                                       if line.startswith("error: cannot read RAW in DuckDB")]
        assert len(error_lines(result)) == 1 and "run `fhirflow load` first" in result.stderr


def test_land_and_upload_say_what_they_skipped_and_warned(home: Path, tmp_path: Path) -> None:
    """The run summary's and `status --json`'s view of a --from-dir ingest: every skipped file and
    every warning is named, none is dropped silently (issue 10)."""
    source = tmp_path / "synthea"
    source.mkdir()
    (source / "Ann_1_p1.JSON").write_bytes(bundle("p1"))
    (source / ".hidden.json").write_bytes(bundle("p2"))
    (source / "notes.txt").write_text("not a bundle")
    (source / "empty.json").write_text('{"resourceType": "Bundle", "type": "transaction"}')
    settings = load_settings()
    landed = pipeline.land(settings, source)
    printed = _stage_rows(landed)
    assert "2 new" in printed[0][4] and "skipped" in printed[0][4], printed
    reasons = {Path(s.path).name: s.reason for s in landed.ingest.skipped}
    assert set(reasons) == {".hidden.json", "notes.txt"}, reasons
    assert landed.ingest.empty_bundles == 1
    pipeline.upload(settings)
    pipeline.load(settings)
    status = cli("status", "--json")
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)["landing"]
    assert {Path(s["path"]).name for s in report["skipped"]} == {".hidden.json", "notes.txt"}
    assert report["empty_bundles"] == 1
