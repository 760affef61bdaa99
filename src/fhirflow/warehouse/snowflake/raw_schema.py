"""The RAW schema on Snowflake: its name, its tables, the migration from the whole-bundle
layout, and the file formats COPY reads the stage with. Every statement of this package is
written against the schema RAW; `in_schema` renames it to SNOWFLAKE_SCHEMA on its way to the
session (`warehouse.py` runs these in `create_tables`).
"""

from __future__ import annotations

import re

# The statements name the RAW schema RAW; `in_schema` renames it (SNOWFLAKE_SCHEMA).
RAW = "RAW"
FILE_FORMAT = f"{RAW}.FHIR_TEXT"

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


# A string literal (kept as it is: file names are untrusted), or the RAW schema's name.
_LITERAL_OR_RAW = re.compile(r"'(?:[^'\\]|\\.)*'|(?<![\w$.\"])" + RAW + r"(?![\w$\"])")


def in_schema(statement: str, schema: str) -> str:
    """The statement with the RAW schema named `schema` (SNOWFLAKE_SCHEMA, a validated plain
    identifier): every statement of this package is written against RAW."""
    if schema == RAW:
        return statement
    return _LITERAL_OR_RAW.sub(
        lambda m: m.group(0) if m.group(0).startswith("'") else schema, statement)
