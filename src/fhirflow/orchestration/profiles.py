"""dbt's profile in Airflow, from Airflow connections through Cosmos's profile mappings.

Cosmos maps the connection to the dbt profile (its DuckDB and Snowflake user/password
mappings: a field map and the secret fields, the password handed to dbt as an environment
variable, never written to the profile). fhirflow adds one thing to each mapping: what the
connection leaves out, or the whole connection when it is not defined, comes from fhirflow's
Settings (`FHIRFLOW_HOME`'s warehouse file, `SNOWFLAKE_*`), as it does for the load tasks.
So the embedded defaults run without any connection, and a connection wins wherever it
sets a field.

Imported by the transform DAG only: it imports Cosmos and Airflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException
from cosmos.config import ProfileConfig
from cosmos.exceptions import CosmosValueError
from cosmos.profiles import DuckDBUserPasswordProfileMapping, SnowflakeUserPasswordProfileMapping

from fhirflow.config import Settings, load_settings
from fhirflow.orchestration import DUCKDB_CONN_ID, SNOWFLAKE_CONN_ID

# The profile name dbt_project.yml asks for.
PROFILE_NAME = "fhirflow"

Fallback = Callable[[], dict[str, Any]]


def duckdb_fallback() -> dict[str, Any]:
    """The embedded warehouse: the file the load stage writes."""
    return {"path": str(load_settings().duckdb_path)}


def snowflake_fallback() -> dict[str, Any]:
    """`SNOWFLAKE_*` for whatever the `snowflake_default` connection does not set. Read when
    the task runs, so the password is never held by the parsed DAG."""
    s = load_settings()
    values: dict[str, Any] = {
        "account": s.snowflake_account, "user": s.snowflake_user,
        "password": s.snowflake_password.get_secret_value() if s.snowflake_password else None,
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


class FhirflowDuckDBProfileMapping(_SettingsFallback, DuckDBUserPasswordProfileMapping):
    fallback = staticmethod(duckdb_fallback)


class FhirflowSnowflakeProfileMapping(_SettingsFallback, SnowflakeUserPasswordProfileMapping):
    fallback = staticmethod(snowflake_fallback)


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
