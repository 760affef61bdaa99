"""`fhirflow views run`: a view over input files or over the warehouse, written out.

With input files the resources go into an in-memory DuckDB table first. Without, the view
reads the warehouse's `staging.base_fhir_entries` (one row per bundle entry), keeping the
newest version of each resource as the staging models do.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fhirflow.errors import FhirflowError, first_line
from fhirflow.views.compiler import CompiledView, compile_view
from fhirflow.views.definition import View
from fhirflow.views.engines import decode
from fhirflow.views.inputs import LoadedInput, load_resources
from fhirflow.views.render import Source

if TYPE_CHECKING:
    from fhirflow.config import Settings

FORMATS = ("ndjson", "csv", "parquet")
# The newest version of each resource of one type: what staging's resources_of_type() keeps.
_NEWEST = """with resources as (
    select resource, resource_type
    from {table}
    where resource_type = {type}
    qualify row_number() over (
        partition by resource_id order by _loaded_at desc, _object_key desc, entry_index desc
    ) = 1
)
"""


@dataclass
class RunResult:
    rows: int
    columns: list[str]
    loaded: LoadedInput | None = None


def _write_rows(rows: Iterator[tuple], compiled: CompiledView, fmt: str, out: IO[str]) -> int:
    names = compiled.names
    kinds = [c.kind for c in compiled.columns]
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
    for row in rows:
        values = [decode(v, k) for v, k in zip(row, kinds, strict=True)]
        if fmt == "csv":
            writer.writerow(["" if v is None else (json.dumps(v) if isinstance(v, list | dict)
                             else ("true" if v is True else "false" if v is False else v))
                             for v in values])
        else:
            out.write(json.dumps(dict(zip(names, values, strict=True)), separators=(",", ":"),
                                 default=str) + "\n")
        count += 1
    return count


def _fetch(cursor: Any) -> Iterator[tuple]:
    while batch := cursor.fetchmany(10_000):
        yield from batch


def _duckdb_out(con: Any, sql: str, compiled: CompiledView, fmt: str, out_path: Path | None,
                stream: IO[str]) -> int:
    if out_path is not None:
        # DuckDB writes files itself: no row passes through Python.
        target = str(out_path).replace("'", "''")
        options = {"ndjson": "format json", "csv": "format csv, header true",
                   "parquet": "format parquet"}[fmt]
        con.execute(f"copy ({sql}) to '{target}' ({options})")
        return con.execute(f"select count(*) from ({sql})").fetchone()[0]
    if fmt == "ndjson":
        # One JSON object per row, keys in the view's column order, built by DuckDB.
        cursor = con.execute(f"select cast(to_json(view_row) as varchar) from ({sql}) as view_row")
        count = 0
        for (line,) in _fetch(cursor):
            stream.write(line + "\n")
            count += 1
        return count
    return _write_rows(_fetch(con.execute(sql)), compiled, fmt, stream)


def run_files(view: View | dict, inputs: list[Path], fmt: str = "ndjson",
              out_path: Path | None = None, stream: IO[str] | None = None) -> RunResult:
    import duckdb

    _check_format(fmt, out_path)
    compiled = compile_view(view, "duckdb", Source("resources"))
    con = duckdb.connect()
    try:
        loaded = load_resources(con, inputs)
        rows = _guarded(lambda: _duckdb_out(con, compiled.sql, compiled, fmt, out_path,
                                            stream or sys.stdout))
    finally:
        con.close()
    return RunResult(rows, compiled.names, loaded)


def run_warehouse(settings: Settings, view: View | dict, fmt: str = "ndjson",
                  out_path: Path | None = None, stream: IO[str] | None = None) -> RunResult:
    from fhirflow.views.connect import duckdb_connection, snowflake_connection

    _check_format(fmt, out_path)
    dialect = settings.warehouse
    compiled = compile_view(view, dialect, Source("resources"))
    table = "staging.base_fhir_entries"
    prefix = _NEWEST.format(table=table, type="'" + compiled.view.resource + "'")
    sql = prefix + compiled.sql
    con = duckdb_connection(settings) if dialect == "duckdb" else snowflake_connection(settings)
    try:
        if dialect == "duckdb":
            rows = _guarded(lambda: _duckdb_out(con, sql, compiled, fmt, out_path,
                                                stream or sys.stdout))
        else:
            rows = _guarded(lambda: _snowflake_out(con, sql, compiled, fmt, out_path,
                                                   stream or sys.stdout))
    finally:
        con.close()
    return RunResult(rows, compiled.names)


def _snowflake_out(con: Any, sql: str, compiled: CompiledView, fmt: str, out_path: Path | None,
                   stream: IO[str]) -> int:
    cursor = con.cursor()
    try:
        cursor.execute(sql)
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            kinds = [c.kind for c in compiled.columns]
            records = [{n: _parquet_value(decode(v, k), k)
                        for n, v, k in zip(compiled.names, row, kinds, strict=True)}
                       for row in _fetch(cursor)]
            assert out_path is not None
            pq.write_table(pa.Table.from_pylist(records), str(out_path))
            return len(records)
        if out_path is not None:
            with out_path.open("w", encoding="utf-8", newline="") as handle:
                return _write_rows(_fetch(cursor), compiled, fmt, handle)
        return _write_rows(_fetch(cursor), compiled, fmt, stream)
    finally:
        cursor.close()


def _parquet_value(value: Any, kind: str) -> Any:
    return json.dumps(value) if kind in ("json", "list") and value is not None else value


def _check_format(fmt: str, out_path: Path | None) -> None:
    if fmt not in FORMATS:
        raise FhirflowError(f"--format must be one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out_path is None:
        raise FhirflowError("--format parquet writes a file: give it with --out FILE")


def _guarded(action: Any) -> int:
    try:
        return action()
    except (FhirflowError, BrokenPipeError):
        raise
    except Exception as exc:  # noqa: BLE001 - the database's error for the view's query
        message = first_line(exc)
        if "base_fhir_entries" in message.lower():
            raise FhirflowError("the warehouse has no staging.base_fhir_entries yet; run "
                                "`fhirflow transform` (or give --input)") from None
        raise FhirflowError(f"the view failed: {message}") from None
