"""The transform DAG's dbt profile from the `snowflake_default` Airflow connection, through
Cosmos's own Snowflake profile mappings: key pair (file or content, encrypted or not) or
password, with SNOWFLAKE_* for what the connection leaves out.

Each case renders the profile the way a Cosmos task does (`ProfileConfig.ensure_profile()`:
profiles.yml plus the secret environment variables), in a subprocess with its own
AIRFLOW_HOME (Airflow reads its configuration at import) and the connection defined as
Airflow reads it from the environment (AIRFLOW_CONN_SNOWFLAKE_DEFAULT, JSON). The key-pair
cases then run `dbt debug` with that profile against a fakesnow server on 127.0.0.1: dbt-
snowflake must read the key and sign its JWT with it, so a passphrase that does not reach
dbt fails the test. (fakesnow accepts any key; a real account checks it against the user's
public key.)

Run as a script (`python tests/test_dags_profiles.py OUT_JSON [debug]`) for the subprocess.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _helpers import KEY_PASSPHRASE, write_private_key

REPO = Path(__file__).resolve().parents[1]
ENV_PREFIX = "COSMOS_CONN_SNOWFLAKE_"


@pytest.fixture(scope="module")
def server(fakesnow_server: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    with fakesnow_server() as conn:
        yield conn


def connection(server: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An Airflow `snowflake` connection of the fakesnow account (JSON form), plus `fields`
    (top-level fields; `extra` entries merged into the extras)."""
    extra = {"account": server["account"], "database": "SYNTHEA", "warehouse": "WH",
             "role": "TRANSFORMER", "host": server["host"], "port": server["port"]}
    extra.update(fields.pop("extra", {}))
    return {"conn_type": "snowflake", "login": "SVC_FHIRFLOW", "schema": "RAW",
            "extra": extra, **fields}


def render(tmp_path: Path, server: dict[str, Any], conn: dict[str, Any] | None,
           *, debug: bool = False, **env: str) -> dict[str, Any]:
    """The profile a Cosmos task of the transform DAG would run dbt with."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_", "AIRFLOW", "COSMOS_"))}
    clean.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False", DO_NOT_TRACK="1",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        FHIRFLOW_HOME=str(tmp_path / "home"), FHIRFLOW_WAREHOUSE="snowflake",
        # fakesnow speaks HTTP; a connection's extras have no protocol field
        SNOWFLAKE_PROTOCOL=server["protocol"], PYTHONPATH=str(REPO / "src"), **env)
    if conn is not None:
        clean["AIRFLOW_CONN_SNOWFLAKE_DEFAULT"] = json.dumps(conn)
    out = tmp_path / "profile.json"
    proc = subprocess.run([sys.executable, __file__, str(out), *(["debug"] if debug else [])],
                          env=clean, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not out.exists():
        pytest.fail(f"profile subprocess exited with {proc.returncode}:\n"
                    f"{(proc.stdout + proc.stderr)[-6000:]}")
    return json.loads(out.read_text())


def secret_reference(field: str) -> str:
    return "{{ env_var('" + ENV_PREFIX + field.upper() + "') }}"


def test_encrypted_key_file_from_the_connection(tmp_path: Path, server: dict[str, Any]) -> None:
    key = write_private_key(tmp_path / "rsa_key.p8", KEY_PASSPHRASE)
    found = render(tmp_path, server, connection(
        server, password=KEY_PASSPHRASE, extra={"private_key_file": str(key)}), debug=True)
    assert found["mapping"] == "FhirflowSnowflakeEncryptedKeyFileMapping"
    profile = found["profile"]
    assert profile["private_key_path"] == str(key)
    # the passphrase reaches dbt as an environment variable, never in profiles.yml
    assert profile["private_key_passphrase"] == secret_reference("private_key_passphrase")
    assert found["env"][ENV_PREFIX + "PRIVATE_KEY_PASSPHRASE"] == KEY_PASSPHRASE
    assert KEY_PASSPHRASE not in found["text"]
    assert "password" not in profile
    assert (profile["account"], profile["user"], profile["schema"]) == (
        server["account"], "SVC_FHIRFLOW", "RAW")
    assert found["debug_ok"], found["debug_log"]


def test_a_wrong_passphrase_fails_in_dbt(tmp_path: Path, server: dict[str, Any]) -> None:
    """What makes the key-pair cases' `dbt debug` mean something: dbt really uses the key."""
    key = write_private_key(tmp_path / "rsa_key.p8", KEY_PASSPHRASE)
    found = render(tmp_path, server, connection(
        server, password="not the passphrase", extra={"private_key_file": str(key)}),
        debug=True)
    assert found["mapping"] == "FhirflowSnowflakeEncryptedKeyFileMapping"
    assert not found["debug_ok"]


