"""Failures a user can meet are one line and a non-zero exit that name the file, setting or
service and what to do: a full disk at every stage that writes, an impossible home, a
warehouse file that cannot be opened for a reason other than a lock, dbt's real error."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from _helpers import bundle, clean_environ, duckdb_rows, free_port, land, run_cli
from fhirflow.config import load_settings
from fhirflow.errors import underlying_error


def _error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (root can mount one; elsewhere the test is skipped), unmounted after."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave: int) -> Path:
    """A ballast file that leaves about `leave` bytes free on the mount."""
    info = os.statvfs(mount)
    ballast = mount / "ballast"
    with ballast.open("wb") as fh:
        fh.truncate(0)
        fh.write(b"\0" * max(0, info.f_bavail * info.f_frsize - leave))
    return ballast


def _bundles(n: int, size: int, seed: int = 1, folders: bool = True) -> dict[str, bytes]:
    rng = random.Random(seed)  # incompressible-ish text, so sizes are what they say
    return {f"q{i:03d}{'/' if folders else '-'}b{i:03d}.json": bundle(f"q{i}", note="".join(
        rng.choice("abcdefghij") for _ in range(size))) for i in range(n)}


def test_disk_full_during_the_load_commit_is_one_line_and_exactly_once_after(
    small_disk: Path,
) -> None:
    home = small_disk / "home"
    env = clean_environ(FHIRFLOW_HOME=str(home))
    land(home / "output" / "bundles", {"first/a.json": bundle("first")})
    assert run_cli("upload", env=env).returncode == 0
    assert run_cli("load", env=env).returncode == 0
    land(home / "output" / "bundles", _bundles(40, 20_000))
    assert run_cli("upload", env=env).returncode == 0
    ballast = _fill(small_disk, 200_000)  # the batch's 800 KB cannot be committed

    proc = run_cli("load", env=env)

    assert proc.returncode != 0
    errors = _error_lines(proc)
    assert len(errors) == 1, proc.stderr
    assert "No space left on device" in errors[0] and "disk is full" in errors[0]
    assert "warehouse.duckdb" in errors[0]
    ballast.unlink()
    again = run_cli("load", env=env)
    assert again.returncode == 0, again.stderr
    assert duckdb_rows(home / "warehouse.duckdb", "select count(*), count(distinct "
                       "object_key) from raw.fhir_bundles") == [(41, 41)]


def test_disk_full_during_landing_is_one_line(small_disk: Path, tmp_path: Path) -> None:
    source = tmp_path / "in"
    land(source, _bundles(40, 20_000, folders=False))
    _fill(small_disk, 300_000)
    env = clean_environ(FHIRFLOW_HOME=str(small_disk / "home"))
    proc = run_cli("run", "--from-dir", str(source), env=env)
    assert proc.returncode != 0
    errors = _error_lines(proc)
    assert len(errors) == 1 and "No space left on device" in errors[0], proc.stderr
    assert "writing " in errors[0] and "disk is full" in errors[0]


def test_disk_full_during_upload_is_one_line_naming_the_file(small_disk: Path) -> None:
    home = small_disk / "home"
    land(home / "output" / "bundles", _bundles(60, 20_000))
    env = clean_environ(FHIRFLOW_HOME=str(home))
    ballast = _fill(small_disk, 600_000)  # the 1.2 MB of the landing folder do not fit
    proc = run_cli("upload", env=env)
    assert proc.returncode != 0
    errors = _error_lines(proc)
    assert len(errors) == 1, proc.stderr
    # The lake copy or the ledger's record of it, whichever meets the full disk first.
    assert "upload of q0" in errors[0] or "upload_ledger.sqlite" in errors[0]
    assert "disk is full" in errors[0]
    ballast.unlink()
    assert run_cli("upload", env=env).returncode == 0
    # The store keeps objects gzip-compressed.
    assert len(list((home / "lake").rglob("*.json.gz"))) == 60


@pytest.mark.parametrize("home", ["/proc/fhirflow-home", "/proc/self/fhirflow/home",
                                  "/sys/fhirflow-home"])
def test_a_home_that_cannot_be_created_is_one_line_naming_the_setting(home: str) -> None:
    proc = run_cli("status", env=clean_environ(FHIRFLOW_HOME=home), timeout=60)
    assert proc.returncode == 2
    errors = _error_lines(proc)
    assert len(errors) == 1 and errors[0].startswith("error: FHIRFLOW_HOME:"), proc.stderr
    assert "cannot be created" in errors[0]


def test_a_home_on_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    from fhirflow.errors import ConfigError

    with pytest.raises(ConfigError, match="FHIRFLOW_HOME"):
        load_settings(home=tmp_path / "f" / "home")


def _immutable(path: Path) -> Iterator[None]:
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_an_immutable_warehouse_file_is_not_blamed_on_another_writer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    land(home / "output" / "bundles", {"p1/b.json": bundle("p1")})
    env = clean_environ(FHIRFLOW_HOME=str(home))
    assert run_cli("upload", env=env).returncode == 0
    assert run_cli("load", env=env).returncode == 0
    land(home / "output" / "bundles", {"p2/b.json": bundle("p2")})
    assert run_cli("upload", env=env).returncode == 0
    for _ in _immutable(home / "warehouse.duckdb"):
        proc = run_cli("load", env=env)
    assert proc.returncode != 0
    errors = _error_lines(proc)
    assert len(errors) == 1 and "warehouse.duckdb" in errors[0], proc.stderr
    assert "another" not in errors[0] and "lsattr" in errors[0]


def test_a_warehouse_file_that_is_not_duckdb_is_named_as_such(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "warehouse.duckdb").write_text("not a database")
    proc = run_cli("load", env=clean_environ(FHIRFLOW_HOME=str(home)), timeout=60)
    errors = _error_lines(proc)
    assert proc.returncode != 0 and len(errors) == 1
    assert "not a valid DuckDB" in errors[0] and "another" not in errors[0]


def test_dbts_real_error_for_an_unreachable_snowflake(tmp_path: Path) -> None:
    """dbt says `Runtime Error`; the line must carry the driver's reason beneath it."""
    from dbt.cli.main import dbtRunner

    from fhirflow import transform
    from fhirflow.config import exported

    settings = load_settings(
        home=tmp_path / "home", warehouse="snowflake", snowflake_account="acct",
        snowflake_user="u", snowflake_password="p", snowflake_host="127.0.0.1",
        snowflake_port=free_port(), snowflake_protocol="http",
    )
    args = ["build", *transform.dbt_args(settings, "build")[1:], "--select", "stg_patients"]
    with exported(transform.dbt_environment(settings)):
        outcome = dbtRunner().invoke(["--quiet", "--no-use-colors", *args])
    assert outcome.exception is not None
    assert str(outcome.exception).splitlines()[0] == "Runtime Error"  # what users saw
    line = underlying_error(outcome.exception)
    assert "\n" not in line
    assert "Could not connect to Snowflake backend" in line, line
    assert "Connection refused" in line


def test_underlying_error_of_a_plain_exception_is_its_first_line() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("Runtime Error\n  could not list schemas") from inner
    except RuntimeError as exc:
        assert underlying_error(exc) == "could not list schemas (Connection refused)"
    assert underlying_error(ValueError("")) == "ValueError"
