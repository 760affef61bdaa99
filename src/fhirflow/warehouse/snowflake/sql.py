"""Snowflake SQL text of the RAW layer: DDL, the batch's session tables, classification, the
anti-join inserts, COPY and stage statements. Text only, so tests can check it as text; the
order they run in is in `warehouse.py`.

Parameters use qmark binding (server-side), which also carries bundles larger than the 1 MB
limit of a SQL statement's text.

The per-resource RAW: a file's JSON documents (a whole bundle, or each NDJSON line, which
COPY's JSON format reads natively with METADATA$FILE_ROW_NUMBER as the line) reach the
session table FHIRFLOW_INCOMING; MATCH ties them to the batch's keys, CLASSIFY decides each
file, CANDIDATES flattens bundle entries (LATERAL FLATTEN) and applies the entry rules of
`entry_rules.py`, and the inserts write RAW.FHIR_RESOURCES, RAW.ENTRY_ERRORS, RAW.FHIR_BUNDLES
and RAW.LOAD_ERRORS inside one transaction.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fhirflow.errors import ConfigError
from fhirflow.warehouse import entry_rules, reasons
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
    OBJECT_KEY       varchar not null,
    FILE_FORMAT      varchar not null,
    BUNDLE_TYPE      varchar,
    FILE_SIZE        number(38, 0) not null,
    CONTENT_HASH     varchar not null,
    ENTRIES          number(38, 0) not null,
    ENTRIES_REJECTED number(38, 0) not null,
    SOURCE_NAME      varchar,
    SUPERSEDED_BY    varchar,
    LOAD_ID          varchar not null,
    LOADED_AT        timestamp_ntz not null,
    constraint FHIR_BUNDLES_PK primary key (OBJECT_KEY)
)""",
    f"""create table if not exists {RAW}.FHIR_RESOURCES (
    OBJECT_KEY            varchar not null,
    ENTRY_INDEX           number(38, 0) not null,
    LINE_NUMBER           number(38, 0),
    RESOURCE_TYPE         varchar not null,
    RESOURCE_ID           varchar not null,
    FULL_URL              varchar,
    REQUEST_METHOD        varchar,
    REQUEST_URL           varchar,
    REQUEST_IF_NONE_EXIST varchar,
    BUNDLE_TYPE           varchar,
    RESOURCE              variant not null,
    LOAD_ID               varchar not null,
    LOADED_AT             timestamp_ntz not null
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
    LOAD_ID       varchar not null,
    OBJECT_KEY    varchar not null,
    FILE_SIZE     number(38, 0),
    REASON        varchar not null,
    FAILED_AT     timestamp_ntz not null,
    SOURCE_NAME   varchar,
    SUPERSEDED_BY varchar
)""",
    f"""create table if not exists {RAW}.ENTRY_ERRORS (
    LOAD_ID       varchar not null,
    OBJECT_KEY    varchar not null,
    ENTRY_INDEX   number(38, 0),
    LINE_NUMBER   number(38, 0),
    RESOURCE_TYPE varchar,
    RESOURCE_ID   varchar,
    REASON        varchar not null,
    FAILED_AT     timestamp_ntz not null,
    SOURCE_NAME   varchar,
    SUPERSEDED_BY varchar
)""",
    # A LOAD_ERRORS of the whole-bundle layout gains the columns the supersede step uses.
    f"alter table {RAW}.LOAD_ERRORS add column if not exists SOURCE_NAME varchar",
    f"alter table {RAW}.LOAD_ERRORS add column if not exists SUPERSEDED_BY varchar",
)

# Whether RAW.FHIR_BUNDLES still has the whole-bundle layout (a BUNDLE column).
OLD_LAYOUT = f"""select count(*) from information_schema.columns
where table_schema = '{RAW}' and table_name = 'FHIR_BUNDLES' and column_name = 'BUNDLE'"""

