"""Snowflake SQL text of the RAW layer: DDL, the batch's session tables, classification, the
anti-join inserts, COPY and stage statements. Text only, so tests can check it as text; the
order they run in is in `warehouse.py`.

Parameters use qmark binding (server-side), which also carries bundles larger than the 1 MB
limit of a SQL statement's text.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fhirflow.errors import ConfigError
from fhirflow.warehouse import reasons
from fhirflow.warehouse.reasons import sql_literal

# The statements name the RAW schema RAW; `in_schema` renames it (SNOWFLAKE_SCHEMA).
RAW = "RAW"
FILE_FORMAT = f"{RAW}.FHIR_TEXT"
# Snowflake's COPY accepts at most 1000 names in FILES = (...).
MAX_FILES_PER_COPY = 1000
# The largest VARCHAR and VARIANT value Snowflake stores (128 MB, "Size limits for database
# objects"); a larger file is quarantined before it reaches a statement.
MAX_OBJECT_BYTES = 128 * 1024 * 1024
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

# A whole file as one text value (no field or record delimiter, no escapes, no trimming, no
# NULL markers, the byte order mark kept), which PARSE_TEXT parses with TRY_PARSE_JSON and
# hashes, as in mode insert. Not TYPE = JSON: a COPY with a transformation from a JSON format
# stops at a file's parse error whatever ON_ERROR says ("Transforming data during a load"),
# and it has no text to take a SHA-256 of. OR REPLACE: changed options take effect.
FILE_FORMAT_DDL = (
    f"create or replace file format {FILE_FORMAT} type = csv "
    "field_delimiter = none record_delimiter = none skip_header = 0 "
    "field_optionally_enclosed_by = none escape = none escape_unenclosed_field = none "
    "trim_space = false empty_field_as_null = false null_if = () "
    "skip_byte_order_mark = false replace_invalid_characters = false encoding = 'UTF8'"
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
    # 128 MB, not the 16 MB an unsized VARCHAR holds before the 2025_07 bundle.
    f"create or replace temporary table FHIRFLOW_INCOMING_TEXT "
    f"(FILENAME varchar, TEXT varchar({MAX_OBJECT_BYTES}))",
)

INSERT_BATCH_FILE = "insert into FHIRFLOW_BATCH_FILES values (?, ?, ?)"
INSERT_COPY_RESULT = "insert into FHIRFLOW_COPY_RESULT values (?, ?, ?, ?, ?, ?)"
INSERT_REJECTED = "insert into FHIRFLOW_REJECTED values (?, ?, ?)"
INSERT_TEXT = "insert into FHIRFLOW_INCOMING_TEXT values (?, ?)"

# Both modes: each file's text (inserted by the loader, or COPYed from the stage) is parsed
# and hashed inside Snowflake; unparseable text becomes a per-file error row the same shape as
# COPY's, so one classification serves both. CONTENT_HASH is the SHA-256 of the file's bytes
# (SHA2 hashes the text's UTF-8), as on DuckDB and in the upload ledger.
PARSE_TEXT: tuple[str, ...] = (
    """insert into FHIRFLOW_INCOMING (FILENAME, BUNDLE, CONTENT_HASH)
select FILENAME, try_parse_json(TEXT), sha2(TEXT, 256)
from FHIRFLOW_INCOMING_TEXT
where TEXT <> '' and left(TEXT, 1) <> chr(65279) and try_parse_json(TEXT) is not null""",
    f"""insert into FHIRFLOW_COPY_RESULT
select FILENAME, 'LOAD_FAILED', 1, 0, 1,
    case when left(TEXT, 1) = chr(65279) then {sql_literal(reasons.BYTE_ORDER_MARK)}
        else {sql_literal(reasons.INVALID_JSON)} end
from FHIRFLOW_INCOMING_TEXT
where TEXT <> '' and (left(TEXT, 1) = chr(65279) or try_parse_json(TEXT) is null)""",
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
    (select count(*) from {RAW}.LOAD_WATERMARK)"""


def _literal(text: str) -> str:
    """A Snowflake string literal (COPY's FILES list and stage DDL take no bind variables)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# A string literal (kept as it is: file names are untrusted), or the RAW schema's name.
_LITERAL_OR_RAW = re.compile(r"'(?:[^'\\]|\\.)*'|(?<![\w$.\"])" + RAW + r"(?![\w$\"])")


def in_schema(statement: str, schema: str) -> str:
    """The statement with the RAW schema named `schema` (SNOWFLAKE_SCHEMA, a validated plain
    identifier): every statement of this module is written against RAW."""
    if schema == RAW:
        return statement
    return _LITERAL_OR_RAW.sub(
        lambda m: m.group(0) if m.group(0).startswith("'") else schema, statement)


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
    """The s3:// URL of the bucket and prefix: what the store's object URLs start with."""
    return f"s3://{bucket}/{prefix.strip('/')}/" if prefix.strip("/") else f"s3://{bucket}/"


