"""Connections for reading the warehouse: a view is a read-only query.

On Snowflake the warehouse layer's own client connects (no stage: reading needs none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhirflow.errors import FhirflowError

if TYPE_CHECKING:
    from fhirflow.config import Settings


def duckdb_connection(settings: Settings) -> Any:
    """The warehouse layer's read-only DuckDB connection (its one-line errors for a locked
    or unusable file); only a missing file is told here, as views can read --input instead."""
    from fhirflow.warehouse import open_warehouse
    from fhirflow.warehouse.duckdb import DuckDBWarehouse

    path = settings.duckdb_path
    if not path.exists():
        raise FhirflowError(f"no warehouse at {path}; run `fhirflow run` first, or give --input")
    warehouse = open_warehouse(settings, "duckdb", read_only=True)
    assert isinstance(warehouse, DuckDBWarehouse)
    # Closing the connection is closing the warehouse: it holds nothing else.
    return warehouse.con


def snowflake_connection(settings: Settings) -> Any:
    """The warehouse layer's Snowflake connection (the same settings, authentication and
    one-line errors as the load), on SNOWFLAKE_SCHEMA: the suite's temporary table of
    resources goes there; views name their own schemas."""
    from fhirflow.warehouse.snowflake.client import connect

    return connect(settings, schema=settings.snowflake_schema)
