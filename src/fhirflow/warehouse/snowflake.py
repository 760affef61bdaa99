"""RAW layer on Snowflake (production): COPY INTO from an external S3 stage.

One batch, in order:

1. the batch's files go into a session temp table (FHIRFLOW_BATCH_FILES);
2. the files' JSON reaches the session temp table FHIRFLOW_INCOMING, either by
   `COPY INTO ... FILES = (...) ON_ERROR = CONTINUE FORCE = TRUE` from the external stage
   (mode "copy", the default) or by the loader fetching each object and inserting its text for
   TRY_PARSE_JSON (mode "insert": no stage needed; the only mode fakesnow can run). COPY's
   per-file result rows go to FHIRFLOW_COPY_RESULT;
3. one SQL statement classifies every file of the batch (loaded once, or the reason not);
4. BEGIN; insert the good bundles into RAW.FHIR_BUNDLES with an anti-join on OBJECT_KEY (so
   a file is in RAW once even though FORCE = TRUE bypasses COPY's own load history); insert
   the bad ones into RAW.LOAD_ERRORS; insert the RAW.LOAD_WATERMARK row; COMMIT.

COPY goes into a temp table rather than straight into RAW.FHIR_BUNDLES because COPY cannot
filter (no WHERE, no join): deduplication and the Bundle check need a second statement, and
RAW must only ever see the result of the whole transaction.

All SQL text lives in the constants and functions below so tests can check it as text.
Parameters use qmark binding (server-side), which also carries bundles larger than the 1 MB
limit of a SQL statement's text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fhirflow.errors import ConfigError, FhirflowError
from fhirflow.store import ObjectMissing, ObjectStore, StoredObject
from fhirflow.warehouse import MODEL_SCHEMAS, BatchResult, LoadRecord, Rejected, utcnow

if TYPE_CHECKING:
    from fhirflow.config import Settings

RAW = "RAW"
FILE_FORMAT = f"{RAW}.FHIR_JSON"
# Snowflake's COPY accepts at most 1000 names in FILES = (...).
MAX_FILES_PER_COPY = 1000
_ERROR_TEXT_LIMIT = 1000

DDL: tuple[str, ...] = (
    f"create schema if not exists {RAW}",
    f"""create table if not exists {RAW}.FHIR_BUNDLES (
    OBJECT_KEY   varchar not null,
    BUNDLE       variant not null,
    BUNDLE_TYPE  varchar,
    FILE_SIZE    number(38, 0) not null,
    CONTENT_HASH varchar not null,
    LOAD_ID      varchar not null,
    LOADED_AT    timestamp_ntz not null,
    constraint FHIR_BUNDLES_PK primary key (OBJECT_KEY)
)""",
    f"""create table if not exists {RAW}.LOAD_WATERMARK (
    LOAD_ID      varchar not null,
    STARTED_AT   timestamp_ntz not null,
    FINISHED_AT  timestamp_ntz not null,
    FILES_SEEN   number(38, 0) not null,
    FILES_LOADED number(38, 0) not null,
    FILES_FAILED number(38, 0) not null,
    BYTES_LOADED number(38, 0) not null,
    WATERMARK    varchar,
    STATUS       varchar not null,
    constraint LOAD_WATERMARK_PK primary key (LOAD_ID)
)""",
    f"""create table if not exists {RAW}.LOAD_ERRORS (
    LOAD_ID    varchar not null,
    OBJECT_KEY varchar not null,
    FILE_SIZE  number(38, 0),
    REASON     varchar not null,
    FAILED_AT  timestamp_ntz not null
)""",
)

# STRIP_OUTER_ARRAY = FALSE: a file is one document; an array is "not a Bundle", not many rows.
FILE_FORMAT_DDL = (
    f"create file format if not exists {FILE_FORMAT} type = json "
    "strip_outer_array = false replace_invalid_characters = false"
)

# Session temp tables (unqualified: temp tables live in the session's current schema).
BATCH_TABLES: tuple[str, ...] = (
    "create or replace temporary table FHIRFLOW_BATCH_FILES "
    "(OBJECT_KEY varchar, STAGE_PATH varchar, FILE_SIZE number(38, 0))",
    "create or replace temporary table FHIRFLOW_INCOMING "
    "(FILENAME varchar, BUNDLE variant, CONTENT_HASH varchar)",
    "create or replace temporary table FHIRFLOW_COPY_RESULT (FILE varchar, STATUS varchar, "
    "ROWS_PARSED number(38, 0), ROWS_LOADED number(38, 0), ERRORS_SEEN number(38, 0), "
    "FIRST_ERROR varchar)",
    "create or replace temporary table FHIRFLOW_REJECTED "
    "(OBJECT_KEY varchar, FILE_SIZE number(38, 0), REASON varchar)",
    "create or replace temporary table FHIRFLOW_INCOMING_TEXT "
    "(FILENAME varchar, TEXT varchar, CONTENT_HASH varchar)",
)

INSERT_BATCH_FILE = "insert into FHIRFLOW_BATCH_FILES values (?, ?, ?)"
INSERT_COPY_RESULT = "insert into FHIRFLOW_COPY_RESULT values (?, ?, ?, ?, ?, ?)"
INSERT_REJECTED = "insert into FHIRFLOW_REJECTED values (?, ?, ?)"
INSERT_TEXT = "insert into FHIRFLOW_INCOMING_TEXT values (?, ?, ?)"

# Mode "insert": parse inside Snowflake; unparseable text becomes a per-file error row the
# same shape as COPY's, so one classification serves both modes.
PARSE_TEXT: tuple[str, ...] = (
    """insert into FHIRFLOW_INCOMING (FILENAME, BUNDLE, CONTENT_HASH)
