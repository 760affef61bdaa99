"""`fhirflow doctor` on the embedded defaults, on S3 (moto's server) + Snowflake (a fakesnow
server), and on deployments that are wrong in the ways it must name. The command is run
through click's CliRunner (cli.py registers it); every store and warehouse is real."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from _helpers import KEY_PASSPHRASE, OWN_PREFIXES, free_port, moto_s3, write_private_key
from fhirflow.config import Settings
from fhirflow.doctor.cli import doctor

CHECKS = ["settings", "store", "warehouse", "privileges", "stage", "dbt debug", "round trip"]


def run(env: dict[str, str], *args: str) -> Result:
    """`doctor <args>` with exactly these FHIRFLOW_/AWS_/SNOWFLAKE_ variables (click's
    CliRunner removes the ones given as None for the call)."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith(OWN_PREFIXES)}
    return CliRunner().invoke(doctor, list(args), env={**cleared, **env},
                              catch_exceptions=False)


def lines(result: Result) -> dict[str, str]:
    """check name -> its line, for the lines that are checks."""
    found = {}
    for line in result.output.splitlines():
        for name in CHECKS:
            if line[6:].startswith(name + " ") or line[6:] == name:
                found[name] = line
    return found


def test_passes_on_the_embedded_defaults(tmp_path: Path) -> None:
    result = run({"FHIRFLOW_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert list(found) == CHECKS  # one line per check, in order
    assert all(line.startswith(("PASS", "SKIP")) for line in found.values()), result.output
    assert found["stage"].startswith("SKIP")
    assert "2 patients" in found["round trip"] and "models" in found["round trip"]
    assert result.output.rstrip().endswith("all checks passed")
    # Nothing of the round trip is left in the deployment's own warehouse or landing.
    home = tmp_path / "home"
    assert not (home / "output").exists()
    assert not any((home / "lake").rglob("*.json"))


def test_json_output_for_scripts(tmp_path: Path) -> None:
    result = run({"FHIRFLOW_HOME": str(tmp_path / "home")}, "--json", "--no-round-trip")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["ok"] is True
    assert [c["name"] for c in doc["checks"]] == CHECKS
    assert doc["checks"][-1] == {"name": "round trip", "status": "skip",
                                 "detail": "--no-round-trip", "fix": ""}
    assert doc["settings"]["FHIRFLOW_HOME"] == str(tmp_path / "home")
    assert doc["settings"]["SNOWFLAKE_PASSWORD"] is None


@pytest.fixture
def deployment(tmp_path: Path, fakesnow_server: Callable[..., Any]
               ) -> Iterator[dict[str, str]]:
    """S3 on moto + Snowflake on fakesnow, as environment variables (a key pair sign-in)."""
    key = write_private_key(tmp_path / "rsa_key.p8", KEY_PASSPHRASE)
    with moto_s3("fhirflow-doctor") as s3, fakesnow_server() as conn:
        yield {
            "FHIRFLOW_HOME": str(tmp_path / "home"), "FHIRFLOW_STORE": "s3",
            "FHIRFLOW_WAREHOUSE": "snowflake", **s3.env,
            "SNOWFLAKE_ACCOUNT": conn["account"], "SNOWFLAKE_USER": "SVC_FHIRFLOW",
            "SNOWFLAKE_PRIVATE_KEY_PATH": str(key),
            "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": KEY_PASSPHRASE,
            "SNOWFLAKE_HOST": conn["host"], "SNOWFLAKE_PORT": str(conn["port"]),
            "SNOWFLAKE_PROTOCOL": conn["protocol"],
            "SNOWFLAKE_DATABASE": f"SYNTHEA_{uuid.uuid4().hex[:8].upper()}",
            "FHIRFLOW_DBT_THREADS": "1",
        }


def _schemas(env: dict[str, str]) -> set[str]:
    import snowflake.connector

    con = snowflake.connector.connect(
        account=env["SNOWFLAKE_ACCOUNT"], user="u", password="p", host=env["SNOWFLAKE_HOST"],
        port=int(env["SNOWFLAKE_PORT"]), protocol=env["SNOWFLAKE_PROTOCOL"],
        database=env["SNOWFLAKE_DATABASE"])
    try:
        rows = con.cursor().execute("select schema_name from information_schema.schemata")
        return {str(r[0]).upper() for r in rows.fetchall()}
    finally:
        con.close()


def test_passes_on_s3_and_snowflake(deployment: dict[str, str]) -> None:
    env = {**deployment, "FHIRFLOW_SNOWFLAKE_LOAD_MODE": "insert"}
    result = run(env)
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert list(found) == CHECKS
    assert "(key pair (" in found["settings"] and "load mode insert" in found["settings"]
    assert found["store"].startswith("PASS") and "s3://fhirflow-doctor-" in found["store"]
    assert found["stage"].startswith("SKIP  stage       mode insert")
    assert "scratch schemas dropped" in found["round trip"], found["round trip"]
    assert not {s for s in _schemas(env) if s.startswith("FHIRFLOW_DOCTOR_")}
    assert deployment["SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"] not in result.output


def test_copy_mode_on_fakesnow_fails_at_the_load_and_still_cleans_up(
    deployment: dict[str, str],
) -> None:
    """fakesnow cannot COPY from S3: the round trip must fail there, in one line that names
    the step, and drop its scratch schemas all the same."""
    result = run(deployment)
    assert result.exit_code == 1
    found = lines(result)
    assert found["settings"].startswith("PASS") and "load mode copy" in found["settings"]
    assert found["stage"].startswith("PASS") and "not created yet" in found["stage"]
    assert found["round trip"].startswith("FAIL  round trip  load: Snowflake rejected `copy")
    assert "to fix: see the privileges and stage checks" in found["round trip"]
    assert not {s for s in _schemas(deployment) if s.startswith("FHIRFLOW_DOCTOR_")}
    assert deployment["AWS_SECRET_ACCESS_KEY"] + "'" not in result.output


def test_a_stage_on_another_prefix_fails(deployment: dict[str, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from fhirflow.config import load_settings
    from fhirflow.warehouse.snowflake import SnowflakeWarehouse

    # An earlier load on another prefix made the stage.
    for name, value in {**deployment, "AWS_S3_PREFIX": "old-prefix"}.items():
        monkeypatch.setenv(name, value)
    wh = SnowflakeWarehouse.from_settings(load_settings())
    wh.create_tables()
    wh.close()
    monkeypatch.undo()
    result = run(deployment, "--no-round-trip")
    assert result.exit_code == 1
    stage = lines(result)["stage"]
    # moto's endpoint is not AWS's: the stage is s3compat://, with the endpoint beside it.
    assert stage.startswith("FAIL  stage       RAW.FHIR_BUNDLES_STAGE points at s3compat://")
    assert "/old-prefix/, the settings at s3compat://" in stage
    assert stage.endswith("to fix: run `fhirflow load`: it re-creates the stage from the "
                          "settings")


def test_an_unreachable_store_is_named_with_what_to_do(tmp_path: Path) -> None:
    env = {"FHIRFLOW_HOME": str(tmp_path / "home"), "FHIRFLOW_STORE": "s3",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_S3_BUCKET": "nowhere",
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "very-secret-value",
           "FHIRFLOW_STORE_ATTEMPTS": "1"}
    result = run(env, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["store"]["status"] == "fail"
    assert "cannot reach http://127.0.0.1:" in checks["store"]["detail"]
    assert "AWS_ENDPOINT_URL" in checks["store"]["fix"]
    assert checks["round trip"] == {"name": "round trip", "status": "skip",
                                    "detail": "an earlier check failed", "fix": ""}
    assert doc["settings"]["AWS_SECRET_ACCESS_KEY"] == "set"
    assert "very-secret-value" not in result.output


def test_a_wrong_key_passphrase_fails_the_settings_and_skips_the_rest(
    deployment: dict[str, str],
) -> None:
    env = {**deployment, "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "not-the-passphrase"}
    result = run(env)
    assert result.exit_code == 1
    found = lines(result)
    assert found["settings"].startswith("FAIL  settings    SNOWFLAKE_PRIVATE_KEY_PATH: ")
    assert "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE is wrong" in found["settings"]
    assert all(found[n].startswith("SKIP") for n in CHECKS[1:])
    assert "not-the-passphrase" not in result.output


def test_a_bad_setting_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    result = run({"FHIRFLOW_HOME": str(tmp_path / "home"), "SNOWFLAKE_SCHEMA": "raw; drop"})
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: SNOWFLAKE_SCHEMA: use letters, digits, _ and $ only, starting with a letter "
        "or _ (got 'raw; drop')"]


def test_under_the_fhirflow_command_it_takes_the_global_options(tmp_path: Path) -> None:
    """How cli.py registers it (`main.add_command(doctor)`): --home reaches its settings."""
    from fhirflow.cli import main

    registered = "doctor" in main.commands
    main.add_command(doctor)
    try:
        cleared: dict[str, str | None] = {k: None for k in os.environ
                                          if k.startswith(OWN_PREFIXES)}
        result = CliRunner().invoke(main, ["doctor", "--json", "--no-round-trip", "--home",
                                           str(tmp_path / "elsewhere")], env=cleared)
    finally:
        if not registered:
            main.commands.pop("doctor")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["settings"]["FHIRFLOW_HOME"] == str(tmp_path / "elsewhere")


def test_privileges_name_each_thing_the_role_may_not_create(settings: Settings) -> None:
    """On a DuckDB file opened read-only every probe fails: the schema probe (for the dbt
    schemas not there yet) and the table probe of each schema that is, each named, in order.
    On the same file writable they pass, and say what was checked."""
    from fhirflow.doctor.checks import check_privileges
    from fhirflow.warehouse import open_warehouse

    writable = open_warehouse(settings)
    try:
        writable.create_tables()
        writable.cursor().execute("create schema staging")
        passed = check_privileges(settings, writable)
    finally:
        writable.close()
    assert passed.status == "pass"
    assert passed.detail == ("may create the schemas intermediate, marts, reference (not there "
                             "yet), tables in raw, tables in staging")
    read_only = open_warehouse(settings, read_only=True)
    try:
        failed = check_privileges(settings, read_only)
    finally:
        read_only.close()
    assert failed.status == "fail" and failed.fix == "make the DuckDB file writable"
    problems = failed.detail.split("; ")
    assert [p.split(": ", 1)[0] for p in problems] == ["creating a schema", "raw", "staging"]
    assert all("read-only" in p for p in problems), failed.detail
    # The probes were dropped again, or never made.
    after = open_warehouse(settings, read_only=True)
    try:
        tables = after.cursor().execute(
            "select table_name from information_schema.tables "
            "where table_name ilike 'fhirflow_doctor_probe%'").fetchall()
    finally:
        after.close()
    assert tables == []
