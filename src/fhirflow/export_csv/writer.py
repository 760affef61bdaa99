"""Writing the CSV tables: one query per table over the warehouse layer's own connection,
rows formatted in batches, each file written atomically (a failed export leaves no half file).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from fhirflow.atomic import write_atomic_with
from fhirflow.errors import FhirflowError, first_line
from fhirflow.export_csv.formats import row_formatter
from fhirflow.export_csv.specs import TABLE_NAMES, TABLES, Table, table_sql
from fhirflow.warehouse import MODEL_SCHEMAS, open_warehouse

if TYPE_CHECKING:
    from fhirflow.config import Settings


@dataclass
class ExportResult:
    out_dir: Path
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def export_tables(cursor: Any, out_dir: Path, *, schemas: dict[str, str] | None = None,
                  tables: Sequence[str] | None = None, batch_rows: int = 10_000) -> ExportResult:
    """Write the CSV tables through a DB-API cursor on the warehouse."""
    schemas = schemas or {name: name for name in MODEL_SCHEMAS}
    wanted = set(tables or TABLE_NAMES)
    unknown = wanted - set(TABLE_NAMES)
    if unknown:
        raise FhirflowError(f"unknown table(s) {', '.join(sorted(unknown))}; "
                            f"choose from {', '.join(TABLE_NAMES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = ExportResult(out_dir=out_dir)
    for table in TABLES:
        if table.name not in wanted:
            continue
        try:
            cursor.execute(table_sql(table, schemas))
        except Exception as exc:  # noqa: BLE001 - the drivers' error types differ per warehouse
            raise FhirflowError(f"cannot read {table.name} from the warehouse "
                                f"({first_line(exc)}); run `fhirflow transform` first") from None
        result.rows[table.name] = _write_table(out_dir / f"{table.name}.csv", table, cursor,
                                               batch_rows)
    result.seconds = time.perf_counter() - started
    return result


def _write_table(path: Path, table: Table, cursor: Any, batch_rows: int) -> int:
    """The rows of the executed query as one CSV file; the number of rows."""
    format_row = row_formatter(table, [d[0].lower() for d in cursor.description])
    count = 0

    def fill(handle: BinaryIO) -> None:
        nonlocal count
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(table.headers)
        for batch in _batches(cursor, batch_rows):
            writer.writerows(format_row(row) for row in batch)
            count += len(batch)
        text.flush()
        text.detach()  # the binary file stays open for the fsync

    write_atomic_with(path, fill)
    return count


def _batches(cursor: Any, size: int) -> Iterator[list[tuple]]:
    while True:
        batch = cursor.fetchmany(size)
        if not batch:
            return
        yield batch


def export_csv(settings: Settings, out_dir: Path,
               tables: Sequence[str] | None = None) -> ExportResult:
    """Export from the configured warehouse (DuckDB file or Snowflake) over its connection."""
    if settings.warehouse == "duckdb" and not settings.duckdb_path.exists():
        raise FhirflowError(f"no warehouse at {settings.duckdb_path}; run `fhirflow run` "
                            "or `fhirflow transform` first")
    warehouse = open_warehouse(settings, read_only=True)
    try:
        return export_tables(warehouse.cursor(), out_dir, tables=tables)
    finally:
        warehouse.close()