select FILENAME, try_parse_json(TEXT), CONTENT_HASH
from FHIRFLOW_INCOMING_TEXT
where TEXT <> '' and try_parse_json(TEXT) is not null""",
    """insert into FHIRFLOW_COPY_RESULT
select FILENAME, 'LOAD_FAILED', 1, 0, 1, 'invalid JSON (malformed or truncated)'
from FHIRFLOW_INCOMING_TEXT
where TEXT <> '' and try_parse_json(TEXT) is null""",
)

# The key of a loaded row: COPY reports METADATA$FILENAME and the result's FILE relative to
# the stage or as a full URL depending on the stage; matching on the stage-relative path as a
# suffix works for both.
CLASSIFY = """create or replace temporary table FHIRFLOW_CLASSIFIED as
with matched as (
    select f.OBJECT_KEY, i.BUNDLE, i.CONTENT_HASH
    from FHIRFLOW_BATCH_FILES as f
    join FHIRFLOW_INCOMING as i
        on i.FILENAME = f.STAGE_PATH or endswith(i.FILENAME, '/' || f.STAGE_PATH)
),
rows_per_file as (
    select OBJECT_KEY, count(*) as N_ROWS
    from matched
    group by OBJECT_KEY
),
copy_errors as (
    select f.OBJECT_KEY, max(coalesce(c.FIRST_ERROR, c.STATUS)) as FIRST_ERROR
    from FHIRFLOW_BATCH_FILES as f
    join FHIRFLOW_COPY_RESULT as c
        on c.FILE = f.STAGE_PATH or endswith(c.FILE, '/' || f.STAGE_PATH)
    where c.STATUS <> 'LOADED' or c.ERRORS_SEEN > 0
    group by f.OBJECT_KEY
)
select
    f.OBJECT_KEY,
    f.FILE_SIZE,
    m.BUNDLE,
    m.CONTENT_HASH,
    case
        when f.FILE_SIZE = 0 then 'empty file'
        when e.OBJECT_KEY is not null then e.FIRST_ERROR
        when r.N_ROWS is null then 'no JSON document in the file'
        when r.N_ROWS > 1 then 'more than one JSON document in the file'
        when m.BUNDLE:resourceType::string is distinct from 'Bundle'
            then 'valid JSON but not a FHIR Bundle (resourceType is not "Bundle")'
    end as REASON
