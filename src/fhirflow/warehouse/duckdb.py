"""RAW layer on a DuckDB file (the embedded default).

Files are parsed by DuckDB itself (`read_blob` + JSON functions for bundles, blocks of whole
lines for NDJSON), never by Python's json module: DuckDB is several times faster, and memory
stays bounded to one batch of bundles or one block of lines. The SQL is in `duckdb_sql.py`.
"""

from __future__ import annotations

import contextlib
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from fhirflow.errors import FhirflowError, file_advice, first_line
from fhirflow.warehouse import (
    MODEL_SCHEMAS,
    BatchFile,
    BatchResult,
    FileAccess,
    LoadRecord,
    Rejected,
    utcnow,
)
from fhirflow.warehouse import duckdb_sql as sql
from fhirflow.warehouse.duckdb_load import (
    _Batch,
    detach_scratch,
    migrate,
    prepare,
    scratch_name,
)


class DuckDBWarehouse:
    """The Warehouse Protocol on a DuckDB file; it reads each batch file from a local path."""

    reads: FileAccess = "path"

    def __init__(self, path: Path, *, read_only: bool = False,
                 memory_limit: str = "1.5GB") -> None:
        self.path = path
        self.description = f"DuckDB {path}"
        if read_only and not path.exists():
            raise FhirflowError(f"no warehouse at {path} yet; run `fhirflow load` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            raise FhirflowError(
                f"cannot open {path}: {first_line(exc)} ({file_advice(str(exc))})"
            ) from None
        if not read_only:
            # DuckDB keeps written table blocks cached up to 80% of RAM by default, so the
            # load's RSS would grow with the corpus; a cap keeps it flat (blocks are on disk,
            # a batch larger than the cap spills). FHIRFLOW_DUCKDB_MEMORY_LIMIT, the same
            # setting dbt's profile reads.
            self.con.execute(f"set memory_limit = '{memory_limit}'")

    def close(self) -> None:
        self.con.close()

    def cursor(self) -> Any:
        return self.con.cursor()

    def create_tables(self) -> None:
        self.con.execute(sql.DDL)
        migrate(self.con)

    def last_watermark(self) -> str | None:
        row = self.con.execute(
            "select max(watermark) from raw.load_watermark where status = 'complete'"
        ).fetchone()
        return row[0] if row else None

    def known_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        rows = self.con.execute(
            """
            select k from unnest($keys::varchar[]) as t(k)
            where k in (select object_key from raw.fhir_bundles)
               or k in (select object_key from raw.load_errors)
            """,
            {"keys": keys},
        ).fetchall()
        return {r[0] for r in rows}

    def load_batch(
        self,
        load_id: str,
        files: list[BatchFile],
        *,
        rejected: list[Rejected],
        started_at: datetime,
    ) -> BatchResult:
        result = BatchResult(load_id=load_id, files_seen=len(files) + len(rejected))
        watermark = max([f.key for f in files] + [r.key for r in rejected], default=None)
        con = self.con
        scratch = scratch_name(load_id)
        with tempfile.TemporaryDirectory(prefix="fhirflow-duckdb-") as tmp:
            try:
                # Parsed outside the transaction (on connections of their own, so on every
                # core), into scratch tables RAW never sees; files RAW holds already are
                # not parsed (and checked again inside, where it counts).
                known = self.known_keys([f.key for f in files])
                prepared = prepare(con, [f for f in files if f.key not in known], Path(tmp),
                                   scratch)
                con.execute("begin transaction")
                batch = _Batch(con, load_id, utcnow())
                # A batch handed in twice (a retried Airflow task, a stale list) adds
                # nothing the first one committed.
                known = self.known_keys([f.key for f in files] + [r.key for r in rejected])
                batch.reject([r for r in rejected if r.key not in known])
                batch.load(prepared, known)
                batch.finish(result)
                result.watermark = watermark
                self._insert_watermark(result.watermark_row(started_at))
                con.execute("commit")
            except BaseException as exc:
                # After a failed COMMIT (disk full) there is no transaction left to roll
                # back; that second error must not hide the first.
                with contextlib.suppress(duckdb.Error):
                    con.execute("rollback")
                if isinstance(exc, duckdb.Error):
                    raise FhirflowError(
                        f"loading batch {load_id} into {self.path} failed: {first_line(exc)} "
                        f"(nothing of the batch was committed; {file_advice(str(exc))})"
                    ) from exc
                raise
            finally:
                with contextlib.suppress(duckdb.Error):
                    con.execute(sql.DROP_BATCH_TABLES)
                with contextlib.suppress(duckdb.Error):
                    detach_scratch(con, scratch)
        return result

    def _insert_watermark(self, row: tuple[object, ...]) -> None:
        """The status row that makes the load complete; inside load_batch's transaction."""
        self.con.execute(
            "insert into raw.load_watermark values (?, ?, ?, ?, ?, ?, ?, ?, 'complete')", row
        )

    def recent_loads(self, limit: int = 5) -> list[LoadRecord]:
        rows = self.con.execute(
            "select * from raw.load_watermark order by load_id desc limit ?", [limit]
        ).fetchall()
        return [LoadRecord(*row) for row in rows]

    def raw_counts(self) -> dict[str, int]:
        row = self.con.execute(
            """
            select (select count(*) from raw.fhir_bundles),
                   (select count(*) from raw.load_errors),
                   (select count(*) from raw.load_watermark),
                   (select count(*) from raw.fhir_resources),
                   (select count(*) from raw.entry_errors)
            """
        ).fetchone()
        return {"bundles": row[0], "errors": row[1], "loads": row[2], "resources": row[3],
                "entry_errors": row[4]}

    def model_counts(self) -> dict[str, dict[str, int]]:
        relations = self.con.execute(
            """
            select table_schema, table_name from information_schema.tables
            where table_schema in (select unnest($schemas::varchar[]))
            order by table_schema, table_name
            """,
            {"schemas": list(MODEL_SCHEMAS)},
        ).fetchall()
        counts: dict[str, dict[str, int]] = {schema: {} for schema in MODEL_SCHEMAS}
        for schema, name in relations:
            (n,) = self.con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
            counts[schema][name] = n
        return counts

    def query(self, sql: str) -> list[dict[str, Any]]:
        try:
            cur = self.con.execute(sql)
        except duckdb.Error as exc:
            first = " ".join(sql.split())[:60]
            raise FhirflowError(f"DuckDB rejected `{first}...`: {first_line(exc)}") from None
        names = [d[0].lower() for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
