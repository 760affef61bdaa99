"""The statements of one Snowflake load batch, in the order `warehouse.py` runs them: the
batch's session tables, parsing each document's text, classification, the entry rules, the
anti-join inserts into RAW, the supersede step and what the batch reads back. Text only, so
tests can check it as text.

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

from fhirflow.warehouse import entry_rules, reasons
from fhirflow.warehouse.reasons import sql_literal
from fhirflow.warehouse.snowflake.raw_schema import RAW

# The largest VARCHAR and VARIANT value Snowflake stores (128 MB, "Size limits for database
# objects"); a larger file is quarantined before it reaches a statement.
MAX_OBJECT_BYTES = 128 * 1024 * 1024

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