def s3compat_endpoint(endpoint_url: str | None) -> str | None:
    """The ENDPOINT of an S3-compatible store (AWS_ENDPOINT_URL that is not AWS's own), which
    Snowflake reaches through an `s3compat://` stage; None for Amazon S3."""
    if not endpoint_url:
        return None
    host = urlsplit(endpoint_url if "//" in endpoint_url else f"//{endpoint_url}").netloc
    hostname = host.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    if hostname == "amazonaws.com" or hostname.endswith(".amazonaws.com"):
        return None
    return host.rsplit("@", 1)[-1]


def stage_sql(
    stage: str,
    url: str,
    *,
    storage_integration: str | None = None,
    aws_key_id: str | None = None,
    aws_secret_key: str | None = None,
    aws_token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """CREATE OR REPLACE STAGE on the bucket. Contains the secret key when keys are used: never
    log it.

    OR REPLACE, not IF NOT EXISTS: a changed bucket, prefix, endpoint or rotated (or expiring
    temporary) key must reach the stage on the next load. Replacing drops the stage's grants
    (the loader's role owns and alone uses it) and its load history (COPY runs with FORCE =
    TRUE; RAW's anti-join decides what is new). `endpoint`: an S3-compatible store, which
    Snowflake reads through `s3compat://` with keys only (no storage integration).
    """
    if endpoint and storage_integration:
        raise ConfigError(
            "an S3-compatible store (AWS_ENDPOINT_URL) takes AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, not SNOWFLAKE_STORAGE_INTEGRATION")
    if storage_integration:
        auth = f"storage_integration = {storage_integration}"
    elif aws_key_id and aws_secret_key:
        token = f" aws_token = {_literal(aws_token)}" if aws_token else ""
        auth = (
            f"credentials = (aws_key_id = {_literal(aws_key_id)} "
            f"aws_secret_key = {_literal(aws_secret_key)}{token})"
        )
    else:
        raise ConfigError(
            "the Snowflake stage needs SNOWFLAKE_STORAGE_INTEGRATION or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or set FHIRFLOW_SNOWFLAKE_LOAD_MODE=insert)"
        )
    location = f"url = {_literal(url)}"
    if endpoint:
        location = (f"url = {_literal('s3compat://' + url.removeprefix('s3://'))} "
                    f"endpoint = {_literal(endpoint)}")
    return f"create or replace stage {RAW}.{stage} {location} {auth} file_format = {FILE_FORMAT}"


def show_stage_sql(database: str, stage: str, *, schema: str = RAW) -> str:
    """The stage's row of SHOW STAGES (its `url` column): what `fhirflow doctor` compares."""
    return f"show stages like {_literal(stage)} in schema {database}.{schema}"


def copy_sql(stage: str, stage_paths: list[str]) -> str:
    """COPY the batch's files, each as one text value, from the stage into the session's
    FHIRFLOW_INCOMING_TEXT table (PARSE_TEXT parses them)."""
    if not stage_paths or len(stage_paths) > MAX_FILES_PER_COPY:
        raise ValueError(f"COPY takes 1..{MAX_FILES_PER_COPY} files, got {len(stage_paths)}")
    files = ", ".join(_literal(p) for p in stage_paths)
    return f"""copy into FHIRFLOW_INCOMING_TEXT (FILENAME, TEXT)
from (
    select metadata$filename, $1
    from @{RAW}.{stage}
)
files = ({files})
file_format = (format_name = {FILE_FORMAT})
on_error = continue
force = true"""


def list_sql(stage: str, stage_paths: list[str], *, schema: str = RAW) -> str:
    """LIST the stage under the longest prefix the paths share (a path is a key prefix to
    LIST, as to COPY): after a COPY failed, which of a batch's files are still there. COPY
    fails the whole statement on a name in FILES that the bucket no longer holds.

    The stage reference is one quoted literal (the prefix comes from file names), so the
    schema is named here rather than by `in_schema`, which leaves literals alone.
    """
    common = _common_prefix(stage_paths)
    return f"list {_literal(f'@{schema}.{stage}/{common}')}"


def _common_prefix(paths: list[str]) -> str:
    if not paths:
        raise ValueError("no paths")
    first, last = min(paths), max(paths)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def missing_paths(listed: list[str], stage_paths: list[str]) -> list[str]:
    """The stage paths that LIST did not return (its names are full URLs, or stage paths)."""
    found = set(listed)
    return [p for p in stage_paths
            if p not in found and not any(name.endswith("/" + p) for name in listed)]