# From the whole-bundle layout: the file columns, each bundle's entries flattened into
# FHIR_RESOURCES once, then the BUNDLE copy dropped. One transaction (run by the class).
MIGRATE: tuple[str, ...] = (
    *(f"alter table {RAW}.FHIR_BUNDLES add column if not exists {column}"
      for column in ("FILE_FORMAT varchar default 'bundle'", "ENTRIES number(38, 0) default 0",
                     "ENTRIES_REJECTED number(38, 0) default 0", "SOURCE_NAME varchar",
                     "SUPERSEDED_BY varchar")),
    f"""insert into {RAW}.FHIR_RESOURCES
    (OBJECT_KEY, ENTRY_INDEX, LINE_NUMBER, RESOURCE_TYPE, RESOURCE_ID, FULL_URL, REQUEST_METHOD,
     REQUEST_URL, REQUEST_IF_NONE_EXIST, BUNDLE_TYPE, RESOURCE, LOAD_ID, LOADED_AT)
select b.OBJECT_KEY, e.index, null, e.value:resource.resourceType::varchar,
    e.value:resource.id::varchar, e.value:fullUrl::varchar, e.value:request.method::varchar,
    e.value:request.url::varchar, e.value:request.ifNoneExist::varchar, b.BUNDLE_TYPE,
    e.value:resource, b.LOAD_ID, b.LOADED_AT
from {RAW}.FHIR_BUNDLES as b, lateral flatten(input => b.BUNDLE:entry) as e
where e.value:resource.resourceType is not null and e.value:resource.id is not null""",
    f"alter table {RAW}.FHIR_BUNDLES drop column BUNDLE",
)

# A whole file as one text value (no field or record delimiter, no escapes, no trimming, no
# NULL markers, the byte order mark kept), which PARSE_TEXT parses with TRY_PARSE_JSON and
# hashes, as in mode insert. Not TYPE = JSON: a COPY with a transformation from a JSON format
# stops at a file's parse error whatever ON_ERROR says ("Transforming data during a load"),
# and it has no text to take a SHA-256 of. OR REPLACE: changed options take effect.
# COMPRESSION = AUTO: the upload keeps objects gzip-compressed (`.gz` keys) beside the plain
# ones older versions wrote; COPY inflates each by itself, so TEXT is the content either way.
FILE_FORMAT_DDL = (
    f"create or replace file format {FILE_FORMAT} type = csv compression = auto "
    "field_delimiter = none record_delimiter = none skip_header = 0 "
    "field_optionally_enclosed_by = none escape = none escape_unenclosed_field = none "
    "trim_space = false empty_field_as_null = false null_if = () "
    "skip_byte_order_mark = false replace_invalid_characters = false encoding = 'UTF8'"
)

# NDJSON: each line one text value with its line (METADATA$FILE_ROW_NUMBER), parsed line by
# line by PARSE_TEXT, so a bad line is quarantined at its own line and the lines around it
# load; a multi-GB export never has to fit one value. The file's kind comes from its name
# in mode copy (COPY must be told the format before it reads).
LINES_FORMAT = f"{RAW}.FHIR_LINES"
LINES_FORMAT_DDL = FILE_FORMAT_DDL.replace(FILE_FORMAT, LINES_FORMAT).replace(
    "record_delimiter = none", "record_delimiter = '\\n'")

# Session temp tables (unqualified: temp tables live in the session's current schema).
BATCH_TABLES: tuple[str, ...] = (
    # KIND: bundle or ndjson, by content when the loader read the file (mode insert), by
    # name in mode copy (COPY's file format is chosen before Snowflake reads the file).
    "create or replace temporary table FHIRFLOW_BATCH_FILES "
    "(OBJECT_KEY varchar, STAGE_PATH varchar, FILE_SIZE number(38, 0), KIND varchar, "
    "SOURCE_NAME varchar)",
    # One row per JSON document: a whole bundle, or one NDJSON line (LINE_NUMBER).
    "create or replace temporary table FHIRFLOW_INCOMING "
    "(FILENAME varchar, DOC variant, LINE_NUMBER number(38, 0), CONTENT_HASH varchar)",
    "create or replace temporary table FHIRFLOW_COPY_RESULT (FILE varchar, STATUS varchar, "
    "ROWS_PARSED number(38, 0), ROWS_LOADED number(38, 0), ERRORS_SEEN number(38, 0), "
    "FIRST_ERROR varchar, FIRST_ERROR_LINE number(38, 0))",
    "create or replace temporary table FHIRFLOW_REJECTED "
    "(OBJECT_KEY varchar, FILE_SIZE number(38, 0), REASON varchar, SOURCE_NAME varchar)",
    # 128 MB, not the 16 MB an unsized VARCHAR holds before the 2025_07 bundle.
    "create or replace temporary table FHIRFLOW_INCOMING_TEXT "
    f"(FILENAME varchar, TEXT varchar({MAX_OBJECT_BYTES}), LINE_NUMBER number(38, 0), "
    "CONTENT_HASH varchar)",
)

