"""DuckDB SQL text of the RAW layer: DDL, the migration from the whole-bundle RAW, and the
one-pass load of bundles and NDJSON blocks into one row per resource.

The JSON work happens here, once, at load time: a bundle is parsed a single time by
`json_transform` (its entries as typed structs, each resource kept as JSON), each resource is
parsed once more by one multi-path `json_extract_string` for its keys and the entry rules,
all in PARSE_BUNDLES, which runs outside the batch's transaction, one share of the files per
core, into a scratch table that the transaction's statements read. dbt then reads
RAW.FHIR_RESOURCES and never re-parses whole bundles.
"""

from __future__ import annotations

from fhirflow.warehouse import entry_rules, reasons
from fhirflow.warehouse.reasons import sql_literal

DDL = """
create schema if not exists raw;
create table if not exists raw.fhir_bundles (
    object_key       varchar primary key,
    file_format      varchar not null default 'bundle',
    bundle_type      varchar,
    file_size        bigint not null,
    content_hash     varchar not null,
    entries          bigint not null default 0,
    entries_rejected bigint not null default 0,
    source_name      varchar,
    superseded_by    varchar,
    load_id          varchar not null,
    loaded_at        timestamp not null
);
create table if not exists raw.fhir_resources (
    object_key            varchar not null,
    entry_index           bigint not null,
    line_number           bigint,
    resource_type         varchar not null,
    resource_id           varchar not null,
    full_url              varchar,
    request_method        varchar,
    request_url           varchar,
    request_if_none_exist varchar,
    bundle_type           varchar,
    resource              json not null,
    load_id               varchar not null,
    loaded_at             timestamp not null
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
    load_id       varchar not null,
    object_key    varchar not null,
    file_size     bigint,
    reason        varchar not null,
    failed_at     timestamp not null,
    source_name   varchar,
    superseded_by varchar
);
create table if not exists raw.entry_errors (
    load_id       varchar not null,
    object_key    varchar not null,
    entry_index   bigint,
    line_number   bigint,
    resource_type varchar,
    resource_id   varchar,
    reason        varchar not null,
    failed_at     timestamp not null,
    source_name   varchar,
    superseded_by varchar
);
"""

# A RAW written before the per-resource layout: raw.fhir_bundles holds each whole bundle in
# a `bundle` column. Its bundles are flattened into raw.fhir_resources once, then the column
# is dropped (it was a second full copy of the input).
MIGRATE_COLUMNS = """
alter table raw.fhir_bundles add column if not exists file_format varchar default 'bundle';
alter table raw.fhir_bundles add column if not exists entries bigint default 0;
alter table raw.fhir_bundles add column if not exists entries_rejected bigint default 0;
alter table raw.fhir_bundles add column if not exists source_name varchar;
alter table raw.fhir_bundles add column if not exists superseded_by varchar;
alter table raw.load_errors add column if not exists source_name varchar;
alter table raw.load_errors add column if not exists superseded_by varchar;
"""

BUNDLE_STRUCT = (
    '{"resourceType": "VARCHAR", "type": "VARCHAR", '
    '"entry": [{"fullUrl": "VARCHAR", "resource": "JSON", '
    '"request": {"method": "VARCHAR", "url": "VARCHAR", "ifNoneExist": "VARCHAR"}}]}'
)

# One reason per bad bundle file; the first that applies wins. `text` is the file decoded
# (NULL when it is not UTF-8), `doc` its `json_transform` (NULL when that failed): `try()`
# turns a parse error into NULL, and only then does `json_valid` (a second parse, of bad
# files alone) tell invalid JSON from JSON that is not an object.
_FILE_REASON = f"""case
        when size = 0 then {sql_literal(reasons.EMPTY)}
        when text is null then {sql_literal(reasons.NOT_UTF8)}
        when starts_with(text, chr(65279)) then {sql_literal(reasons.BYTE_ORDER_MARK)}
        when doc is null and not json_valid(text) then {sql_literal(reasons.INVALID_JSON)}
        when doc is null or doc.resourceType is distinct from 'Bundle'
            or not starts_with(ltrim(text), '{{')
            then {sql_literal(reasons.NOT_A_BUNDLE)}
    end"""

# The scratch table one batch's bundles are parsed into: one row per entry of a good bundle,
# and for a file without entries (a bad file, or a bundle with none) one row with a NULL
# entry_index, so every file has exactly one row with coalesce(entry_index, 0) = 0 that
# carries its file-level columns.
PARSED_TABLE = """
create or replace table {table} (
    path varchar, size bigint, bundle_type varchar, file_reason varchar, entry_index bigint,
    full_url varchar, request_method varchar, request_url varchar,
    request_if_none_exist varchar, resource json, resource_type varchar, resource_id varchar,
    reason varchar
)
"""

