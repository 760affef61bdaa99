"""Settings from the environment, and the one-line error for bad values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from _helpers import clean_environ, run_cli
from fhirflow.config import load_settings
from fhirflow.errors import ConfigError


def test_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.chdir(tmp_path)
    s = load_settings()
    assert s.home == (tmp_path / "data").absolute()
    assert (s.warehouse, s.store) == ("duckdb", "local")
    assert (s.aws_s3_bucket, s.aws_s3_prefix) == ("synthea-fhir-data-dump", "raw")
    assert s.load_batch_size == 100
    assert s.landing_ttl_hours == 24
    assert s.staging_lookback_days == 0
    assert s.landing_dir == s.home / "output" / "bundles"
    assert s.duckdb_path == s.home / "warehouse.duckdb"
    assert s.patients_prefix == "raw/patients/"


def test_environment_is_read(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("FHIRFLOW_HOME", str(tmp_path))
    clean_env.setenv("FHIRFLOW_LOAD_BATCH_SIZE", "7")
    clean_env.setenv("AWS_S3_PREFIX", "/landing/")
    clean_env.setenv("SNOWFLAKE_PASSWORD", "hunter2")
    s = load_settings()
    assert s.home == tmp_path and s.load_batch_size == 7 and s.aws_s3_prefix == "landing"
    assert "hunter2" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("FHIRFLOW_WAREHOUSE", "oracle", "FHIRFLOW_WAREHOUSE"),
        ("FHIRFLOW_STORE", "ftp", "FHIRFLOW_STORE"),
        ("FHIRFLOW_LOAD_BATCH_SIZE", "0", "FHIRFLOW_LOAD_BATCH_SIZE"),
        ("FHIRFLOW_LOAD_BATCH_SIZE", "many", "FHIRFLOW_LOAD_BATCH_SIZE"),
        ("FHIRFLOW_LANDING_TTL_HOURS", "-1", "FHIRFLOW_LANDING_TTL_HOURS"),
        ("FHIRFLOW_DUCKDB_MEMORY_LIMIT", "lots", "FHIRFLOW_DUCKDB_MEMORY_LIMIT"),
    ],
)
def test_bad_value_names_the_variable(
    clean_env: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected) and "\n" not in message


def test_home_that_is_a_file_is_refused(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a_file = tmp_path / "home"
    a_file.write_text("not a folder")
    clean_env.setenv("FHIRFLOW_HOME", str(a_file))
    with pytest.raises(ConfigError, match="FHIRFLOW_HOME: .* not a directory"):
        load_settings()


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=clean_environ(**env), timeout=120)


@pytest.mark.parametrize(
    "env",
    [
        {"FHIRFLOW_WAREHOUSE": "oracle"},
        {"FHIRFLOW_LOAD_BATCH_SIZE": "0"},
        {"FHIRFLOW_HOME": "/etc/hostname"},
    ],
)
def test_cli_bad_configuration_is_one_line_and_exit_2(env: dict[str, str]) -> None:
    proc = _cli(["status"], env)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and next(iter(env)) in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_verbose_shows_the_trace(tmp_path: Path) -> None:
    proc = _cli(["--verbose", "status"], {"FHIRFLOW_WAREHOUSE": "oracle"})
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_duckdb_memory_limit_reaches_the_warehouse(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fhirflow.warehouse import open_warehouse

    clean_env.setenv("FHIRFLOW_DUCKDB_MEMORY_LIMIT", "512MB")
    warehouse = open_warehouse(load_settings(home=tmp_path))
    try:
        (limit,) = warehouse.con.execute("select current_setting('memory_limit')").fetchone()
    finally:
        warehouse.close()
    assert limit.replace(" ", "") in {"512.0MB", "488.2MiB", "512MB", "488.2MB"}, limit