INSERT_BATCH_FILE = "insert into FHIRFLOW_BATCH_FILES values (?, ?, ?, ?, ?)"
INSERT_COPY_RESULT = "insert into FHIRFLOW_COPY_RESULT values (?, ?, ?, ?, ?, ?, ?)"
INSERT_REJECTED = "insert into FHIRFLOW_REJECTED values (?, ?, ?, ?)"
INSERT_TEXT = "insert into FHIRFLOW_INCOMING_TEXT values (?, ?, ?, ?)"

# Both modes: each document's text (a bundle file whole, or one NDJSON line; inserted by the
# loader or COPYed from the stage) is parsed inside Snowflake. A bundle's CONTENT_HASH is the
# SHA-256 of its bytes (SHA2 hashes the text's UTF-8), as on DuckDB and in the upload ledger;
# an NDJSON file's comes from the loader (mode insert). A bundle that does not parse is a
# per-file error row the same shape as COPY's; an NDJSON line that does not parse stays a row
# with DOC NULL and becomes an entry error at its line.
_TEXT_FILES = """from FHIRFLOW_INCOMING_TEXT as t
join FHIRFLOW_BATCH_FILES as f
    on t.FILENAME = f.STAGE_PATH or endswith(t.FILENAME, '/' || f.STAGE_PATH)"""
PARSE_TEXT: tuple[str, ...] = (
    f"""insert into FHIRFLOW_INCOMING (FILENAME, DOC, LINE_NUMBER, CONTENT_HASH)
select t.FILENAME, try_parse_json(t.TEXT), t.LINE_NUMBER,
    case when f.KIND = 'ndjson' then t.CONTENT_HASH else sha2(t.TEXT, 256) end
{_TEXT_FILES}
where (f.KIND = 'ndjson' and (t.TEXT is null or trim(t.TEXT) <> ''))
    or (f.KIND = 'bundle' and t.TEXT <> '' and left(t.TEXT, 1) <> chr(65279)
        and try_parse_json(t.TEXT) is not null)""",
    f"""insert into FHIRFLOW_COPY_RESULT
select t.FILENAME, 'LOAD_FAILED', 1, 0, 1,
    case when left(t.TEXT, 1) = chr(65279) then {sql_literal(reasons.BYTE_ORDER_MARK)}
        else {sql_literal(reasons.INVALID_JSON)} end, 1
{_TEXT_FILES}
where f.KIND = 'bundle' and t.TEXT <> ''
    and (left(t.TEXT, 1) = chr(65279) or try_parse_json(t.TEXT) is null)""",
)

# The key of a loaded row: COPY reports METADATA$FILENAME and the result's FILE relative to
# the stage or as a full URL depending on the stage; matching on the stage-relative path as a
# suffix works for both.
MATCH = """create or replace temporary table FHIRFLOW_MATCHED as
select f.OBJECT_KEY, i.DOC, i.LINE_NUMBER, i.CONTENT_HASH
from FHIRFLOW_BATCH_FILES as f
join FHIRFLOW_INCOMING as i
    on i.FILENAME = f.STAGE_PATH or endswith(i.FILENAME, '/' || f.STAGE_PATH)"""

_NDJSON_NAME = r"'.*[.](ndjson|jsonl)([.]gz)?'"

