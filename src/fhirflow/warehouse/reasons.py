"""The reasons RAW.LOAD_ERRORS gives for a file it could not load: one text per kind of bad
file, the same on DuckDB and Snowflake (the classification SQL of both quotes these).

Snowflake's COPY adds reasons of its own (its first parse error, verbatim) in mode "copy".
"""

from __future__ import annotations

EMPTY = "empty file"
NOT_UTF8 = "not UTF-8 text"
BYTE_ORDER_MARK = "starts with a byte-order mark (not allowed in JSON)"
INVALID_JSON = "invalid JSON (malformed or truncated)"
NOT_A_BUNDLE = 'valid JSON but not a FHIR Bundle (resourceType is not "Bundle")'
NO_DOCUMENT = "no JSON document in the file"
MANY_DOCUMENTS = "more than one JSON document in the file"
GONE = "listed in the object store but gone when fetched"
CORRUPT_GZIP = "gzip data is corrupt or truncated"


def too_big(size: int, limit: int) -> str:
    return f"file of {size} bytes is over the {limit}-byte limit (FHIRFLOW_MAX_FILE_MB)"


def inflates_too_big(limit: int) -> str:
    return (f"gzip-compressed file inflates to over the {limit}-byte limit "
            "(FHIRFLOW_MAX_FILE_MB)")


def sql_literal(text: str) -> str:
    """A string literal that DuckDB and Snowflake read alike: quotes doubled, no backslash
    (Snowflake would read it as an escape)."""
    if "\\" in text:
        raise ValueError(f"no backslash in a reason text: {text!r}")
    return "'" + text.replace("'", "''") + "'"
