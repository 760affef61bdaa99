"""Signing in to Snowflake: key pair, programmatic access token and password, through the
loader (snowflake-connector-python's own options) and dbt (dbt/profiles.yml), on a fakesnow
server; the checks made before connecting; no secret in any message; no network_timeout.

fakesnow accepts any credentials, so these tests prove what the client sends and that the
connector and dbt-snowflake accept it (the key pair is read and a JWT signed with it on this
side), not that a real account would accept the key: that needs the public key set on the
user (README, "Moving to Snowflake").
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _helpers import KEY_PASSPHRASE, write_private_key
from fhirflow.config import Settings, described, load_settings
from fhirflow.errors import ConfigError
from fhirflow.warehouse.snowflake import SnowflakeWarehouse, auth, client

fakesnow = pytest.importorskip("fakesnow")


@pytest.fixture(scope="module")
def server(fakesnow_server: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    with fakesnow_server() as conn:
        yield conn


@pytest.fixture
def base(server: dict[str, Any], tmp_path: Path, clean_env: pytest.MonkeyPatch
         ) -> dict[str, Any]:
    """Settings fields of a fakesnow account without credentials (each test adds its own)."""
    return {"home": tmp_path / "home", "warehouse": "snowflake",
            "snowflake_account": server["account"], "snowflake_user": "SVC_FHIRFLOW",
            "snowflake_host": server["host"], "snowflake_port": server["port"],
            "snowflake_protocol": server["protocol"], "snowflake_load_mode": "insert",
            "snowflake_database": f"SYNTHEA_{uuid.uuid4().hex[:8].upper()}"}


def test_the_method_follows_from_the_one_credential(base: dict[str, Any], tmp_path: Path
                                                    ) -> None:
    key = write_private_key(tmp_path / "rsa_key.p8", KEY_PASSPHRASE)
    by_key = auth.resolve(load_settings(**base, snowflake_private_key_path=key,
                                        snowflake_private_key_passphrase=KEY_PASSPHRASE))
    assert by_key.connector_kwargs() == {
        "authenticator": "SNOWFLAKE_JWT", "private_key_file": str(key),
        "private_key_file_pwd": KEY_PASSPHRASE}
    assert by_key.describe() == f"key pair ({key}, encrypted)"
    by_token = auth.resolve(load_settings(**base, snowflake_token="pat-secret"))
    assert by_token.connector_kwargs() == {"authenticator": "PROGRAMMATIC_ACCESS_TOKEN",
                                           "token": "pat-secret"}
    by_password = auth.resolve(load_settings(**base, snowflake_password="pw-secret"))
    assert by_password.connector_kwargs() == {"authenticator": "SNOWFLAKE",
                                              "password": "pw-secret"}
    oauth = auth.resolve(load_settings(**base, snowflake_token="t",
                                       snowflake_authenticator="OAuth"))
    assert oauth.connector_kwargs() == {"authenticator": "OAUTH", "token": "t"}
    # dbt gets the same method, and empty values for the others (a stray shell variable).
    assert by_token.dbt_environment() == {
        "SNOWFLAKE_AUTHENTICATOR": "programmatic_access_token", "SNOWFLAKE_TOKEN": "pat-secret",
        "SNOWFLAKE_PASSWORD": "", "SNOWFLAKE_PRIVATE_KEY_PATH": "",
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": ""}


@pytest.mark.parametrize(("extra", "message"), [
    ({}, "no Snowflake credentials: set SNOWFLAKE_PRIVATE_KEY_PATH"),
    ({"snowflake_password": "pw", "snowflake_token": "tok"},
     "SNOWFLAKE_PASSWORD and SNOWFLAKE_TOKEN are both set"),
    ({"snowflake_authenticator": "programmatic_access_token", "snowflake_password": "pw"},
     "SNOWFLAKE_AUTHENTICATOR=programmatic_access_token needs SNOWFLAKE_TOKEN"),
    ({"snowflake_private_key_path": "/nonexistent/rsa_key.p8"},
     "SNOWFLAKE_PRIVATE_KEY_PATH: cannot read /nonexistent/rsa_key.p8"),
])
def test_wrong_or_missing_credentials_are_one_line(base: dict[str, Any], extra: dict[str, str],
                                                   message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        SnowflakeWarehouse.from_settings(load_settings(**base, **extra))


def test_key_problems_are_found_before_connecting(base: dict[str, Any], tmp_path: Path
                                                  ) -> None:
    encrypted = write_private_key(tmp_path / "enc.p8", KEY_PASSPHRASE)
    plain = write_private_key(tmp_path / "plain.p8", None)
    (tmp_path / "junk.p8").write_text("not a key")
    cases = [
        (encrypted, None, "is encrypted: set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"),
        (encrypted, "wrong passphrase", "is not a PEM private key, or "
                                        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE is wrong"),
        (plain, KEY_PASSPHRASE, "is not encrypted: unset SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"),
        (tmp_path / "junk.p8", None, "is not a PEM private key"),
    ]
    for path, passphrase, message in cases:
        settings = load_settings(**base, snowflake_private_key_path=path,
                                 snowflake_private_key_passphrase=passphrase)
        with pytest.raises(ConfigError, match=message) as caught:
            client.connect(settings, schema="RAW")
        assert KEY_PASSPHRASE not in str(caught.value) and "wrong passphrase" not in str(
            caught.value)


def _loads_through(settings: Settings) -> None:
    """The loader's whole session on this sign-in: tables, a batch, status."""
    warehouse = SnowflakeWarehouse.from_settings(settings)
    try:
        warehouse.create_tables()
        assert warehouse.raw_counts() == {"bundles": 0, "errors": 0, "loads": 0, "resources": 0,
                                          "entry_errors": 0}
        assert warehouse.con.network_timeout is None
    finally:
        warehouse.close()