# One row per file: its kind (the loader's sniff in mode insert; in mode copy, more than one
# document or an NDJSON name), and the reason when the file as a whole cannot load. Bad
# NDJSON lines are not file errors: they become entry errors with their line.
CLASSIFY = f"""create or replace temporary table FHIRFLOW_CLASSIFIED as
with rows_per_file as (
    select OBJECT_KEY, count(*) as N_ROWS, min(CONTENT_HASH) as CONTENT_HASH
    from FHIRFLOW_MATCHED
    group by OBJECT_KEY
),
copy_errors as (
    select f.OBJECT_KEY, max(coalesce(c.FIRST_ERROR, c.STATUS)) as FIRST_ERROR,
        sum(c.ERRORS_SEEN) as ERRORS_SEEN
    from FHIRFLOW_BATCH_FILES as f
    join FHIRFLOW_COPY_RESULT as c
        on c.FILE = f.STAGE_PATH or endswith(c.FILE, '/' || f.STAGE_PATH)
    where c.STATUS <> 'LOADED' or c.ERRORS_SEEN > 0
    group by f.OBJECT_KEY
),
kinds as (
    select
        f.OBJECT_KEY,
        coalesce(f.KIND, case
            when coalesce(r.N_ROWS, 0) + coalesce(e.ERRORS_SEEN, 0) > 1
                or regexp_like(lower(f.OBJECT_KEY), {_NDJSON_NAME}) then 'ndjson'
            else 'bundle'
        end) as KIND
    from FHIRFLOW_BATCH_FILES as f
    left join rows_per_file as r on r.OBJECT_KEY = f.OBJECT_KEY
    left join copy_errors as e on e.OBJECT_KEY = f.OBJECT_KEY
)
select
    f.OBJECT_KEY,
    f.FILE_SIZE,
    f.SOURCE_NAME,
    k.KIND,
    coalesce(r.CONTENT_HASH, '') as CONTENT_HASH,
    case when k.KIND = 'bundle' then m.DOC:type::varchar end as BUNDLE_TYPE,
    case
        when f.FILE_SIZE = 0 then {sql_literal(reasons.EMPTY)}
        when k.KIND = 'ndjson' then null
        when e.OBJECT_KEY is not null then e.FIRST_ERROR
        when r.N_ROWS is null then {sql_literal(reasons.NO_DOCUMENT)}
        when r.N_ROWS > 1 then {sql_literal(reasons.MANY_DOCUMENTS)}
        when m.DOC:resourceType::varchar is distinct from 'Bundle'
            then {sql_literal(reasons.NOT_A_BUNDLE)}
    end as REASON
from FHIRFLOW_BATCH_FILES as f
join kinds as k on k.OBJECT_KEY = f.OBJECT_KEY
left join rows_per_file as r on r.OBJECT_KEY = f.OBJECT_KEY
left join copy_errors as e on e.OBJECT_KEY = f.OBJECT_KEY
left join FHIRFLOW_MATCHED as m on m.OBJECT_KEY = f.OBJECT_KEY and r.N_ROWS = 1
where f.OBJECT_KEY not in (select OBJECT_KEY from FHIRFLOW_REJECTED)"""

# An upload that re-sent a file the store had lost (a new key, the same content): passed
# over, neither loaded nor an error, when RAW's latest version of that file (by SOURCE_NAME,
# the newest key) has the same content hash. As SKIP_RESENT_BUNDLES on DuckDB. A file whose
# hash is unknown (NDJSON in mode copy: COPY gives no hash) is never taken for a re-send.
SKIP_RESENT = f"""delete from FHIRFLOW_CLASSIFIED as c
using (
    select SOURCE_NAME, max_by(CONTENT_HASH, OBJECT_KEY) as CONTENT_HASH
    from {RAW}.FHIR_BUNDLES
    where SOURCE_NAME is not null
    group by SOURCE_NAME
) as latest
where c.REASON is null and c.CONTENT_HASH <> ''
    and c.SOURCE_NAME = latest.SOURCE_NAME and c.CONTENT_HASH = latest.CONTENT_HASH"""

