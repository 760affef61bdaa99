"""dbt's profile in Airflow, from Airflow connections through Cosmos's profile mappings.

Cosmos maps the connection to the dbt profile (a field map and the secret fields, the
secrets handed to dbt as environment variables, never written to the profile): its DuckDB
mapping, and for Snowflake the mapping of the sign-in the connection uses, chosen when the
task runs: a key pair from a file (`extra.private_key_file`) or from the connection itself
(`extra.private_key_content`), encrypted or not, else user and password. With a key, the
connection's password is the key's passphrase (the Snowflake provider's convention, and
Cosmos's). fhirflow adds one thing to each mapping: what the connection leaves out, or the
whole connection when it is not defined, comes from fhirflow's Settings (`FHIRFLOW_HOME`'s
warehouse file, `SNOWFLAKE_*` including SNOWFLAKE_PRIVATE_KEY_PATH and its passphrase), as
it does for the load tasks. So the embedded defaults run without any connection, and a
connection wins wherever it sets a field.

Imported by the transform DAG only: it imports Cosmos and Airflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException
from cosmos.config import ProfileConfig
from cosmos.exceptions import CosmosValueError
from cosmos.profiles import (
    BaseProfileMapping,
    DuckDBUserPasswordProfileMapping,
    SnowflakeEncryptedPrivateKeyFilePemProfileMapping,
    SnowflakeEncryptedPrivateKeyPemProfileMapping,
    SnowflakePrivateKeyFilePemProfileMapping,
    SnowflakePrivateKeyPemProfileMapping,
    SnowflakeUserPasswordProfileMapping,
)

from fhirflow.config import Settings, load_settings
from fhirflow.orchestration import DUCKDB_CONN_ID, SNOWFLAKE_CONN_ID

# The profile name dbt_project.yml asks for.
PROFILE_NAME = "fhirflow"

Fallback = Callable[[], dict[str, Any]]


def duckdb_fallback() -> dict[str, Any]:
    """The embedded warehouse: the file the load stage writes."""
    return {"path": str(load_settings().duckdb_path)}


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def snowflake_fallback() -> dict[str, Any]:
    """`SNOWFLAKE_*` for whatever the `snowflake_default` connection does not set. Read when
    the task runs, so no secret is ever held by the parsed DAG."""
    s = load_settings()
    values: dict[str, Any] = {
        "account": s.snowflake_account, "user": s.snowflake_user,
        "password": _secret(s.snowflake_password),
        "private_key_path": str(s.snowflake_private_key_path or ""),
        "private_key_passphrase": _secret(s.snowflake_private_key_passphrase),
        "authenticator": s.snowflake_authenticator,
        "database": s.snowflake_database, "warehouse": s.snowflake_warehouse,
        "schema": s.snowflake_schema, "role": s.snowflake_role,
        "host": s.snowflake_host, "port": s.snowflake_port,
    }
    return {k: v for k, v in values.items() if v not in (None, "")}


class _SettingsFallback:
    """Mixed into a Cosmos mapping: the connection first, then fhirflow's Settings."""

    fallback: Fallback
    airflow_connection_type: str
    conn_id: str
    _conn: Any

    @property
    def conn(self) -> Any:
        if self._conn is None:
            try:
                return super().conn  # type: ignore[misc]
            except (AirflowNotFoundException, CosmosValueError):
                # Not defined: an empty connection of the mapping's type; every field then
                # comes from the fallback.
                self._conn = Connection(conn_id=self.conn_id,
                                        conn_type=self.airflow_connection_type)
        return self._conn

    def get_dbt_value(self, name: str) -> Any:
        value = super().get_dbt_value(name)  # type: ignore[misc]
        if value in (None, ""):
            value = self.fallback().get(name)
        return value


class _KeyFallback(_SettingsFallback):
    """A key-pair mapping: the connection's password is the passphrase only when the
    connection holds the key too; a key from SNOWFLAKE_PRIVATE_KEY_PATH goes with
    SNOWFLAKE_PRIVATE_KEY_PASSPHRASE (a connection's password beside it is a password)."""

    def get_dbt_value(self, name: str) -> Any:
        if name == "private_key_passphrase" and not _holds_key(self.conn):
            return self.fallback().get(name)
        return super().get_dbt_value(name)


class FhirflowDuckDBProfileMapping(_SettingsFallback, DuckDBUserPasswordProfileMapping):
    fallback = staticmethod(duckdb_fallback)


class FhirflowSnowflakePasswordMapping(_SettingsFallback, SnowflakeUserPasswordProfileMapping):
    fallback = staticmethod(snowflake_fallback)


