"""Settings: the one place that reads the environment.

Every other module receives a `Settings` object. Variable names follow the seed where it has
one (AWS_S3_BUCKET, SNOWFLAKE_*) and carry the FHIRFLOW_ prefix otherwise.
"""

from __future__ import annotations

import os
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
    upload_workers: int = Field(8, gt=0, le=64, validation_alias=_env("FHIRFLOW_UPLOAD_WORKERS"))
    store_attempts: int = Field(4, gt=0, le=20, validation_alias=_env("FHIRFLOW_STORE_ATTEMPTS"))

    snowflake_account: str | None = Field(None, validation_alias=_env("SNOWFLAKE_ACCOUNT"))
    snowflake_user: str | None = Field(None, validation_alias=_env("SNOWFLAKE_USER"))
    snowflake_password: SecretStr | None = Field(
        None, validation_alias=_env("SNOWFLAKE_PASSWORD")
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
    max_file_mb: float = Field(64.0, gt=0, validation_alias=_env("FHIRFLOW_MAX_FILE_MB"))
    landing_ttl_hours: float = Field(
        24.0, gt=0, validation_alias=_env("FHIRFLOW_LANDING_TTL_HOURS")
    )
    staging_lookback_days: int = Field(
        7, ge=0, validation_alias=_env("FHIRFLOW_STAGING_LOOKBACK_DAYS")
    )
    synthea_jar: Path | None = Field(None, validation_alias=_env("SYNTHEA_JAR"))
    dbt_target: str | None = Field(None, validation_alias=_env("FHIRFLOW_DBT_TARGET"))
    dbt_project_dir: Path | None = Field(None, validation_alias=_env("FHIRFLOW_DBT_PROJECT_DIR"))
    dbt_threads: int = Field(4, gt=0, validation_alias=_env("FHIRFLOW_DBT_THREADS"))

    @field_validator("home")
    @classmethod
    def _home_usable(cls, home: Path) -> Path:
        home = home.expanduser()
        if home.exists():
            if not home.is_dir():
                raise ValueError(f"{home} exists and is not a directory")
            if not os.access(home, os.R_OK | os.W_OK | os.X_OK):
                raise ValueError(f"{home} is not readable and writable")
            return home.resolve()
        parent = next((p for p in home.absolute().parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(f"{home} does not exist and cannot be created")
        return home.absolute()

    @field_validator("aws_s3_prefix")
    @classmethod
    def _strip_prefix(cls, prefix: str) -> str:
        return prefix.strip("/")

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
    def resolved_dbt_target(self) -> str:
        return self.dbt_target or self.warehouse


_ENV_NAMES = {
    name: (field.validation_alias.choices[0] if field.validation_alias else name.upper())
    for name, field in Settings.model_fields.items()
}


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides, e.g. from CLI flags) into Settings.

    A bad value raises ConfigError with one line naming the variable.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        env_name = _ENV_NAMES.get(field, field)
        message = first["msg"].removeprefix("Value error, ")
        got = first.get("input")
        secret = field in {"snowflake_password", "aws_secret_access_key"}
        shown = "" if secret else f" (got {got!r})"
        raise ConfigError(f"{env_name}: {message}{shown}") from None