# Every resource of the batch's loadable files: bundle entries by FLATTEN, NDJSON lines as
# they are (a line that did not parse has DOC NULL), with the reason of the first entry
# rule each breaks; plus, in mode copy, one row per NDJSON file whose lines COPY could not
# parse, at the first such line (COPY reports the first error of a file, not each).
CANDIDATES = f"""create or replace temporary table FHIRFLOW_CANDIDATES as
with entries as (
    select
        c.OBJECT_KEY, c.SOURCE_NAME, e.index as ENTRY_INDEX, null as LINE_NUMBER,
        e.value:fullUrl::varchar as FULL_URL,
        e.value:request.method::varchar as REQUEST_METHOD,
        e.value:request.url::varchar as REQUEST_URL,
        e.value:request.ifNoneExist::varchar as REQUEST_IF_NONE_EXIST,
        c.BUNDLE_TYPE, e.value:resource as RESOURCE, null as FIXED_REASON
    from FHIRFLOW_CLASSIFIED as c
    join FHIRFLOW_MATCHED as m on m.OBJECT_KEY = c.OBJECT_KEY,
        lateral flatten(input => m.DOC:entry) as e
    where c.REASON is null and c.KIND = 'bundle'
    union all
    select
        c.OBJECT_KEY, c.SOURCE_NAME, m.LINE_NUMBER - 1, m.LINE_NUMBER, null, null, null, null,
        null, m.DOC,
        case when m.DOC is null then {sql_literal(entry_rules.INVALID_LINE)} end
    from FHIRFLOW_CLASSIFIED as c
    join FHIRFLOW_MATCHED as m on m.OBJECT_KEY = c.OBJECT_KEY
    where c.REASON is null and c.KIND = 'ndjson'
    union all
    select
        c.OBJECT_KEY, c.SOURCE_NAME, r.FIRST_ERROR_LINE - 1, r.FIRST_ERROR_LINE, null, null,
        null, null, null, null,
        r.ERRORS_SEEN || ' lines could not be parsed; the first: ' || r.FIRST_ERROR
    from FHIRFLOW_CLASSIFIED as c
    join FHIRFLOW_BATCH_FILES as f on f.OBJECT_KEY = c.OBJECT_KEY
    join FHIRFLOW_COPY_RESULT as r
        on r.FILE = f.STAGE_PATH or endswith(r.FILE, '/' || f.STAGE_PATH)
    where c.REASON is null and c.KIND = 'ndjson' and r.ERRORS_SEEN > 0
        and r.FIRST_ERROR_LINE is not null
),
valued as (
    select
        *,
        {entry_rules.snowflake_columns('RESOURCE')}
    from entries
)
select
    OBJECT_KEY, SOURCE_NAME, ENTRY_INDEX, LINE_NUMBER, FULL_URL, REQUEST_METHOD, REQUEST_URL,
    REQUEST_IF_NONE_EXIST, BUNDLE_TYPE, RESOURCE, V1 as RESOURCE_TYPE, V2 as RESOURCE_ID,
    coalesce(FIXED_REASON, {entry_rules.reason_sql(entry_rules.SNOWFLAKE)}) as REASON
from valued"""

_NEW_FILE = f"""OBJECT_KEY not in (select OBJECT_KEY from {RAW}.FHIR_BUNDLES)
    and OBJECT_KEY not in (select OBJECT_KEY from {RAW}.LOAD_ERRORS)"""

# Inside BEGIN ... COMMIT, resources and entry errors before the file rows: the anti-joins
# on the file's key make the batch idempotent (FORCE = TRUE bypasses COPY's load history).
INSERT_RESOURCES = f"""insert into {RAW}.FHIR_RESOURCES
    (OBJECT_KEY, ENTRY_INDEX, LINE_NUMBER, RESOURCE_TYPE, RESOURCE_ID, FULL_URL, REQUEST_METHOD,
     REQUEST_URL, REQUEST_IF_NONE_EXIST, BUNDLE_TYPE, RESOURCE, LOAD_ID, LOADED_AT)
select OBJECT_KEY, ENTRY_INDEX, LINE_NUMBER, RESOURCE_TYPE, RESOURCE_ID, FULL_URL,
    REQUEST_METHOD, REQUEST_URL, REQUEST_IF_NONE_EXIST, BUNDLE_TYPE, RESOURCE, ?, ?
from FHIRFLOW_CANDIDATES
where REASON is null and {_NEW_FILE}"""

INSERT_ENTRY_ERRORS = f"""insert into {RAW}.ENTRY_ERRORS
    (LOAD_ID, OBJECT_KEY, ENTRY_INDEX, LINE_NUMBER, RESOURCE_TYPE, RESOURCE_ID, REASON,
     FAILED_AT, SOURCE_NAME)
select ?, OBJECT_KEY, ENTRY_INDEX, LINE_NUMBER, RESOURCE_TYPE, RESOURCE_ID, REASON, ?,
    SOURCE_NAME
from FHIRFLOW_CANDIDATES
where REASON is not null and {_NEW_FILE}"""