def test_key_content_in_the_connection(tmp_path: Path, server: dict[str, Any]) -> None:
    """The key itself in the connection (`private_key_content`, base64 as the Snowflake
    provider stores it), encrypted or not."""
    for passphrase in (KEY_PASSPHRASE, None):
        pem = write_private_key(tmp_path / "k.p8", passphrase).read_text()
        fields: dict[str, Any] = {"extra": {
            "private_key_content": base64.b64encode(pem.encode()).decode()}}
        if passphrase:
            fields["password"] = passphrase
        found = render(tmp_path, server, connection(server, **fields), debug=True)
        expected = ("FhirflowSnowflakeEncryptedKeyMapping" if passphrase
                    else "FhirflowSnowflakeKeyMapping")
        assert found["mapping"] == expected
        assert found["profile"]["private_key"] == secret_reference("private_key")
        assert found["env"][ENV_PREFIX + "PRIVATE_KEY"] == pem
        assert "BEGIN" not in found["text"]
        if passphrase:
            assert found["env"][ENV_PREFIX + "PRIVATE_KEY_PASSPHRASE"] == passphrase
        else:
            assert "private_key_passphrase" not in found["profile"]
        assert found["debug_ok"], found["debug_log"]


def test_key_pair_from_snowflake_variables_without_a_connection(
    tmp_path: Path, server: dict[str, Any]
) -> None:
    key = write_private_key(tmp_path / "rsa_key.p8", KEY_PASSPHRASE)
    found = render(tmp_path, server, None, debug=True,
                   SNOWFLAKE_ACCOUNT=server["account"], SNOWFLAKE_USER="SVC_FHIRFLOW",
                   SNOWFLAKE_HOST=server["host"], SNOWFLAKE_PORT=str(server["port"]),
                   SNOWFLAKE_PRIVATE_KEY_PATH=str(key),
                   SNOWFLAKE_PRIVATE_KEY_PASSPHRASE=KEY_PASSPHRASE)
    assert found["mapping"] == "FhirflowSnowflakeEncryptedKeyFileMapping"
    assert found["profile"]["private_key_path"] == str(key)
    assert found["env"][ENV_PREFIX + "PRIVATE_KEY_PASSPHRASE"] == KEY_PASSPHRASE
    assert KEY_PASSPHRASE not in found["text"]
    assert found["debug_ok"], found["debug_log"]


def test_unencrypted_key_file_and_password(tmp_path: Path, server: dict[str, Any]) -> None:
    key = write_private_key(tmp_path / "rsa_key.p8", None)
    found = render(tmp_path, server, connection(server, extra={"private_key_file": str(key)}))
    assert found["mapping"] == "FhirflowSnowflakeKeyFileMapping"
    assert found["profile"]["private_key_path"] == str(key)
    assert "private_key_passphrase" not in found["profile"]
    # no key anywhere: user and password, as before
    found = render(tmp_path, server, connection(server, password="pw-secret"))
    assert found["mapping"] == "FhirflowSnowflakePasswordMapping"
    assert found["profile"]["password"] == secret_reference("password")
    assert found["env"][ENV_PREFIX + "PASSWORD"] == "pw-secret"
    assert "pw-secret" not in found["text"]


def test_a_key_file_from_the_environment_takes_its_passphrase_from_there(
    tmp_path: Path, server: dict[str, Any]
) -> None:
    """The connection's password is the key's passphrase only when the connection holds the
    key (the Snowflake provider's convention); beside SNOWFLAKE_PRIVATE_KEY_PATH the
    passphrase is SNOWFLAKE_PRIVATE_KEY_PASSPHRASE."""
    key = write_private_key(tmp_path / "rsa_key.p8", KEY_PASSPHRASE)
    found = render(tmp_path, server, connection(server, password="a-password"),
                   SNOWFLAKE_PRIVATE_KEY_PATH=str(key),
                   SNOWFLAKE_PRIVATE_KEY_PASSPHRASE=KEY_PASSPHRASE)
    assert found["mapping"] == "FhirflowSnowflakeEncryptedKeyFileMapping"
    assert found["env"][ENV_PREFIX + "PRIVATE_KEY_PASSPHRASE"] == KEY_PASSPHRASE


# --- the subprocess side ---------------------------------------------------------------------


def _render(out: Path, debug: bool) -> None:
    import yaml
    from dbt.cli.main import dbtRunner

    from fhirflow.config import exported, load_settings
    from fhirflow.orchestration.profiles import PROFILE_NAME, profile_config
    from fhirflow.transform import dbt_project_dir

    settings = load_settings()
    config = profile_config(settings)
    result: dict[str, Any] = {"mapping": type(config.profile_mapping.chosen()).__name__}
    with config.ensure_profile() as (path, env_vars):
        text = Path(path).read_text()
        result.update(text=text, env=env_vars, profile=yaml.safe_load(text)[PROFILE_NAME][
            "outputs"][settings.resolved_dbt_target])
        if debug:
            # dbt's connection test with exactly that profile and those variables, as the
            # Cosmos task runs dbt (the profile's other secrets emptied, as in a task).
            emptied = {k: "" for k in ("SNOWFLAKE_PASSWORD", "SNOWFLAKE_PRIVATE_KEY_PATH",
                                       "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "SNOWFLAKE_TOKEN")}
            with exported({**emptied, **env_vars}):
                run = dbtRunner().invoke([
                    "debug", "--project-dir", str(dbt_project_dir(settings)),
                    "--profiles-dir", str(Path(path).parent), "--profile", PROFILE_NAME,
                    "--target", settings.resolved_dbt_target,
                    "--log-path", str(out.parent / "dbt-logs")])
            result["debug_ok"] = bool(run.success)
            log = out.parent / "dbt-logs" / "dbt.log"
            result["debug_log"] = log.read_text()[-3000:] if log.is_file() else ""
    out.write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    _render(Path(sys.argv[1]), debug=len(sys.argv) > 2 and sys.argv[2] == "debug")