def test_key_pair_through_the_loader(base: dict[str, Any], tmp_path: Path) -> None:
    key = write_private_key(tmp_path / "rsa_key.p8", KEY_PASSPHRASE)
    _loads_through(load_settings(**base, snowflake_private_key_path=key,
                                 snowflake_private_key_passphrase=KEY_PASSPHRASE))


def test_programmatic_access_token_through_the_loader(base: dict[str, Any]) -> None:
    _loads_through(load_settings(**base, snowflake_token="pat-secret"))


def test_no_network_timeout_and_a_query_tag(base: dict[str, Any]) -> None:
    """network_timeout makes the connector cancel any statement that runs longer (a big COPY,
    a COPY waiting for a resuming warehouse): the loader must not set it."""
    kwargs = client.connect_kwargs(load_settings(**base, snowflake_password="pw"), schema="RAW")
    assert "network_timeout" not in kwargs and "socket_timeout" not in kwargs
    assert kwargs["session_parameters"]["QUERY_TAG"] == "fhirflow"
    tagged = client.connect_kwargs(load_settings(**base, snowflake_password="pw",
                                                 snowflake_query_tag="team-x"), schema="RAW")
    assert tagged["session_parameters"]["QUERY_TAG"] == "team-x"


def test_a_load_tags_its_statements_with_its_load_id(
    base: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement of a batch reaches the connector with QUERY_TAG "<tag> load <id>"
    (recorded on the real connector's way to the server; fakesnow ignores the tag)."""
    from datetime import UTC, datetime

    from snowflake.connector.connection import SnowflakeConnection

    from fhirflow.warehouse import BatchFile

    seen: list[tuple[str, str | None]] = []
    original = SnowflakeConnection.cmd_query

    def recording(self: SnowflakeConnection, sql: str, *args: Any, **kwargs: Any) -> Any:
        params = kwargs.get("statement_params") or {}
        seen.append((" ".join(sql.split())[:40], params.get("QUERY_TAG")))
        return original(self, sql, *args, **kwargs)

    warehouse = SnowflakeWarehouse.from_settings(load_settings(**base, snowflake_token="pat"))
    try:
        warehouse.create_tables()
        data = tmp_path / "b.json"
        data.write_text('{"resourceType": "Bundle", "type": "batch", "entry": []}')
        monkeypatch.setattr(SnowflakeConnection, "cmd_query", recording)
        result = warehouse.load_batch("L1", [BatchFile("raw/patients/b.json", 55, path=data)],
                                      rejected=[], started_at=datetime.now(UTC))
        assert result.files_loaded == 1
        monkeypatch.undo()
    finally:
        warehouse.close()
    assert len(seen) >= 8
    assert {tag for _sql, tag in seen} == {"fhirflow load L1"}, seen


def test_secrets_are_never_shown(base: dict[str, Any], tmp_path: Path) -> None:
    key = write_private_key(tmp_path / "rsa_key.p8", KEY_PASSPHRASE)
    settings = load_settings(**base, snowflake_private_key_path=key,
                             snowflake_private_key_passphrase=KEY_PASSPHRASE,
                             aws_secret_access_key="aws-secret", aws_session_token="aws-token")
    shown = described(settings)
    assert shown["SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"] == "set"
    assert shown["AWS_SESSION_TOKEN"] == "set" and shown["SNOWFLAKE_TOKEN"] is None
    assert shown["SNOWFLAKE_PRIVATE_KEY_PATH"] == str(key)
    text = repr(settings) + str(shown)
    for secret in (KEY_PASSPHRASE, "aws-secret", "aws-token"):
        assert secret not in text
    # A bad secret's validation error names the variable, not the value.
    with pytest.raises(ConfigError) as caught:
        load_settings(**base, snowflake_token=["not", "a", "string"])
    assert "SNOWFLAKE_TOKEN" in str(caught.value) and "not" not in str(caught.value)


@pytest.mark.parametrize("how", ["key pair", "token"])
def test_dbt_connects_with_the_same_method(
    base: dict[str, Any], tmp_path: Path, how: str
) -> None:
    """`dbt debug` (its connection test) through dbt-snowflake with the profile's key pair or
    token variables, which `fhirflow transform` exports from Settings."""
    from fhirflow.transform import dbt_args, dbt_environment, invoke

    if how == "key pair":
        extra = {"snowflake_private_key_path": write_private_key(tmp_path / "k.p8", KEY_PASSPHRASE),
                 "snowflake_private_key_passphrase": KEY_PASSPHRASE}
    else:
        extra = {"snowflake_token": "pat-secret"}
    settings = load_settings(**base, **extra)
    env = dbt_environment(settings)
    assert env["SNOWFLAKE_PASSWORD"] == ""
    assert env["SNOWFLAKE_AUTHENTICATOR"] == (
        "snowflake_jwt" if how == "key pair" else "programmatic_access_token")
    assert env["SNOWFLAKE_QUERY_TAG"] == "fhirflow" and env["SNOWFLAKE_SCHEMA"] == "RAW"
    os.environ.pop("SNOWFLAKE_PASSWORD", None)
    args = dbt_args(settings, "debug")
    i = args.index("--target-path")
    del args[i : i + 2]  # dbt debug takes no --target-path
    outcome = invoke(settings, args, "debug")
    assert outcome.success
