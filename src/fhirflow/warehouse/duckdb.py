"""RAW layer on a DuckDB file (the embedded default).

Bundles are parsed by DuckDB itself (`read_blob` + JSON functions), never by Python's json
module: DuckDB is several times faster and keeps memory bounded to one batch.
"""

from __future__ import annotations

import contextlib
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
    reasons,
    utcnow,
)
from fhirflow.warehouse.reasons import sql_literal

_DDL = """
create schema if not exists raw;
create table if not exists raw.fhir_bundles (
    object_key   varchar primary key,
    bundle       json not null,
    bundle_type  varchar,
    file_size    bigint not null,
    content_hash varchar not null,
    load_id      varchar not null,
    loaded_at    timestamp not null
);
create table if not exists raw.load_watermark (
    load_id      varchar primary key,
    started_at   timestamp not null,
    finished_at  timestamp not null,
    files_seen   integer not null,
    files_loaded integer not null,
    files_failed integer not null,
    bytes_loaded bigint not null,
    watermark    varchar,
    status       varchar not null
);
create table if not exists raw.load_errors (
    load_id    varchar not null,
    object_key varchar not null,
    file_size  bigint,
    reason     varchar not null,
    failed_at  timestamp not null
);
"""

# One reason per bad file; the first that applies wins. Evaluated inside DuckDB, parsing
# each file once here: `json_extract_string` with a list of paths parses the document a
# single time, and raises on invalid JSON, which `try()` turns into NULL. (The insert's cast
# to JSON is the only other parse.)
_CLASSIFY = f"""
create or replace temp table _classified as
with files as (
    select f.key, b.size, sha256(b.content) as content_hash, try(decode(b.content)) as text
    from read_blob($paths) as b
    join _keys as f on f.path = b.filename
),
parsed as (
    select
        *,
        case when text is not null and not starts_with(text, chr(65279))
            then try(json_extract_string(text, ['$.resourceType', '$.type']))
        end as fields
    from files
)
select
    key,
    size,
    content_hash,
    text,
    fields[2] as bundle_type,
    case
        when size = 0 then {sql_literal(reasons.EMPTY)}
        when text is null then {sql_literal(reasons.NOT_UTF8)}
        when starts_with(text, chr(65279)) then {sql_literal(reasons.BYTE_ORDER_MARK)}
        when fields is null then {sql_literal(reasons.INVALID_JSON)}
        when fields[1] is distinct from 'Bundle' or not starts_with(ltrim(text), '{{')
            then {sql_literal(reasons.NOT_A_BUNDLE)}
    end as reason
from parsed
"""



# `<prefix><stamp>-<seq>-<file>` (upload.object_key) minus all but the file's name.
_FILE_OF_KEY = r"^(.*/)?[0-9]{8}T[0-9]+Z-[0-9]+-"


class DuckDBWarehouse:
    """The Warehouse Protocol on a DuckDB file; it reads each batch file from a local path."""

    reads: FileAccess = "path"

    def __init__(self, path: Path, *, read_only: bool = False, memory_limit: str = "2GB") -> None:
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
            # load's RSS would grow with the corpus; a cap keeps it flat (blocks are on disk).
            # FHIRFLOW_DUCKDB_MEMORY_LIMIT; 1 GB is too little for 100-file batches.
            self.con.execute(f"set memory_limit = '{memory_limit}'")

    def close(self) -> None:
        self.con.close()

    def cursor(self) -> Any:
        return self.con.cursor()

    def create_tables(self) -> None:
        self.con.execute(_DDL)

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
        paths = [(f.key, str(_local_path(f))) for f in files]
        con = self.con
        con.execute("create or replace temp table _keys (path varchar, key varchar)")
        if paths:
            con.executemany("insert into _keys values (?, ?)", [(p, k) for k, p in paths])
            con.execute(_CLASSIFY, {"paths": [p for _, p in paths]})
        else:
            con.execute(
                "create or replace temp table _classified (key varchar, size bigint, "
                "content_hash varchar, text varchar, bundle_type varchar, reason varchar)"
            )
        con.execute("create or replace temp table _rejected "
                    "(key varchar, size bigint, reason varchar)")
        if rejected:
            con.executemany("insert into _rejected values (?, ?, ?)",
                            [(r.key, r.size, r.reason) for r in rejected])
        now = utcnow()
        watermark = max([f.key for f in files] + [r.key for r in rejected], default=None)
        con.execute("begin transaction")
        try:
            # Anti-joins: a batch handed in twice (a retried Airflow task, a stale list)
            # adds nothing the first one committed.
            loaded = con.execute(
                """
                insert into raw.fhir_bundles
                select key, text::json, bundle_type, size,
                       content_hash, $load_id, $now
                from _classified
                where reason is null
                  and key not in (select object_key from raw.fhir_bundles)
                  -- An upload that re-sent a file the store had lost (new key, same
                  -- content): skip it when RAW's latest version of that file matches.
                  and content_hash is distinct from (
                      select arg_max(b.content_hash, b.object_key) from raw.fhir_bundles as b
                      where regexp_replace(b.object_key, $name_re, '')
                          = regexp_replace(_classified.key, $name_re, ''))
                returning file_size
                """,
                {"load_id": load_id, "now": now, "name_re": _FILE_OF_KEY},
            ).fetchall()
            errors = con.execute(
                """
                insert into raw.load_errors
                select $load_id, key, size, reason, $now
                from (select key, size, reason from _classified where reason is not null
                      union all
                      select key, size, reason from _rejected)
                where key not in (select object_key from raw.load_errors)
                  and key not in (select object_key from raw.fhir_bundles)
                returning object_key, file_size, reason
                """,
                {"load_id": load_id, "now": now},
            ).fetchall()
            result.errors = sorted((Rejected(*e) for e in errors), key=lambda r: r.key)
            result.files_loaded = len(loaded)
            result.bytes_loaded = sum(r[0] for r in loaded)
            result.files_failed = len(result.errors)
            result.watermark = watermark
            self._insert_watermark(result.watermark_row(started_at))
            con.execute("commit")
        except BaseException as exc:
            # After a failed COMMIT (disk full) there is no transaction left to roll back;
            # that second error must not hide the first.
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
                con.execute("drop table if exists _classified")
                con.execute("drop table if exists _rejected")
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
                   (select count(*) from raw.load_watermark)
            """
        ).fetchone()
        return {"bundles": row[0], "errors": row[1], "loads": row[2]}

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


def _local_path(file: BatchFile) -> Path:
    if file.path is None:
        raise ValueError(f"{file.key}: DuckDB reads batch files from local paths; none given")
    return file.path
