"""Where compiled views run: a DuckDB connection or a Snowflake (DB-API) connection.

An engine loads resources into its table of resources (one row per resource, with the
resource as JSON/VARIANT and its type) and runs a compiled view, returning Python rows:
JSON columns decoded, numbers as int/float.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from fhirflow.views.compiler import CompiledView
from fhirflow.views.render import Source
from fhirflow.views.sql_snowflake import Snowflake

_JSON_KINDS = ("json", "list")


class Engine(Protocol):
    dialect: str
    source: Source

    def load(self, resources: Iterable[dict]) -> int: ...

    def rows(self, compiled: CompiledView) -> Iterator[dict[str, Any]]: ...


def decode(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind in _JSON_KINDS and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, decimal.Decimal):
        whole = value == value.to_integral_value()
        return int(value) if whole and kind == "integer" else float(value)
    return value


class DuckDBEngine:
    dialect = "duckdb"

    def __init__(self, con: Any, source: Source | None = None) -> None:
        self.con = con
        self.source = source or Source("resources")

    def create(self) -> None:
        self.con.execute(f"create or replace table {self.source.table} "
                         "(resource json, resource_type varchar)")

    def load(self, resources: Iterable[dict]) -> int:
        self.create()
        rows = [(json.dumps(r), r.get("resourceType")) for r in resources if isinstance(r, dict)]
        if rows:
            self.con.executemany(f"insert into {self.source.table} values (?, ?)", rows)
        return len(rows)

    def rows(self, compiled: CompiledView) -> Iterator[dict[str, Any]]:
        cursor = self.con.execute(compiled.sql)
        kinds = [c.kind for c in compiled.columns]
        names = compiled.names
        while batch := cursor.fetchmany(10_000):
            for row in batch:
                yield {n: decode(v, k) for n, v, k in zip(names, row, kinds, strict=True)}


class SnowflakeEngine:
    dialect = "snowflake"

    def __init__(self, con: Any, source: Source | None = None) -> None:
        self.con = con
        self.source = source or Source("fhirflow_view_resources")

    def load(self, resources: Iterable[dict]) -> int:
        quote = Snowflake().string
        cur = self.con.cursor()
        try:
            cur.execute(f"create or replace temporary table {self.source.table} "
                        "(resource variant, resource_type varchar)")
            count = 0
            for resource in resources:
                if not isinstance(resource, dict):
                    continue
                # Literals, not parameters: the connection may use either paramstyle.
                text, kind = quote(json.dumps(resource)), quote(str(resource.get("resourceType")))
                cur.execute(f"insert into {self.source.table} (resource, resource_type) "
                            f"select parse_json({text}), {kind}")
                count += 1
            return count
        finally:
            cur.close()

    def rows(self, compiled: CompiledView) -> Iterator[dict[str, Any]]:
        cur = self.con.cursor()
        try:
            cur.execute(compiled.sql)
            kinds = [c.kind for c in compiled.columns]
            names = compiled.names
            while batch := cur.fetchmany(10_000):
                for row in batch:
                    yield {n: decode(v, k) for n, v, k in zip(names, row, kinds, strict=True)}
        finally:
            cur.close()
