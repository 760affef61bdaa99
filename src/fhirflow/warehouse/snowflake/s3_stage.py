"""The external S3 stage of mode copy, as SQL text: its URL, CREATE STAGE (keys or a
storage integration; S3-compatible stores through `s3compat://`), COPY INTO the batch's
session table from it, and LIST to find the files gone from the bucket. `copy_mode.py` runs
them; `fhirflow doctor` compares the stage with the settings.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fhirflow.errors import ConfigError
from fhirflow.warehouse.snowflake.raw_schema import FILE_FORMAT, LINES_FORMAT, RAW

# Snowflake's COPY accepts at most 1000 names in FILES = (...).
MAX_FILES_PER_COPY = 1000


def _literal(text: str) -> str:
    """A Snowflake string literal (COPY's FILES list and stage DDL take no bind variables)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


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