class FhirflowSnowflakeEncryptedKeyFileMapping(
        _KeyFallback, SnowflakeEncryptedPrivateKeyFilePemProfileMapping):
    fallback = staticmethod(snowflake_fallback)


class FhirflowSnowflakeKeyFileMapping(_KeyFallback, SnowflakePrivateKeyFilePemProfileMapping):
    fallback = staticmethod(snowflake_fallback)


class FhirflowSnowflakeEncryptedKeyMapping(
        _KeyFallback, SnowflakeEncryptedPrivateKeyPemProfileMapping):
    fallback = staticmethod(snowflake_fallback)


class FhirflowSnowflakeKeyMapping(_KeyFallback, SnowflakePrivateKeyPemProfileMapping):
    fallback = staticmethod(snowflake_fallback)


def _extras(conn: Any) -> dict[str, Any]:
    return dict(getattr(conn, "extra_dejson", None) or {})


def _holds_key(conn: Any) -> bool:
    extra = _extras(conn)
    return bool(extra.get("private_key_file") or extra.get("private_key_content"))


def snowflake_mapping_class(conn: Any, fallback: dict[str, Any]) -> type[BaseProfileMapping]:
    """Which of Cosmos's Snowflake mappings signs in the way the connection (or, for what it
    leaves out, SNOWFLAKE_*) asks: a key held by the connection, a key file, else a
    password. Encrypted when there is a passphrase for the key."""
    extra = _extras(conn)
    passphrase = (conn.password if _holds_key(conn) else None) or \
        fallback.get("private_key_passphrase")
    if extra.get("private_key_content"):
        return (FhirflowSnowflakeEncryptedKeyMapping if passphrase
                else FhirflowSnowflakeKeyMapping)
    if extra.get("private_key_file") or fallback.get("private_key_path"):
        return (FhirflowSnowflakeEncryptedKeyFileMapping if passphrase
                else FhirflowSnowflakeKeyFileMapping)
    return FhirflowSnowflakePasswordMapping


class FhirflowSnowflakeProfileMapping(SnowflakeUserPasswordProfileMapping):
    """The `snowflake_default` profile: built by the Cosmos mapping of the connection's
    sign-in (`snowflake_mapping_class`), chosen on first use, i.e. when the task runs: the
    DAG is parsed without reading the connection or any secret. Until then (Cosmos's mock
    profile, for parsing) it is the user/password mapping."""

    _chosen: BaseProfileMapping | None = None

    def chosen(self) -> BaseProfileMapping:
        if self._chosen is None:
            probe = FhirflowSnowflakePasswordMapping(conn_id=self.conn_id)
            cls = snowflake_mapping_class(probe.conn, snowflake_fallback())
            self._chosen = cls(conn_id=self.conn_id, profile_args=self.profile_args,
                               disable_event_tracking=self.disable_event_tracking,
                               dbt_config_vars=self.dbt_config_vars)
        return self._chosen

    @property
    def conn(self) -> Any:
        return self.chosen().conn

    def can_claim_connection(self) -> bool:
        return self.chosen().can_claim_connection()

    def get_dbt_value(self, name: str) -> Any:
        return self.chosen().get_dbt_value(name)

    @property
    def profile(self) -> dict[str, Any | None]:
        return self.chosen().profile

    @property
    def env_vars(self) -> dict[str, str]:
        return self.chosen().env_vars


def profile_config(settings: Settings) -> ProfileConfig:
    """The dbt profile of the configured warehouse, as Cosmos builds it for each task."""
    if settings.warehouse == "snowflake":
        args: dict[str, Any] = {"threads": settings.dbt_threads,
                                "client_session_keep_alive": False}
        if settings.snowflake_protocol:  # Snowflake-compatible test servers only (fakesnow)
            args["protocol"] = settings.snowflake_protocol
        mapping: Any = FhirflowSnowflakeProfileMapping(conn_id=SNOWFLAKE_CONN_ID,
                                                       profile_args=args)
    else:
        mapping = FhirflowDuckDBProfileMapping(
            conn_id=DUCKDB_CONN_ID,
            profile_args={"schema": "main", "threads": settings.dbt_threads})
    return ProfileConfig(profile_name=PROFILE_NAME, target_name=settings.resolved_dbt_target,
                         profile_mapping=mapping)


def profile_path(config: ProfileConfig) -> str | None:
    """The DuckDB file the profile points at (None for other warehouses)."""
    mapping = config.profile_mapping
    if isinstance(mapping, DuckDBUserPasswordProfileMapping):
        return str(mapping.get_dbt_value("path"))
    return None
