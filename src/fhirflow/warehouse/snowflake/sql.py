"""Snowflake SQL text of the RAW layer: DDL, the batch's session tables, classification, the
anti-join inserts, COPY and stage statements. Text only, so tests can check it as text; the
order they run in is in `warehouse.py`.

Parameters use qmark binding (server-side), which also carries bundles larger than the 1 MB
limit of a SQL statement's text.
"""

from __future__ import annotations

from fhirflow.errors import ConfigError
from fhirflow.warehouse import reasons
from fhirflow.warehouse.reasons import sql_literal

RAW = "RAW"
FILE_FORMAT = f"{RAW}.FHIR_JSON"
# Snowflake's COPY accepts at most 1000 names in FILES = (...).
MAX_FILES_PER_COPY = 1000
# COPY's first error per file is cut to this many characters in FHIRFLOW_COPY_RESULT.
ERROR_TEXT_LIMIT = 1000

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
    f"""insert into FHIRFLOW_COPY_RESULT
select FILENAME, 'LOAD_FAILED', 1, 0, 1, {sql_literal(reasons.INVALID_JSON)}
from FHIRFLOW_INCOMING_TEXT
where TEXT <> '' and try_parse_json(TEXT) is null""",
)

# The key of a loaded row: COPY reports METADATA$FILENAME and the result's FILE relative to
# the stage or as a full URL depending on the stage; matching on the stage-relative path as a
# suffix works for both.
CLASSIFY = f"""create or replace temporary table FHIRFLOW_CLASSIFIED as
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
        when f.FILE_SIZE = 0 then {sql_literal(reasons.EMPTY)}
        when e.OBJECT_KEY is not null then e.FIRST_ERROR
        when r.N_ROWS is null then {sql_literal(reasons.NO_DOCUMENT)}
        when r.N_ROWS > 1 then {sql_literal(reasons.MANY_DOCUMENTS)}
        when m.BUNDLE:resourceType::string is distinct from 'Bundle'
            then {sql_literal(reasons.NOT_A_BUNDLE)}
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

INSERT_ERRORS = f"""insert into {RAW}.LOAD_ERRORS
    (LOAD_ID, OBJECT_KEY, FILE_SIZE, REASON, FAILED_AT)
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