# Each bundle is parsed once, here, by `json_transform`: its type and its entries as typed
# structs (each resource kept as JSON), unnested at once; each resource is then parsed once
# more by one multi-path `json_extract_string` for its keys and the entry rules. No SHA-256
# here: DuckDB's runs at a third of OpenSSL's (hashlib), so the files are hashed in Python.
# `read_blob` reads its files on one thread, so a batch is parsed as several of these, each
# over its share of the files on its own connection, side by side (duckdb_load.parse).
PARSE_BUNDLES = f"""
insert into {{table}}
with files as (
    select b.filename as path, b.size, try(decode(b.content)) as text
    from read_blob($paths) as b
),
parsed as (
    select
        *,
        case when text is not null and not starts_with(text, chr(65279))
            then try(json_transform(text, '{BUNDLE_STRUCT}'))
        end as doc
    from files
),
classified as (
    select
        path, size, doc.type as bundle_type, doc.entry as entries,
        {_FILE_REASON} as file_reason
    from parsed
),
entries as (
    select
        path, size, bundle_type, file_reason,
        unnest(case when file_reason is null and len(entries) > 0 then entries
                    else [null] end) as e,
        unnest(case when file_reason is null and len(entries) > 0 then range(len(entries))
                    else [null] end) as entry_index
    from classified
),
keyed as (
    select
        *,
        json_extract_string(e.resource, {entry_rules.duckdb_paths()}) as v
    from entries
)
select
    path, size, bundle_type, file_reason, entry_index,
    e.fullUrl, e.request.method, e.request.url, e.request.ifNoneExist, e.resource,
    v[1], v[2],
    case when entry_index is not null then {entry_rules.reason_sql(entry_rules.DUCKDB)} end
from keyed
"""

# The batch's files as RAW's load needs them, from the parsed rows and `_keys` (each path's
# key, name and content hash, computed in Python).
CLASSIFY_BUNDLES = """
create or replace temp table _classified as
select f.path, f.key, f.name, p.size, f.content_hash, p.bundle_type, p.file_reason as reason
from {table} as p
join _keys as f on f.path = p.path
where coalesce(p.entry_index, 0) = 0
"""

# An upload that re-sent a file the store had lost (a new key, the same content): not loaded
# again when RAW's latest version of that file (by source_name) has the same content hash.
# Neither loaded nor an error: the key is simply passed over.
SKIP_RESENT_BUNDLES = """
delete from _classified as c
where c.reason is null and c.content_hash = (
    select arg_max(b.content_hash, b.object_key) from raw.fhir_bundles as b
    where b.source_name = c.name)
"""

LATEST_HASH = """
select arg_max(content_hash, object_key) from raw.fhir_bundles where source_name = ?
"""

_CANDIDATE_COLUMNS = f"""
    v[1] as resource_type,
    v[2] as resource_id,
    {entry_rules.reason_sql(entry_rules.DUCKDB)} as reason"""

# Every entry of the classified bundles, with its keys and the first entry rule it breaks
# (the one-time migration of a whole-bundle RAW).
FLATTEN_BUNDLES = f"""
create or replace temp table _candidates as
with entries as (
    select key, name, bundle_type,
           unnest(entries) as e,
           unnest(range(len(entries))) as entry_index
    from _classified
    where reason is null
),
keyed as (
    select
        key, name, bundle_type, entry_index,
        e.fullUrl as full_url,
        e.request.method as request_method,
        e.request.url as request_url,
        e.request.ifNoneExist as request_if_none_exist,
        e.resource as resource,
        json_extract_string(e.resource, {entry_rules.duckdb_paths()}) as v
    from entries
)
select
    key, name, entry_index, cast(null as bigint) as line_number, full_url, request_method,
    request_url, request_if_none_exist, bundle_type, resource,{_CANDIDATE_COLUMNS}
from keyed
"""

# The candidates of the parsed bundles whose file loads (not refused, not skipped as
# re-sent, not known): what INSERT_RESOURCES and the others read for bundles.
BUNDLE_CANDIDATES = """
create or replace temp view _bundle_candidates as
select
    c.key, c.name, p.entry_index, cast(null as bigint) as line_number, p.full_url,
    p.request_method, p.request_url, p.request_if_none_exist, c.bundle_type, p.resource,
    p.resource_type, p.resource_id, p.reason
from {table} as p
join _classified as c on c.path = p.path
where p.entry_index is not null and c.reason is null
"""


