"""Snowflake queries outside a load batch: what the load reads first (the last watermark,
the keys RAW knows) and what `fhirflow status` shows (recent loads, RAW's and the dbt
schemas' row counts).
"""

from __future__ import annotations

from fhirflow.warehouse.snowflake.raw_schema import RAW

LAST_WATERMARK = f"select max(WATERMARK) from {RAW}.LOAD_WATERMARK where STATUS = 'complete'"


def recent_loads_sql(limit: int) -> str:
    """The newest `limit` loads. LIMIT takes a constant, not a bind variable, in Snowflake."""
    count = int(limit)
    if count < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    return f"""select LOAD_ID, STARTED_AT, FINISHED_AT, FILES_SEEN, FILES_LOADED, FILES_FAILED,
    BYTES_LOADED, WATERMARK, STATUS
from {RAW}.LOAD_WATERMARK order by LOAD_ID desc limit {count}"""


RAW_COUNTS = f"""select (select count(*) from {RAW}.FHIR_BUNDLES),
    (select count(*) from {RAW}.LOAD_ERRORS),
    (select count(*) from {RAW}.LOAD_WATERMARK),
    (select count(*) from {RAW}.FHIR_RESOURCES),
    (select count(*) from {RAW}.ENTRY_ERRORS)"""


def model_relations_sql(n: int) -> str:
    """The dbt-built relations of `n` schemas (upper-case names bound as parameters)."""
    marks = ", ".join("?" * n)
    return (
        "select table_schema, table_name from information_schema.tables "
        f"where upper(table_schema) in ({marks}) order by 1, 2"
    )


def count_sql(schema: str, name: str) -> str:
    """Rows of one relation listed by information_schema (its names, quoted as they are)."""
    return f'select count(*) from "{schema}"."{name}"'


def known_keys_sql(n: int) -> str:
    marks = ", ".join("?" * n)
    return (
        f"select OBJECT_KEY from {RAW}.FHIR_BUNDLES where OBJECT_KEY in ({marks}) "
        f"union select OBJECT_KEY from {RAW}.LOAD_ERRORS where OBJECT_KEY in ({marks})"
    )
