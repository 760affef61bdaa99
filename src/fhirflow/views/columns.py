"""Column values as output: the SQL type of each column and the conversion to it.

Types follow the specification's default mapping from FHIR types, with two deliberate
departures: decimals are numbers (DOUBLE / FLOAT) rather than text, and instants stay the
FHIR text. An `ansi/type` tag casts the value to that SQL type instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fhirflow.views.definition import Column, InvalidViewError
from fhirflow.views.values import Val, kind_of

if TYPE_CHECKING:
    from fhirflow.views.expressions import ExprCompiler, Scope

# ISO/IEC 9075 type names (an `ansi/type` tag) -> (DuckDB type, Snowflake type).
_ANSI = {
    "CHARACTER VARYING": ("varchar", "varchar"), "VARCHAR": ("varchar", "varchar"),
    "CHAR VARYING": ("varchar", "varchar"), "CHARACTER": ("varchar", "varchar"),
    "CHAR": ("varchar", "varchar"), "TEXT": ("varchar", "varchar"),
    "STRING": ("varchar", "varchar"),
    "INT": ("integer", "integer"), "INTEGER": ("integer", "integer"),
    "SMALLINT": ("smallint", "smallint"), "BIGINT": ("bigint", "bigint"),
    "BOOLEAN": ("boolean", "boolean"),
    "DATE": ("date", "date"), "TIME": ("time", "time"),
    "TIMESTAMP": ("timestamp", "timestamp_ntz"),
    "TIMESTAMP WITHOUT TIME ZONE": ("timestamp", "timestamp_ntz"),
    "TIMESTAMP WITH TIME ZONE": ("timestamptz", "timestamp_tz"),
    "DOUBLE PRECISION": ("double", "float"), "DOUBLE": ("double", "float"),
    "FLOAT": ("double", "float"), "REAL": ("double", "float"),
    "DECIMAL": ("decimal", "number"), "NUMERIC": ("decimal", "number"),
    "BINARY": ("blob", "binary"), "VARBINARY": ("blob", "binary"),
    "BINARY VARYING": ("blob", "binary"), "BLOB": ("blob", "binary"),
}
# A type name with optional (precision[, scale]); over a tag value, not FHIRPath.
_ANSI_SHAPE = re.compile(r"^([A-Z][A-Z ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
# Output SQL type of each kind when no tag says otherwise.
_DEFAULT = {
    "string": ("varchar", "varchar"), "date": ("varchar", "varchar"),
    "datetime": ("varchar", "varchar"), "time": ("varchar", "varchar"),
    "boolean": ("boolean", "boolean"), "integer": ("bigint", "integer"),
    "decimal": ("double", "float"), "json": ("json", "variant"),
    "list": ("json", "array"),
}


@dataclass(frozen=True)
class OutputColumn:
    """A column of the view's result."""

    name: str
    sql_type: str  # in the compiled dialect
    kind: str  # string, boolean, integer, decimal, date, datetime, time, json, list, or ansi
    collection: bool
    fhir_type: str | None
    description: str | None


def ansi_type(value: str, dialect: str, where: str) -> str:
    shape = _ANSI_SHAPE.match(" ".join(value.upper().split()))
    if not shape or shape.group(1) not in _ANSI:
        raise InvalidViewError(f"{where}.tag", f"ansi/type {value!r} is not a type fhirflow maps")
    name = _ANSI[shape.group(1)][0 if dialect == "duckdb" else 1]
    if shape.group(2) and name in ("decimal", "number"):
        scale = shape.group(3) or "0"
        return f"{name}({shape.group(2)}, {scale})"
    return name


def output_kind(column: Column, value: Val) -> str:
    if column.collection:
        return "list"
    if column.type is not None:
        declared = kind_of(column.type)
        if declared != "json" or value.kind in ("json", "empty"):
            return declared
    return "string" if value.kind == "empty" else value.kind


def output_sql(c: ExprCompiler, column: Column, value: Val, scope: Scope) -> tuple[str, str, str]:
    """(SQL of the value, its SQL type, its kind) for one column in one branch."""
    kind = output_kind(column, value)
    d = c.d
    if kind == "list":
        sql = d.list_output(c.as_list(value))
    elif kind == "json":
        sql = c.as_json(value, scope)
    else:
        sql = c.as_typed(value, kind, scope)
    sql_type = _DEFAULT[kind][0 if d.name == "duckdb" else 1]
    if column.ansi_type and kind != "list":
        target = ansi_type(column.ansi_type, d.name, column.where)
        if target in ("blob", "binary") and kind == "string":
            sql = f"from_base64({sql})" if d.name == "duckdb" else f"base64_decode_binary({sql})"
        elif target != sql_type:
            lenient = kind in ("string", "date", "datetime", "time")
            sql = d.cast(sql, target, lenient=lenient)
        return sql, target, "ansi"
    return sql, sql_type, kind