INSERT_BUNDLES = f"""insert into {RAW}.FHIR_BUNDLES
    (OBJECT_KEY, FILE_FORMAT, BUNDLE_TYPE, FILE_SIZE, CONTENT_HASH, ENTRIES, ENTRIES_REJECTED,
     SOURCE_NAME, LOAD_ID, LOADED_AT)
select c.OBJECT_KEY, c.KIND, c.BUNDLE_TYPE, c.FILE_SIZE, c.CONTENT_HASH,
    coalesce(n.ENTRIES, 0), coalesce(n.REJECTED, 0), c.SOURCE_NAME, ?, ?
from FHIRFLOW_CLASSIFIED as c
left join (
    select OBJECT_KEY, count(*) as ENTRIES,
        sum(case when REASON is not null then 1 else 0 end) as REJECTED
    from FHIRFLOW_CANDIDATES
    group by OBJECT_KEY
) as n on n.OBJECT_KEY = c.OBJECT_KEY
where c.REASON is null
    and c.OBJECT_KEY not in (select OBJECT_KEY from {RAW}.FHIR_BUNDLES)"""

INSERT_ERRORS = f"""insert into {RAW}.LOAD_ERRORS
    (LOAD_ID, OBJECT_KEY, FILE_SIZE, REASON, FAILED_AT, SOURCE_NAME)
select ?, OBJECT_KEY, FILE_SIZE, REASON, ?, SOURCE_NAME
from (
    select OBJECT_KEY, FILE_SIZE, REASON, SOURCE_NAME
    from FHIRFLOW_CLASSIFIED where REASON is not null
    union all
    select OBJECT_KEY, FILE_SIZE, REASON, SOURCE_NAME from FHIRFLOW_REJECTED
) as bad
where OBJECT_KEY not in (select OBJECT_KEY from {RAW}.LOAD_ERRORS)
    and OBJECT_KEY not in (select OBJECT_KEY from {RAW}.FHIR_BUNDLES)"""

# A file loaded by this load supersedes what earlier versions of the same landed file left
# (file errors, entry errors, the file row): a corrected file heals the quarantine.
SUPERSEDE: tuple[str, ...] = tuple(
    f"""update {RAW}.{table} as e set SUPERSEDED_BY = n.OBJECT_KEY
from (select OBJECT_KEY, SOURCE_NAME from {RAW}.FHIR_BUNDLES where LOAD_ID = ?) as n
where e.SOURCE_NAME = n.SOURCE_NAME and e.OBJECT_KEY < n.OBJECT_KEY
    and e.SUPERSEDED_BY is null"""
    for table in ("LOAD_ERRORS", "ENTRY_ERRORS", "FHIR_BUNDLES")
)

BATCH_ENTRIES = f"""select coalesce(sum(ENTRIES - ENTRIES_REJECTED), 0),
    coalesce(sum(ENTRIES_REJECTED), 0)
from {RAW}.FHIR_BUNDLES where LOAD_ID = ?"""

BATCH_ENTRY_ERRORS = f"""select OBJECT_KEY, ENTRY_INDEX, LINE_NUMBER, REASON
from {RAW}.ENTRY_ERRORS where LOAD_ID = ? order by OBJECT_KEY, ENTRY_INDEX limit ?"""

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
    (select count(*) from {RAW}.LOAD_WATERMARK),
    (select count(*) from {RAW}.FHIR_RESOURCES),
    (select count(*) from {RAW}.ENTRY_ERRORS)"""


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


def copy_sql(stage: str, stage_paths: list[str], *, lines: bool = False) -> str:
    """COPY the batch's files from the stage into the session's FHIRFLOW_INCOMING_TEXT table
    (PARSE_TEXT parses them): each bundle as one text value, or (`lines`) each NDJSON line
    as one, with its line number."""
    if not stage_paths or len(stage_paths) > MAX_FILES_PER_COPY:
        raise ValueError(f"COPY takes 1..{MAX_FILES_PER_COPY} files, got {len(stage_paths)}")
    files = ", ".join(_literal(p) for p in stage_paths)
    return f"""copy into FHIRFLOW_INCOMING_TEXT (FILENAME, TEXT, LINE_NUMBER)
from (
    select metadata$filename, $1, metadata$file_row_number
    from @{RAW}.{stage}
)
files = ({files})
file_format = (format_name = {LINES_FORMAT if lines else FILE_FORMAT})
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
