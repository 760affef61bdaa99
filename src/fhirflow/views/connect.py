"""Connections for reading the warehouse: a view is a read-only query.

On Snowflake the warehouse layer's own client connects (no stage: reading needs none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhirflow.errors import FhirflowError, first_line

if TYPE_CHECKING:
    from fhirflow.config import Settings


def duckdb_connection(settings: Settings) -> Any:
    import duckdb

    path = settings.duckdb_path
    if not path.exists():
        raise FhirflowError(f"no warehouse at {path}; run `fhirflow run` first, or give --input")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as exc:
        raise FhirflowError(f"cannot open {path}: {first_line(exc)} (is another fhirflow or "
                            "dbt writing to it?)") from None


def snowflake_connection(settings: Settings) -> Any:
    """The warehouse layer's Snowflake connection (the same settings, authentication and
    one-line errors as the load), on SNOWFLAKE_SCHEMA: the suite's temporary table of
    resources goes there; views name their own schemas."""
    from fhirflow.warehouse.snowflake.client import connect

    return connect(settings, schema=settings.snowflake_schema)
