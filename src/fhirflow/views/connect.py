"""Connections for reading the warehouse: a view is a read-only query.

(The RAW load's SnowflakeWarehouse also sets up a stage, which reading needs none of, so
views connect here with the same SNOWFLAKE_* settings.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhirflow.errors import ConfigError, FhirflowError, first_line

if TYPE_CHECKING:
    from fhirflow.config import Settings


def duckdb_connection(settings: Settings) -> Any:
    import duckdb

    path = settings.duckdb_path
    if not path.exists():
        raise FhirflowError(f"no warehouse at {path}; run `fhirflow run` first, or give --input")
    try:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.ConnectionException:
            # This process already holds a read-write connection (dbt-duckdb after a run);
            # DuckDB refuses a second one with another configuration.
            return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        raise FhirflowError(f"cannot open {path}: {first_line(exc)} (is another fhirflow or "
                            "dbt writing to it?)") from None


def snowflake_connection(settings: Settings) -> Any:
    import snowflake.connector

    if not settings.snowflake_account or not settings.snowflake_user:
        raise ConfigError("SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER must be set to read Snowflake")
    params: dict[str, Any] = {
        "account": settings.snowflake_account,
        "user": settings.snowflake_user,
        "password": (settings.snowflake_password.get_secret_value()
                     if settings.snowflake_password else None),
        "database": settings.snowflake_database,
        # The suite's temporary table of resources goes here; views name their schemas.
        "schema": settings.snowflake_schema,
        "warehouse": settings.snowflake_warehouse,
        "role": settings.snowflake_role,
        "login_timeout": 30,
    }
    for name in ("host", "port", "protocol"):
        value = getattr(settings, f"snowflake_{name}")
        if value:
            params[name] = value
    try:
        return snowflake.connector.connect(**{k: v for k, v in params.items() if v is not None})
    except snowflake.connector.errors.Error as exc:
        raise FhirflowError(f"cannot connect to Snowflake account {settings.snowflake_account!r}: "
                            f"{first_line(exc)}; check the SNOWFLAKE_* variables") from None
