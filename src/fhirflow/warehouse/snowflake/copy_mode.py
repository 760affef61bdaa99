"""Mode copy: COPY a batch's files from the external S3 stage into the session table
FHIRFLOW_INCOMING_TEXT, with COPY's per-file results in FHIRFLOW_COPY_RESULT. The statements
are in `s3_stage.py` and `batch_sql.py`; `warehouse.py` calls `copy_files` once per chunk of
at most MAX_FILES_PER_COPY files of one kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirflow.errors import FhirflowError
from fhirflow.warehouse.snowflake.batch_sql import INSERT_COPY_RESULT
from fhirflow.warehouse.snowflake.s3_stage import copy_sql, list_sql, missing_paths

# COPY's first error per file is cut to this many characters in FHIRFLOW_COPY_RESULT.
ERROR_TEXT_LIMIT = 1000

# The warehouse's own statement runners: they rename RAW to SNOWFLAKE_SCHEMA on the way.
Execute = Callable[..., Any]
ExecuteMany = Callable[[str, list[tuple[Any, ...]]], None]


def copy_files(
    execute: Execute,
    executemany: ExecuteMany,
    stage: str,
    stage_paths: list[str],
    *,
    schema: str,
    lines: bool = False,
) -> list[str]:
    """COPY the files' text into FHIRFLOW_INCOMING_TEXT and their results into
    FHIRFLOW_COPY_RESULT; the paths gone from the bucket are returned, not loaded.

    COPY fails the whole statement on a name in FILES that no longer exists; then LIST
    says which are gone, and the rest are copied again. (Neither can run on fakesnow,
    which has no S3 stage: tests/test_snowflake_copy.py checks the statements as text.)
    """
    try:
        cur = execute(copy_sql(stage, stage_paths, lines=lines))
        gone: list[str] = []
    except FhirflowError as failed:
        try:
            listed = execute(list_sql(stage, stage_paths, schema=schema)).fetchall()
        except FhirflowError:
            raise failed from None
        gone = missing_paths([str(row[0]) for row in listed], stage_paths)
        present = [p for p in stage_paths if p not in set(gone)]
        if not gone:
            raise
        if not present:
            return gone
        cur = execute(copy_sql(stage, present, lines=lines))
    executemany(INSERT_COPY_RESULT, _result_rows(cur))
    return gone


def _result_rows(cur: Any) -> list[tuple[Any, ...]]:
    """COPY's result, one row per file, as FHIRFLOW_COPY_RESULT's columns."""
    columns = [d[0].lower() for d in cur.description or []]
    rows = []
    for values in cur.fetchall():
        row = dict(zip(columns, values, strict=False))
        if "file" not in row:
            continue  # "Copy executed with 0 files processed."
        error = row.get("first_error")
        rows.append((
            row["file"], row.get("status"), row.get("rows_parsed"), row.get("rows_loaded"),
            row.get("errors_seen"), str(error)[:ERROR_TEXT_LIMIT] if error else None,
            row.get("first_error_line"),
        ))
    return rows
