"""RAW layer on Snowflake (production): COPY INTO from an external S3 stage.

One batch, in order:

1. the batch's files go into a session temp table (FHIRFLOW_BATCH_FILES);
2. each file's text reaches the session temp table FHIRFLOW_INCOMING_TEXT, either by
   `COPY INTO ... FILES = (...) ON_ERROR = CONTINUE FORCE = TRUE` from the external stage
   (mode "copy", the default: the load stage hands over the objects' URLs, which must lie
   under the stage's; a file gone from the bucket is found by LIST and quarantined) or by
   inserting it (mode "insert": the load stage hands over local copies; no stage needed; the
   only mode fakesnow can run). COPY's per-file result rows go to FHIRFLOW_COPY_RESULT; then
   TRY_PARSE_JSON and SHA2 turn the text into FHIRFLOW_INCOMING, in both modes alike;
3. SQL classifies every file of the batch (bundle or NDJSON; loaded, or the reason not) and
   turns the good files' documents into candidate resources (bundle entries by FLATTEN,
   NDJSON lines as they are), each with the first entry rule it breaks;
4. BEGIN; insert the accepted resources into RAW.FHIR_RESOURCES and the refused ones into
   RAW.ENTRY_ERRORS, the good files into RAW.FHIR_BUNDLES, each with an anti-join on the
   file's key (so a file is in RAW once even though FORCE = TRUE bypasses COPY's own load
   history); the bad files into RAW.LOAD_ERRORS; mark what earlier versions of the same
   files left as superseded; insert the RAW.LOAD_WATERMARK row; COMMIT.

COPY goes into a temp table rather than straight into RAW.FHIR_BUNDLES because COPY cannot
filter (no WHERE, no join): deduplication and the Bundle check need a second statement, and
RAW must only ever see the result of the whole transaction.

The SQL text is in `raw_schema.py` (the tables; `in_schema` renames RAW to SNOWFLAKE_SCHEMA),
`batch_sql.py` (one batch's statements), `s3_stage.py` (the stage, COPY and LIST) and
`queries.py` (the watermark, known keys, status); the two ways the text gets in are in
`copy_mode.py` and `insert_mode.py`; the session (connect, errors, transactions, secrets,
query tags) in `client.py`, the sign-in method in `auth.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fhirflow.errors import ConfigError
from fhirflow.warehouse import (
    ENTRY_SAMPLE,
    MODEL_SCHEMAS,
    BatchFile,
    BatchResult,
    EntryRejected,
    FileAccess,
    LoadRecord,
    Rejected,
    files,
    reasons,
    utcnow,
)
from fhirflow.warehouse.snowflake import client
from fhirflow.warehouse.snowflake.batch_sql import (
    BATCH_ENTRIES,
    BATCH_ENTRY_ERRORS,
    BATCH_ERRORS,
    BATCH_TABLES,
    BATCH_TOTALS,
    CANDIDATES,
    CLASSIFY,
    INSERT_BATCH_FILE,
    INSERT_BUNDLES,
    INSERT_ENTRY_ERRORS,
    INSERT_ERRORS,
    INSERT_REJECTED,
    INSERT_RESOURCES,
    INSERT_WATERMARK,
    MATCH,
    MAX_OBJECT_BYTES,
    PARSE_TEXT,
    SKIP_RESENT,
    SUPERSEDE,
)
from fhirflow.warehouse.snowflake.copy_mode import copy_files
from fhirflow.warehouse.snowflake.insert_mode import send_texts
from fhirflow.warehouse.snowflake.queries import (
    LAST_WATERMARK,
    RAW_COUNTS,
    count_sql,
    known_keys_sql,
    model_relations_sql,
    recent_loads_sql,
)
from fhirflow.warehouse.snowflake.raw_schema import (
    DDL,
    FILE_FORMAT_DDL,
    LINES_FORMAT_DDL,
    MIGRATE,
    OLD_LAYOUT,
    RAW,
    in_schema,
)
from fhirflow.warehouse.snowflake.s3_stage import (
    MAX_FILES_PER_COPY,
    s3compat_endpoint,
    stage_sql,
    stage_url,
)

if TYPE_CHECKING:
    from fhirflow.config import Settings


class SnowflakeWarehouse:
    """The Warehouse Protocol on Snowflake through snowflake-connector-python."""

    def __init__(
        self,
        connection: Any,
        *,
        description: str,
        mode: str = "copy",
        stage: str = "FHIR_BUNDLES_STAGE",
        stage_url: str | None = None,
        stage_ddl: str | Callable[[], str] | None = None,
        query_tag: str = "fhirflow",
        schema: str = RAW,
    ) -> None:
        if mode not in {"copy", "insert"}:
            raise ConfigError(f"FHIRFLOW_SNOWFLAKE_LOAD_MODE: use 'copy' or 'insert', not {mode!r}")
        self.con = connection
        self._client = client.Client(connection)
        self.description = description
        self.mode = mode
        # Mode copy: COPY reads the objects from the stage itself, so it needs their URLs.
        self.reads: FileAccess = "url" if mode == "copy" else "path"
        self.stage = stage
        # s3://bucket/<prefix>/: COPY names a file by its path relative to this.
        self.stage_url = stage_url
        # The CREATE STAGE statement, or a function that builds it when create_tables needs
        # it: its credentials are checked only then, so reading (status, export-csv) works
        # without them.
        self._stage_ddl = stage_ddl
        # A batch's statements carry "<tag> load <load_id>" (QUERY_HISTORY.QUERY_TAG).
        self.query_tag = query_tag
        # SNOWFLAKE_SCHEMA: the statements name RAW, and are renamed on their way (in_schema).
        self.schema = schema

    @classmethod
    def from_settings(cls, settings: Settings) -> SnowflakeWarehouse:
        connection = client.connect(settings, schema=settings.snowflake_schema)

        def stage_ddl() -> str:
            secret, token = settings.aws_secret_access_key, settings.aws_session_token
            return stage_sql(
                settings.snowflake_stage,
                stage_url(settings.aws_s3_bucket, settings.aws_s3_prefix),
                storage_integration=settings.snowflake_storage_integration,
                aws_key_id=settings.aws_access_key_id,
                aws_secret_key=secret.get_secret_value() if secret else None,
                aws_token=token.get_secret_value() if token else None,
                endpoint=s3compat_endpoint(settings.aws_endpoint_url),
            )

        return cls(
            connection,
            description=f"Snowflake {settings.snowflake_account}/{settings.snowflake_database}",
            mode=settings.snowflake_load_mode,
            stage=settings.snowflake_stage,
            stage_url=stage_url(settings.aws_s3_bucket, settings.aws_s3_prefix),
            stage_ddl=stage_ddl if settings.snowflake_load_mode == "copy" else None,
            query_tag=settings.snowflake_query_tag,
            schema=settings.snowflake_schema,
        )

    # -- plumbing -------------------------------------------------------------------------

    def _execute(self, sql: str, params: Any = None) -> Any:
        return self._client.execute(in_schema(sql, self.schema), params)

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._client.executemany(in_schema(sql, self.schema), rows)

    def close(self) -> None:
        self._client.close()

    def cursor(self) -> Any:
        return self._client.cursor()

    # -- the Protocol ---------------------------------------------------------------------

    def create_tables(self) -> None:
        # Built first: missing stage credentials are one ConfigError before any DDL runs.
        stage_ddl = self._stage_ddl if self.mode == "copy" else None
        if callable(stage_ddl):
            stage_ddl = stage_ddl()
        for statement in DDL:
            self._execute(statement)
        if self._execute(OLD_LAYOUT).fetchone()[0]:
            with self._client.transaction():
                for statement in MIGRATE:
                    self._execute(statement)
        if self.mode == "copy":
            self._execute(FILE_FORMAT_DDL)
            self._execute(LINES_FORMAT_DDL)
            if stage_ddl:
                self._client.execute_secret(in_schema(stage_ddl, self.schema),
                                            f"cannot create stage {self.schema}.{self.stage}")

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
        batch: list[BatchFile],
        *,
        rejected: list[Rejected],
        started_at: datetime,
    ) -> BatchResult:
        with self._client.tagged(f"{self.query_tag} load {load_id}"):
            return self._load_batch(load_id, batch, rejected=rejected, started_at=started_at)

    def _load_batch(
        self,
        load_id: str,
        batch: list[BatchFile],
        *,
        rejected: list[Rejected],
        started_at: datetime,
    ) -> BatchResult:
        result = BatchResult(load_id=load_id, files_seen=len(batch) + len(rejected))
        kinds = {f.key: self._kind(f) for f in batch}
        # A bundle larger than any value Snowflake stores, whatever FHIRFLOW_MAX_FILE_MB
        # allows; NDJSON arrives line by line, so its size does not matter.
        rejected = list(rejected) + [
            Rejected(f.key, f.size, reasons.too_big(f.size, MAX_OBJECT_BYTES))
            for f in batch if f.size > MAX_OBJECT_BYTES and kinds[f.key] != "ndjson"]
        batch = [f for f in batch if f.size <= MAX_OBJECT_BYTES or kinds[f.key] == "ndjson"]
        # Before any statement: a file COPY cannot reach from the stage fails the batch here.
        named = [(f, self._stage_path(f)) for f in batch]
        for statement in BATCH_TABLES:
            self._execute(statement)
        self._executemany(INSERT_BATCH_FILE, [
            (f.key, path, f.size, kinds[f.key], files.source_name(f.key)) for f, path in named])
        if named:
            if self.mode == "copy":
                by_path = {path: f for f, path in named}
                for lines in (False, True):
                    paths = [p for f, p in named if (kinds[f.key] == "ndjson") == lines]
                    for i in range(0, len(paths), MAX_FILES_PER_COPY):
                        gone = copy_files(self._execute, self._executemany, self.stage,
                                          paths[i : i + MAX_FILES_PER_COPY],
                                          schema=self.schema, lines=lines)
                        rejected += [Rejected(by_path[p].key, by_path[p].size, reasons.GONE)
                                     for p in gone]
            else:
                rejected += send_texts(self._executemany, named, kinds)
            # Both modes: the text becomes FHIRFLOW_INCOMING inside Snowflake.
            for statement in PARSE_TEXT:
                self._execute(statement)
        self._executemany(INSERT_REJECTED, [(r.key, r.size, r.reason, files.source_name(r.key))
                                            for r in rejected])
        for statement in (MATCH, CLASSIFY, SKIP_RESENT, CANDIDATES):
            self._execute(statement)

        watermark = max([f.key for f in batch] + [r.key for r in rejected], default=None)
        now = utcnow()
        with self._client.transaction():
            self._execute(INSERT_RESOURCES, (load_id, now))
            self._execute(INSERT_ENTRY_ERRORS, (load_id, now))
            self._execute(INSERT_BUNDLES, (load_id, now))
            self._execute(INSERT_ERRORS, (load_id, now))
            for statement in SUPERSEDE:
                self._execute(statement, (load_id,))
            loaded, size = self._execute(BATCH_TOTALS, (load_id,)).fetchone()
            entries, refused = self._execute(BATCH_ENTRIES, (load_id,)).fetchone()
            errors = self._execute(BATCH_ERRORS, (load_id,)).fetchall()
            samples = self._execute(BATCH_ENTRY_ERRORS, (load_id, ENTRY_SAMPLE)).fetchall()
            result.files_loaded = int(loaded)
            result.bytes_loaded = int(size or 0)
            result.entries_loaded = int(entries or 0)
            result.entries_rejected = int(refused or 0)
            result.errors = [Rejected(k, int(s) if s is not None else 0, r) for k, s, r in errors]
            result.entry_errors = [
                EntryRejected(k, _int(i), _int(n), r) for k, i, n, r in samples]
            result.files_failed = len(result.errors)
            result.watermark = watermark
            self._insert_watermark(result.watermark_row(started_at))
        return result

    def _kind(self, file: BatchFile) -> str:
        """Mode insert reads the file, so its content tells; mode copy must name COPY's
        format before Snowflake reads it, so there the name tells (.ndjson, .jsonl, .gz)."""
        if self.mode == "insert" and file.path is not None and file.path.is_file():
            return files.kind_of(file.path, file.key).kind
        return "ndjson" if files.is_ndjson_name(file.key) else "bundle"

    def _insert_watermark(self, row: tuple[Any, ...]) -> None:
        self._execute(INSERT_WATERMARK, row)

    def _stage_path(self, file: BatchFile) -> str:
        """The name of the file in FHIRFLOW_BATCH_FILES: in mode copy its path relative to the
        stage URL (as COPY reports it); in mode insert its key."""
        if self.mode == "insert":
            if file.path is None:
                raise ValueError(f"{file.key}: mode insert reads batch files from local paths")
            return file.key
        if not (self.stage_url and file.url and file.url.startswith(self.stage_url)):
            raise ConfigError(
                "COPY INTO reads the files from the S3 stage: use --store s3 with "
                "AWS_S3_BUCKET, or FHIRFLOW_SNOWFLAKE_LOAD_MODE=insert"
            )
        return file.url.removeprefix(self.stage_url)

    def recent_loads(self, limit: int = 5) -> list[LoadRecord]:
        rows = self._execute(recent_loads_sql(limit)).fetchall()
        return [
            LoadRecord(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]), r[7], r[8])
            for r in rows
        ]

    def raw_counts(self) -> dict[str, int]:
        row = self._execute(RAW_COUNTS).fetchone()
        return {"bundles": int(row[0]), "errors": int(row[1]), "loads": int(row[2]),
                "resources": int(row[3]), "entry_errors": int(row[4])}

    def model_counts(self) -> dict[str, dict[str, int]]:
        schemas = [s.upper() for s in MODEL_SCHEMAS]
        relations = self._execute(model_relations_sql(len(schemas)), schemas).fetchall()
        counts: dict[str, dict[str, int]] = {schema: {} for schema in MODEL_SCHEMAS}
        for schema, name in relations:
            (n,) = self._execute(count_sql(schema, name)).fetchone()
            counts[schema.lower()][name.lower()] = int(n)
        return counts

    def query(self, sql: str) -> list[dict[str, Any]]:
        cur = self._execute(sql)
        names = [d[0].lower() for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