from FHIRFLOW_BATCH_FILES as f
left join rows_per_file as r on r.OBJECT_KEY = f.OBJECT_KEY
left join copy_errors as e on e.OBJECT_KEY = f.OBJECT_KEY
left join matched as m on m.OBJECT_KEY = f.OBJECT_KEY and r.N_ROWS = 1
where f.OBJECT_KEY not in (select OBJECT_KEY from FHIRFLOW_REJECTED)"""

# Inside BEGIN ... COMMIT. The anti-joins make the batch idempotent.
INSERT_BUNDLES = f"""insert into {RAW}.FHIR_BUNDLES
    (OBJECT_KEY, BUNDLE, BUNDLE_TYPE, FILE_SIZE, CONTENT_HASH, LOAD_ID, LOADED_AT)
select c.OBJECT_KEY, c.BUNDLE, c.BUNDLE:type::string, c.FILE_SIZE, c.CONTENT_HASH, ?, ?
from FHIRFLOW_CLASSIFIED as c
where c.REASON is null
    and c.OBJECT_KEY not in (select OBJECT_KEY from {RAW}.FHIR_BUNDLES)"""

INSERT_ERRORS = f"""insert into {RAW}.LOAD_ERRORS (LOAD_ID, OBJECT_KEY, FILE_SIZE, REASON, FAILED_AT)
select ?, OBJECT_KEY, FILE_SIZE, REASON, ?
from (
    select OBJECT_KEY, FILE_SIZE, REASON from FHIRFLOW_CLASSIFIED where REASON is not null
    union all
    select OBJECT_KEY, FILE_SIZE, REASON from FHIRFLOW_REJECTED
) as bad
where OBJECT_KEY not in (select OBJECT_KEY from {RAW}.LOAD_ERRORS)
    and OBJECT_KEY not in (select OBJECT_KEY from {RAW}.FHIR_BUNDLES)"""

BATCH_TOTALS = f"""select count(*), coalesce(sum(FILE_SIZE), 0)
from {RAW}.FHIR_BUNDLES where LOAD_ID = ?"""

BATCH_ERRORS = f"""select OBJECT_KEY, FILE_SIZE, REASON
from {RAW}.LOAD_ERRORS where LOAD_ID = ? order by OBJECT_KEY"""

INSERT_WATERMARK = f"""insert into {RAW}.LOAD_WATERMARK
    (LOAD_ID, STARTED_AT, FINISHED_AT, FILES_SEEN, FILES_LOADED, FILES_FAILED, BYTES_LOADED,
     WATERMARK, STATUS)
values (?, ?, ?, ?, ?, ?, ?, ?, 'complete')"""

LAST_WATERMARK = f"select max(WATERMARK) from {RAW}.LOAD_WATERMARK where STATUS = 'complete'"

RECENT_LOADS = f"""select LOAD_ID, STARTED_AT, FINISHED_AT, FILES_SEEN, FILES_LOADED, FILES_FAILED,
    BYTES_LOADED, WATERMARK, STATUS
