"""Settings: the one place that reads the environment.

Every other module receives a `Settings` object. Variable names follow the seed where it has
one (AWS_S3_BUCKET, SNOWFLAKE_*) and carry the FHIRFLOW_ prefix otherwise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fhirflow.errors import ConfigError


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Typed view of the environment. Build it with `load_settings()`."""

    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", populate_by_name=True, frozen=True
    )

    home: Path = Field(Path("./data"), validation_alias=_env("FHIRFLOW_HOME"))
    warehouse: Literal["duckdb", "snowflake"] = Field(
        "duckdb", validation_alias=_env("FHIRFLOW_WAREHOUSE")
    )
    store: Literal["local", "s3"] = Field("local", validation_alias=_env("FHIRFLOW_STORE"))

    aws_s3_bucket: str = Field("synthea-fhir-data-dump", validation_alias=_env("AWS_S3_BUCKET"))
    aws_s3_prefix: str = Field("raw", validation_alias=_env("AWS_S3_PREFIX"))
    aws_endpoint_url: str | None = Field(None, validation_alias=_env("AWS_ENDPOINT_URL"))
    aws_region: str = Field("us-east-1", validation_alias=_env("AWS_DEFAULT_REGION"))
    # boto3 finds credentials itself (env, profile, instance role); these two are read only
    # to give a Snowflake external stage keys when no storage integration is configured.
    aws_access_key_id: str | None = Field(None, validation_alias=_env("AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("AWS_SECRET_ACCESS_KEY")
    )
    # Temporary credentials (STS, an assumed role) come with a session token: the stage needs
    # it beside the keys, or Snowflake's requests to S3 are refused.
    aws_session_token: SecretStr | None = Field(None, validation_alias=_env("AWS_SESSION_TOKEN"))
    upload_workers: int = Field(8, gt=0, le=64, validation_alias=_env("FHIRFLOW_UPLOAD_WORKERS"))
    store_attempts: int = Field(4, gt=0, le=20, validation_alias=_env("FHIRFLOW_STORE_ATTEMPTS"))
    # Per request to the object store: a hung endpoint costs attempts x read timeout.
    store_connect_timeout: float = Field(
        5.0, gt=0, le=600, validation_alias=_env("FHIRFLOW_STORE_CONNECT_TIMEOUT")
    )
    store_read_timeout: float = Field(
        12.0, gt=0, le=3600, validation_alias=_env("FHIRFLOW_STORE_READ_TIMEOUT")
    )

    snowflake_account: str | None = Field(None, validation_alias=_env("SNOWFLAKE_ACCOUNT"))
    snowflake_user: str | None = Field(None, validation_alias=_env("SNOWFLAKE_USER"))
    snowflake_password: SecretStr | None = Field(
        None, validation_alias=_env("SNOWFLAKE_PASSWORD")
    )
    # Key pair (Snowflake blocks single-factor password sign-ins for service users): a PEM
    # private key, and its passphrase when it is encrypted.
    snowflake_private_key_path: Path | None = Field(
        None, validation_alias=_env("SNOWFLAKE_PRIVATE_KEY_PATH")
    )
    snowflake_private_key_passphrase: SecretStr | None = Field(
        None, validation_alias=_env("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
    )
    # A programmatic access token (or an OAuth access token with SNOWFLAKE_AUTHENTICATOR=oauth).
    snowflake_token: SecretStr | None = Field(None, validation_alias=_env("SNOWFLAKE_TOKEN"))
    # Unset: the method follows from the one credential given (see warehouse/snowflake/auth.py).
    snowflake_authenticator: str | None = Field(
        None, validation_alias=_env("SNOWFLAKE_AUTHENTICATOR")
    )
    # QUERY_TAG of every session fhirflow opens (loads add their load id; dbt adds "dbt"),
    # so the account's QUERY_HISTORY shows what ran for whom.
    snowflake_query_tag: str = Field(
        "fhirflow", max_length=1000, validation_alias=_env("SNOWFLAKE_QUERY_TAG")
    )
    snowflake_database: str = Field("SYNTHEA", validation_alias=_env("SNOWFLAKE_DATABASE"))
    snowflake_warehouse: str = Field("COMPUTE_WH", validation_alias=_env("SNOWFLAKE_WAREHOUSE"))
    snowflake_schema: str = Field("RAW", validation_alias=_env("SNOWFLAKE_SCHEMA"))
    snowflake_role: str = Field("TRANSFORMER", validation_alias=_env("SNOWFLAKE_ROLE"))
    # Only for Snowflake-compatible test servers (fakesnow); real accounts need none of these.
    snowflake_host: str | None = Field(None, validation_alias=_env("SNOWFLAKE_HOST"))
    snowflake_port: int | None = Field(None, validation_alias=_env("SNOWFLAKE_PORT"))
    snowflake_protocol: str | None = Field(None, validation_alias=_env("SNOWFLAKE_PROTOCOL"))
    # The external stage on the bucket: a storage integration (preferred), else AWS keys.
    snowflake_storage_integration: str | None = Field(
        None, validation_alias=_env("SNOWFLAKE_STORAGE_INTEGRATION")
    )
    snowflake_stage: str = Field("FHIR_BUNDLES_STAGE", validation_alias=_env("SNOWFLAKE_STAGE"))
    # copy: COPY INTO from the external stage (production). insert: the loader fetches each
    # object and inserts its text for PARSE_JSON (no stage needed; also what fakesnow runs).
    snowflake_load_mode: Literal["copy", "insert"] = Field(
        "copy", validation_alias=_env("FHIRFLOW_SNOWFLAKE_LOAD_MODE")
    )

    load_batch_size: int = Field(100, gt=0, validation_alias=_env("FHIRFLOW_LOAD_BATCH_SIZE"))
    # Caps DuckDB's memory in the load and in dbt alike (dbt/profiles.yml): DuckDB otherwise
    # grows to 80% of RAM; past the cap it spills to `<warehouse>.duckdb.tmp/`.
    duckdb_memory_limit: str = Field(
        "1.5GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        validation_alias=_env("FHIRFLOW_DUCKDB_MEMORY_LIMIT"),
    )
    max_file_mb: float = Field(64.0, gt=0, validation_alias=_env("FHIRFLOW_MAX_FILE_MB"))
    landing_ttl_hours: float = Field(
        24.0, gt=0, validation_alias=_env("FHIRFLOW_LANDING_TTL_HOURS")
    )
    # 0: staging reads only rows loaded after its newest (see resources_of_type.sql).
    staging_lookback_days: int = Field(
        0, ge=0, validation_alias=_env("FHIRFLOW_STAGING_LOOKBACK_DAYS")
    )
    synthea_jar: Path | None = Field(None, validation_alias=_env("SYNTHEA_JAR"))
    dbt_target: str | None = Field(None, validation_alias=_env("FHIRFLOW_DBT_TARGET"))
    dbt_project_dir: Path | None = Field(None, validation_alias=_env("FHIRFLOW_DBT_PROJECT_DIR"))
    # On DuckDB every dbt thread shares one process's cores and FHIRFLOW_DUCKDB_MEMORY_LIMIT,
    # and DuckDB already runs each model on every core: a second thread only adds a model
    # competing for the same memory (two claims models at 3 GB ran out of a 1.5 GB cap).
    # Measured again at 1 GB (bench_pipeline --env FHIRFLOW_DBT_THREADS=2, two alternating
    # pairs on the shared 2-core machine, load average 5-6): the full build's dbt time was
    # the same (median 46 s with 2 threads, 45 s with 1) and so was peak RSS (1.65-1.69 GB);
    # 2 threads overlap one node's Python with another's SQL, which shortened the build of
    # an empty RAW (dbt 11.7 s against 20.0 s, noisy) and the +1% run a little (18.7 s
    # against 21.8 s). Not worth the memory risk at 3 GB as the default; Snowflake keeps 4.
    dbt_threads: int = Field(1, gt=0, validation_alias=_env("FHIRFLOW_DBT_THREADS"))
    # Put in front of every layer's schema on Snowflake (staging -> <prefix>staging): a
    # developer's own schemas, or `fhirflow doctor`'s scratch ones. Empty: the layers' names.
    dbt_schema_prefix: str = Field(
        "", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$",
        validation_alias=_env("FHIRFLOW_DBT_SCHEMA_PREFIX"),
    )

    @field_validator("home")
    @classmethod
    def _home_usable(cls, home: Path) -> Path:
        home = home.expanduser()
        if home.exists():
            if not home.is_dir():
                raise ValueError(f"{home} exists and is not a directory")
            if not os.access(home, os.R_OK | os.W_OK | os.X_OK):
                raise ValueError(f"{home} is not readable and writable")
            _probe_writable(home, home)
            return home.resolve()
        parent = next((p for p in home.absolute().parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(f"{home} does not exist and cannot be created")
        _probe_writable(parent, home)
        return home.absolute()

    @field_validator("aws_s3_prefix")
    @classmethod
    def _strip_prefix(cls, prefix: str) -> str:
        return prefix.strip("/")

    @field_validator("snowflake_schema", "snowflake_stage")
    @classmethod
    def _snowflake_identifier(cls, name: str) -> str:
        # Written unquoted into SQL: a plain identifier only, stored upper-case by Snowflake.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,254}", name):
            raise ValueError("use letters, digits, _ and $ only, starting with a letter or _")
        return name.upper()

    @field_validator("snowflake_authenticator")
    @classmethod
    def _authenticator(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if value.lower().startswith("https://"):
            return value  # native Okta: the URL of the Okta account
        known = ("snowflake", "snowflake_jwt", "programmatic_access_token", "oauth",
                 "externalbrowser", "username_password_mfa")
        if value.lower() not in known:
            raise ValueError(f"use one of {', '.join(known)} or an https:// Okta URL")
        return value.lower()

    @field_validator("snowflake_private_key_path")
    @classmethod
    def _key_path(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path is not None else None

    # Paths of the embedded state, all under FHIRFLOW_HOME.
    @property
    def landing_dir(self) -> Path:
        return self.home / "output" / "bundles"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def duckdb_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def patients_prefix(self) -> str:
        """Object-store prefix under which uploaded bundles live."""
        return f"{self.aws_s3_prefix}/patients/" if self.aws_s3_prefix else "patients/"

    @property
    def max_file_bytes(self) -> int:
        """FHIRFLOW_MAX_FILE_MB in bytes: files above it are quarantined, not loaded."""
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def resolved_dbt_target(self) -> str:
        return self.dbt_target or self.warehouse


def _probe_writable(folder: Path, home: Path) -> None:
    """Create and remove a folder in `folder`: access() says yes as root, and on /proc, a
    read-only mount or an immutable folder, where only trying tells."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".fhirflow-probe-", dir=folder))
    except OSError as exc:
        raise ValueError(
            f"{home} cannot be created or written ({exc.strerror or exc} in {folder}); "
            "choose a writable folder"
        ) from None


# Never shown, not even in a validation error's "(got ...)".
SECRET_FIELDS = frozenset({
    "snowflake_password", "snowflake_private_key_passphrase", "snowflake_token",
    "aws_secret_access_key", "aws_session_token",
})


def _env_name(cls: type[BaseSettings], field: str) -> str:
    info = cls.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias) if alias else field.upper()


def _one_line(cls: type[BaseSettings], exc: ValidationError) -> ConfigError:
    """The first validation error as one line naming the environment variable."""
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    message = first["msg"].removeprefix("Value error, ")
    shown = "" if field in SECRET_FIELDS else f" (got {first.get('input')!r})"
    return ConfigError(f"{_env_name(cls, field)}: {message}{shown}")


def described(settings: Settings) -> dict[str, str | None]:
    """Every setting by its environment variable, as resolved; a secret only as "set" (or
    None when unset), never its value. What `fhirflow doctor` prints."""
    shown: dict[str, str | None] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name in SECRET_FIELDS:
            shown[_env_name(Settings, name)] = None if value is None else "set"
        else:
            shown[_env_name(Settings, name)] = None if value is None else str(value)
    return shown


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides, e.g. from CLI flags) into Settings.

    A bad value raises ConfigError with one line naming the variable.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        raise _one_line(Settings, exc) from None


class DagSettings(BaseSettings):
    """Airflow-only knobs. Settings that the CLI shares (batch size, paths) stay in Settings.

    A schedule is a cron expression or preset (`*/5 * * * *`, `@hourly`), a duration
    (`10s`, `30s`, `5m`, `1h`), or `none` for manual runs only.
    """

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    generation_schedule: str = Field("10s", validation_alias="FHIRFLOW_GENERATION_SCHEDULE")
    upload_schedule: str = Field("30s", validation_alias="FHIRFLOW_UPLOAD_SCHEDULE")
    load_schedule: str = Field("*/5 * * * *", validation_alias="FHIRFLOW_LOAD_SCHEDULE")
    transform_schedule: str = Field("*/10 * * * *", validation_alias="FHIRFLOW_TRANSFORM_SCHEDULE")
    # `time`: the transform DAG runs on transform_schedule (the seed's way);
    # `asset`: it runs whenever the load DAG loaded new files (lower latency).
    transform_trigger: Literal["time", "asset"] = Field(
        "time", validation_alias="FHIRFLOW_TRANSFORM_TRIGGER"
    )

    generation_patients: int = Field(2, gt=0, validation_alias="FHIRFLOW_GENERATION_PATIENTS")
    generation_seed: int = Field(0, validation_alias="FHIRFLOW_GENERATION_SEED")
    generation_years: int = Field(10, gt=0, validation_alias="FHIRFLOW_GENERATION_YEARS")
    generation_state: str = Field("Massachusetts", validation_alias="FHIRFLOW_GENERATION_STATE")
    # bundle: Synthea's files; ndjson / ndjson.gz: a FHIR Bulk Data export (simulator only).
    generation_format: Literal["bundle", "ndjson", "ndjson.gz"] = Field(
        "bundle", validation_alias="FHIRFLOW_GENERATION_FORMAT"
    )

    load_max_files_per_run: int = Field(
        10_000, gt=0, validation_alias="FHIRFLOW_LOAD_MAX_FILES_PER_RUN"
    )
    sensor_timeout_minutes: float = Field(
        15, gt=0, validation_alias="FHIRFLOW_SENSOR_TIMEOUT_MINUTES"
    )
    sensor_poke_seconds: float = Field(30, gt=0, validation_alias="FHIRFLOW_SENSOR_POKE_SECONDS")
    sensor_deferrable: bool = Field(False, validation_alias="FHIRFLOW_SENSOR_DEFERRABLE")

    retries: int = Field(2, ge=0, validation_alias="FHIRFLOW_TASK_RETRIES")
    retry_delay_seconds: float = Field(30, ge=0, validation_alias="FHIRFLOW_RETRY_DELAY_SECONDS")
    max_retry_delay_minutes: float = Field(
        10, gt=0, validation_alias="FHIRFLOW_MAX_RETRY_DELAY_MINUTES"
    )
    # Comma-separated addresses; empty (the default) sends no e-mail.
    alert_email: str = Field("", validation_alias="FHIRFLOW_ALERT_EMAIL")
    smtp_conn_id: str = Field("smtp_default", validation_alias="FHIRFLOW_SMTP_CONN_ID")

    # Every task that opens the warehouse takes a slot of this pool. One slot, because a
    # DuckDB file has one writer; on Snowflake the pool may be given more slots.
    warehouse_pool: str = Field("fhirflow_warehouse", validation_alias="FHIRFLOW_WAREHOUSE_POOL")
    # The transform DAG's dbt layers: `model` renders each layer as a Cosmos task group, one
    # task per model and one for its tests (dbt runs once per layer, the tasks watch it);
    # `layer` runs each layer as the one task `dbt_run_<layer>`.
    dbt_tasks: Literal["model", "layer"] = Field("model", validation_alias="FHIRFLOW_DBT_TASKS")
    # How often a per-model task checks whether dbt has finished its model.
    dbt_watch_poke_seconds: int = Field(
        1, gt=0, le=60, validation_alias="FHIRFLOW_DBT_WATCH_POKE_SECONDS"
    )
    # `dbt source freshness` in the transform DAG fails when RAW's newest load is older.
    raw_freshness_minutes: int = Field(
        60, gt=0, validation_alias="FHIRFLOW_RAW_FRESHNESS_MINUTES"
    )
    # Where `dbt docs generate` writes the static docs site; default <dbt project>/target.
    dbt_docs_dir: Path | None = Field(None, validation_alias="FHIRFLOW_DBT_DOCS_DIR")

    @property
    def alert_recipients(self) -> list[str]:
        return [a.strip() for a in self.alert_email.split(",") if a.strip()]


def load_dag_settings() -> DagSettings:
    try:
        return DagSettings()
    except ValidationError as exc:
        raise _one_line(DagSettings, exc) from None


@contextmanager
def exported(values: Mapping[str, str]) -> Iterator[None]:
    """Export variables for code that reads the environment itself (dbt's profiles.yml,
    boto3's credential chain) while the block runs, then restore what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