def _ndjson_sql(lines: str) -> str:
    """Every non-blank line of `lines` (a query of line_number, line; line NULL when it is
    not UTF-8), with its keys and the first rule it breaks (invalid JSON included)."""
    return f"""
create or replace temp table _candidates as
with lines as (
    {lines}
),
keyed as (
    select
        line_number,
        line,
        try(json_extract_string(line, {entry_rules.duckdb_paths()})) as v
    from lines
    where line is null or trim(line, ' ' || chr(9) || chr(13)) <> ''
)
select
    $key as key, $name as name, line_number - 1 as entry_index, line_number,
    cast(null as varchar) as full_url, cast(null as varchar) as request_method,
    cast(null as varchar) as request_url, cast(null as varchar) as request_if_none_exist,
    cast(null as varchar) as bundle_type,
    case when v is not null then line::json end as resource,
    v[1] as resource_type,
    v[2] as resource_id,
    case
        when v is null then {sql_literal(entry_rules.INVALID_LINE)}
        else {entry_rules.reason_sql(entry_rules.DUCKDB)}
    end as reason
from keyed
"""


# One block of whole lines ($text, its first line number $first).
NDJSON_BLOCK = _ndjson_sql(
    "select $first + pos as line_number, line\n"
    "    from (select unnest(s) as line, unnest(range(len(s))) as pos\n"
    "          from (select string_split($text, chr(10)) as s))"
)
# A block that is not valid UTF-8 as a whole, as rows in the temp table _rows.
NDJSON_ROWS = _ndjson_sql("select line_number, line from _rows")

# Sorted by type ({order}, left out for an NDJSON block of one type, in line order already):
# each staging model reads one resource type, and DuckDB skips the resource column of
# vectors and row groups whose resource_type does not match, so a model reads its own
# type's JSON rather than all of RAW.
INSERT_RESOURCES = """
insert into raw.fhir_resources
select key, entry_index, line_number, resource_type, resource_id, full_url, request_method,
       request_url, request_if_none_exist, bundle_type, resource, $load_id, $now
from {source}
where reason is null{order}
"""

CANDIDATE_TYPES = """
select count(distinct resource_type) from _candidates where reason is null
"""

INSERT_ENTRY_ERRORS = """
insert into raw.entry_errors
select $load_id, key, entry_index, line_number, resource_type, resource_id, reason, $now,
       name, null
from {source}
where reason is not null
"""

# Counted per file as the candidates go in; the file rows are written from these.
COUNT_CANDIDATES = """
insert into _counts
select key, count(*), count(*) filter (where reason is not null)
from {source}
group by key
"""

INSERT_BUNDLE_FILES = """
insert into raw.fhir_bundles
    (object_key, file_format, bundle_type, file_size, content_hash, entries, entries_rejected,
     source_name, load_id, loaded_at)
select c.key, 'bundle', c.bundle_type, c.size, c.content_hash,
       coalesce(sum(n.entries), 0), coalesce(sum(n.rejected), 0), c.name, $load_id, $now
from _classified as c
left join _counts as n on n.key = c.key
where c.reason is null
group by all
returning file_size
"""

INSERT_NDJSON_FILE = """
insert into raw.fhir_bundles
    (object_key, file_format, bundle_type, file_size, content_hash, entries, entries_rejected,
     source_name, load_id, loaded_at)
select $key, 'ndjson', null, $size, $hash,
       coalesce(sum(entries), 0), coalesce(sum(rejected), 0), $name, $load_id, $now
from _counts where key = $key
returning file_size
"""

INSERT_FILE_ERRORS = """
insert into raw.load_errors
select $load_id, key, size, reason, $now, name, null
from (select key, name, size, reason from _classified where reason is not null
      union all
      select key, name, size, reason from _rejected)
returning object_key, file_size, reason
"""

# A file loaded now supersedes the errors (file and entry level) and the file row that
# earlier versions of the same landed file left: a corrected file heals the quarantine.
# Its resources need nothing: staging keeps the newest version of each resource.
SUPERSEDE = tuple(
    f"""
update raw.{table} as e set superseded_by = n.object_key
from (select object_key, source_name from raw.fhir_bundles where load_id = $load_id) as n
where e.source_name = n.source_name and e.object_key < n.object_key
  and e.superseded_by is null
"""
    for table in ("load_errors", "entry_errors", "fhir_bundles")
)

BATCH_TABLES = """
create or replace temp table _keys (path varchar, key varchar, name varchar,
    content_hash varchar);
create or replace temp table _rejected (key varchar, name varchar, size bigint, reason varchar);
create or replace temp table _counts (key varchar, entries bigint, rejected bigint);
create or replace temp table _classified (path varchar, key varchar, name varchar,
    size bigint, content_hash varchar, bundle_type varchar, reason varchar);
"""

DROP_BATCH_TABLES = """
drop view if exists _bundle_candidates;
drop table if exists _keys;
drop table if exists _rejected;
drop table if exists _counts;
drop table if exists _classified;
drop table if exists _candidates;
drop table if exists _rows;
"""