from {RAW}.LOAD_WATERMARK order by LOAD_ID desc limit ?"""

RAW_COUNTS = f"""select (select count(*) from {RAW}.FHIR_BUNDLES),
    (select count(*) from {RAW}.LOAD_ERRORS),
    (select count(*) from {RAW}.LOAD_WATERMARK)"""


def _literal(text: str) -> str:
    """A Snowflake string literal (COPY's FILES list and stage DDL take no bind variables)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def known_keys_sql(n: int) -> str:
    marks = ", ".join("?" * n)
    return (
        f"select OBJECT_KEY from {RAW}.FHIR_BUNDLES where OBJECT_KEY in ({marks}) "
        f"union select OBJECT_KEY from {RAW}.LOAD_ERRORS where OBJECT_KEY in ({marks})"
    )


def stage_url(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix.strip('/')}/" if prefix.strip("/") else f"s3://{bucket}/"


def stage_sql(
    stage: str,
    url: str,
    *,
    storage_integration: str | None = None,
    aws_key_id: str | None = None,
    aws_secret_key: str | None = None,
) -> str:
    """CREATE STAGE on the bucket. Contains the secret key when keys are used: never log it."""
    if storage_integration:
        auth = f"storage_integration = {storage_integration}"
    elif aws_key_id and aws_secret_key:
        auth = (
            f"credentials = (aws_key_id = {_literal(aws_key_id)} "
            f"aws_secret_key = {_literal(aws_secret_key)})"
        )
    else:
        raise ConfigError(
            "the Snowflake stage needs SNOWFLAKE_STORAGE_INTEGRATION or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or set FHIRFLOW_SNOWFLAKE_LOAD_MODE=insert)"
        )
    return (
        f"create stage if not exists {RAW}.{stage} url = {_literal(url)} {auth} "
        f"file_format = {FILE_FORMAT}"
    )


def copy_sql(stage: str, stage_paths: list[str]) -> str:
    """COPY the batch's files from the stage into the session's FHIRFLOW_INCOMING table."""
    if not stage_paths or len(stage_paths) > MAX_FILES_PER_COPY:
        raise ValueError(f"COPY takes 1..{MAX_FILES_PER_COPY} files, got {len(stage_paths)}")
    files = ", ".join(_literal(p) for p in stage_paths)
    return f"""copy into FHIRFLOW_INCOMING (FILENAME, BUNDLE, CONTENT_HASH)
from (
    select metadata$filename, $1, metadata$file_content_key
    from @{RAW}.{stage}
)
files = ({files})
file_format = (format_name = {FILE_FORMAT})
on_error = continue
force = true"""



@contextmanager
def _quiet_connector() -> Iterator[None]:
    """The connector logs statement text at INFO; keep a statement with keys out of logs."""
    logger = logging.getLogger("snowflake.connector")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _redacted(message: str, statement: str) -> str:
    """The message without any string literal of the statement (keys, in stage DDL), which a
    compilation error can quote back."""
    for literal in re.findall(r"'((?:[^'\\]|\\.)*)'", statement):
        if len(literal) >= 8:
            message = message.replace(literal, "***")
    return message


def _sf_message(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    return str(msg).strip().splitlines()[0][:300] if str(msg).strip() else type(exc).__name__


class SnowflakeWarehouse:
    """The Warehouse Protocol on Snowflake through snowflake-connector-python."""

    def __init__(
        self,
        connection: Any,
        *,
        description: str,
        mode: str = "copy",
        stage: str = "FHIR_BUNDLES_STAGE",
        stage_prefix: str = "",
        stage_ddl: str | None = None,
        bucket: str | None = None,
        fetch_workers: int = 8,
    ) -> None:
        if mode not in {"copy", "insert"}:
            raise ConfigError(f"FHIRFLOW_SNOWFLAKE_LOAD_MODE: use 'copy' or 'insert', not {mode!r}")
        self.con = connection
        self.description = description
        self.mode = mode
        self.stage = stage
        # Object keys relative to the stage URL (the stage sits at s3://bucket/<prefix>/).
        self.stage_prefix = f"{stage_prefix.strip('/')}/" if stage_prefix.strip("/") else ""
        self._stage_ddl = stage_ddl
        self.bucket = bucket
        self.fetch_workers = fetch_workers

    @classmethod
    def from_settings(cls, settings: Settings) -> SnowflakeWarehouse:
        import snowflake.connector

        if not settings.snowflake_account or not settings.snowflake_user:
            raise ConfigError(
                "SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER must be set to load into Snowflake"
            )
        kwargs: dict[str, Any] = {
            "account": settings.snowflake_account,
            "user": settings.snowflake_user,
            "password": (
                settings.snowflake_password.get_secret_value()
                if settings.snowflake_password else None
            ),
            "database": settings.snowflake_database,
            "warehouse": settings.snowflake_warehouse,
            "schema": RAW,
            "role": settings.snowflake_role,
            "paramstyle": "qmark",
            "login_timeout": 30,
            "network_timeout": 120,
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
        }
        for name in ("host", "port", "protocol"):
            value = getattr(settings, f"snowflake_{name}")
            if value is not None:
                kwargs[name] = value
        try:
            connection = snowflake.connector.connect(**kwargs)
        except snowflake.connector.errors.Error as exc:
            raise FhirflowError(
                f"cannot connect to Snowflake account {settings.snowflake_account!r} as "
                f"{settings.snowflake_user!r}: {_sf_message(exc)}; check the SNOWFLAKE_* "
                "variables"
            ) from None
        stage_ddl = None
        if settings.snowflake_load_mode == "copy":
            secret = settings.aws_secret_access_key
            stage_ddl = stage_sql(
                settings.snowflake_stage,
                stage_url(settings.aws_s3_bucket, settings.aws_s3_prefix),
                storage_integration=settings.snowflake_storage_integration,
                aws_key_id=settings.aws_access_key_id,
                aws_secret_key=secret.get_secret_value() if secret else None,
            )
        return cls(
            connection,
            description=f"Snowflake {settings.snowflake_account}/{settings.snowflake_database}",
            mode=settings.snowflake_load_mode,
            stage=settings.snowflake_stage,
            stage_prefix=settings.aws_s3_prefix,
            stage_ddl=stage_ddl,
            bucket=settings.aws_s3_bucket,
            fetch_workers=settings.upload_workers,
        )

    # -- plumbing -------------------------------------------------------------------------

    def _execute(self, sql: str, params: Any = None) -> Any:
        import snowflake.connector

        cur = self.con.cursor()
        try:
            cur.execute(sql, params)
        except snowflake.connector.errors.Error as exc:
            first = " ".join(sql.split())[:60]
            raise FhirflowError(f"Snowflake rejected `{first}...`: {_sf_message(exc)}") from None
        return cur

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.con.cursor().executemany(sql, rows)

    def close(self) -> None:
        self.con.close()

    # -- the Protocol ---------------------------------------------------------------------

    def create_tables(self) -> None:
        for statement in DDL:
            self._execute(statement)
        if self.mode == "copy":
            self._execute(FILE_FORMAT_DDL)
            if self._stage_ddl:
                with _quiet_connector():
                    try:
                        self.con.cursor().execute(self._stage_ddl)
                    except Exception as exc:  # noqa: BLE001 - the statement holds secrets
                        message = _redacted(_sf_message(exc), self._stage_ddl)
                        raise FhirflowError(
                            f"cannot create stage {RAW}.{self.stage}: {message}"
                        ) from None

    def last_watermark(self) -> str | None:
        row = self._execute(LAST_WATERMARK).fetchone()
        return row[0] if row else None

    def known_keys(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            rows = self._execute(known_keys_sql(len(chunk)), chunk + chunk).fetchall()
            found |= {r[0] for r in rows}
        return found

    def load_batch(
        self,
        load_id: str,
        objects: list[StoredObject],
        store: ObjectStore,
        *,
        rejected: list[Rejected],
        started_at: datetime,
    ) -> BatchResult:
        result = BatchResult(load_id=load_id, files_seen=len(objects) + len(rejected))
        for statement in BATCH_TABLES:
            self._execute(statement)
        self._executemany(
            INSERT_BATCH_FILE,
            [(o.key, o.key.removeprefix(self.stage_prefix), o.size) for o in objects],
        )
        rejected = list(rejected)
        if objects:
            if self.mode == "copy":
                self._check_store(store)
                for i in range(0, len(objects), MAX_FILES_PER_COPY):
                    chunk = objects[i : i + MAX_FILES_PER_COPY]
                    self._copy(chunk)
            else:
                rejected += self._insert_texts(objects, store)
        self._executemany(INSERT_REJECTED, [(r.key, r.size, r.reason) for r in rejected])
        self._execute(CLASSIFY)

        watermark = max([o.key for o in objects] + [r.key for r in rejected], default=None)
        now = utcnow()
        self._execute("begin")
        try:
            self._execute(INSERT_BUNDLES, (load_id, now))
            self._execute(INSERT_ERRORS, (load_id, now))
            loaded, size = self._execute(BATCH_TOTALS, (load_id,)).fetchone()
            errors = self._execute(BATCH_ERRORS, (load_id,)).fetchall()
            result.files_loaded = int(loaded)
            result.bytes_loaded = int(size or 0)
            result.errors = [Rejected(k, int(s) if s is not None else 0, r) for k, s, r in errors]
            result.files_failed = len(result.errors)
            result.watermark = watermark
            self._insert_watermark(result.watermark_row(started_at))
            self._execute("commit")
        except BaseException:
            self.con.cursor().execute("rollback")
            raise
        return result

    def _insert_watermark(self, row: tuple[Any, ...]) -> None:
        self._execute(INSERT_WATERMARK, row)

    def _check_store(self, store: ObjectStore) -> None:
        if getattr(store, "bucket", None) != self.bucket:
            raise ConfigError(
                "COPY INTO reads the files from the S3 stage: use --store s3 with "
                "AWS_S3_BUCKET, or FHIRFLOW_SNOWFLAKE_LOAD_MODE=insert"
            )

    def _copy(self, objects: list[StoredObject]) -> None:
        cur = self._execute(copy_sql(self.stage, [o.key.removeprefix(self.stage_prefix)
                                                  for o in objects]))
        columns = [d[0].lower() for d in cur.description or []]
        rows = []
        for values in cur.fetchall():
            row = dict(zip(columns, values, strict=False))
            if "file" not in row:
                continue  # "Copy executed with 0 files processed."
            error = row.get("first_error")
            rows.append((
                row["file"], row.get("status"), row.get("rows_parsed"), row.get("rows_loaded"),
                row.get("errors_seen"), str(error)[:_ERROR_TEXT_LIMIT] if error else None,
            ))
        self._executemany(INSERT_COPY_RESULT, rows)

    def _insert_texts(self, objects: list[StoredObject], store: ObjectStore) -> list[Rejected]:
        """Mode insert: fetch objects (bounded threads), send their text for TRY_PARSE_JSON."""

        def fetch(obj: StoredObject) -> bytes | None:
            try:
                return store.get_bytes(obj.key)
            except ObjectMissing:
                return None

        rejected: list[Rejected] = []
        rows: list[tuple[str, str, str]] = []
        pending_bytes = 0
        with ThreadPoolExecutor(max_workers=max(1, min(self.fetch_workers, len(objects)))) as pool:
            for obj, data in zip(objects, pool.map(fetch, objects), strict=True):
                if data is None:
                    rejected.append(Rejected(obj.key, obj.size,
                                             "listed in the object store but gone when fetched"))
                    continue
                if not data:
                    continue  # classified as 'empty file' from its size
                if data.startswith(b"\xef\xbb\xbf"):
                    rejected.append(Rejected(obj.key, obj.size,
                                             "starts with a byte-order mark (not allowed in JSON)"))
                    continue
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    rejected.append(Rejected(obj.key, obj.size, "not UTF-8 text"))
                    continue
                path = obj.key.removeprefix(self.stage_prefix)
                rows.append((path, text, hashlib.sha256(data).hexdigest()))
                pending_bytes += len(data)
                if pending_bytes > 32 * 1024 * 1024:
                    self._executemany(INSERT_TEXT, rows)
                    rows, pending_bytes = [], 0
        self._executemany(INSERT_TEXT, rows)
        for statement in PARSE_TEXT:
            self._execute(statement)
        return rejected

    def recent_loads(self, limit: int = 5) -> list[LoadRecord]:
        rows = self._execute(RECENT_LOADS, (limit,)).fetchall()
        return [
            LoadRecord(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]), r[7], r[8])
            for r in rows
        ]

    def raw_counts(self) -> dict[str, int]:
        row = self._execute(RAW_COUNTS).fetchone()
        return {"bundles": int(row[0]), "errors": int(row[1]), "loads": int(row[2])}

    def model_counts(self) -> dict[str, dict[str, int]]:
        schemas = [s.upper() for s in MODEL_SCHEMAS]
        marks = ", ".join("?" * len(schemas))
        relations = self._execute(
            "select table_schema, table_name from information_schema.tables "
            f"where upper(table_schema) in ({marks}) order by 1, 2",
            schemas,
        ).fetchall()
        counts: dict[str, dict[str, int]] = {schema: {} for schema in MODEL_SCHEMAS}
        for schema, name in relations:
            (n,) = self._execute(f'select count(*) from "{schema}"."{name}"').fetchone()
            counts[schema.lower()][name.lower()] = int(n)
        return counts

    def query(self, sql: str) -> list[dict[str, Any]]:
        cur = self._execute(sql)
        names = [d[0].lower() for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
