"""The warehouse RAW layer: RAW.FHIR_BUNDLES, RAW.LOAD_WATERMARK, RAW.LOAD_ERRORS.

Two implementations of one Protocol: DuckDB (embedded default) and Snowflake (production).
A warehouse never calls the object store: the load stage hands it each file as a local path,
or as the object's URL when the warehouse reads the store itself (Snowflake's COPY).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fhirflow.errors import FhirflowError

if TYPE_CHECKING:
    from fhirflow.config import Settings

# Schemas dbt builds into; `fhirflow status` counts the relations in them.
MODEL_SCHEMAS = ("staging", "intermediate", "marts")


FileAccess = Literal["path", "url"]
"""How a warehouse reads a batch's files: from local paths, or itself from the objects' URLs."""


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch, as the load stage hands it over: `path` is a local file holding
    the object (the local store's own file, or a copy fetched for the batch); `url` is the
    object's location in the store (`s3://bucket/key`, `file:///...`), for a warehouse that
    reads the store itself. Which of the two is set follows the warehouse's `reads`."""

    key: str
    size: int
    path: Path | None = None
    url: str | None = None


@dataclass(frozen=True)
class Rejected:
    key: str
    size: int
    reason: str


@dataclass
class BatchResult:
    load_id: str
    files_seen: int = 0
    files_loaded: int = 0
    files_failed: int = 0
    bytes_loaded: int = 0
    watermark: str | None = None
    errors: list[Rejected] = field(default_factory=list)

    def watermark_row(self, started_at: datetime) -> tuple[object, ...]:
        """RAW.LOAD_WATERMARK values for this batch, in column order (status excluded)."""
        return (
            self.load_id,
            started_at.astimezone(UTC).replace(tzinfo=None),
            utcnow(),
            self.files_seen,
            self.files_loaded,
            self.files_failed,
            self.bytes_loaded,
            self.watermark,
        )


def utcnow() -> datetime:
    """Now in UTC without a zone: how RAW's timestamp columns hold times on both warehouses."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class LoadRecord:
    load_id: str
    started_at: datetime | None
    finished_at: datetime | None
    files_seen: int
    files_loaded: int
    files_failed: int
    bytes_loaded: int
    watermark: str | None
    status: str

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for name in ("started_at", "finished_at"):
            value = out[name]
            out[name] = value.isoformat() if value else None
        return out


class Warehouse(Protocol):
    """What the load stage and `fhirflow status` need from a warehouse."""

    description: str
    reads: FileAccess
    """"path": load_batch reads each BatchFile's local `path`; "url": it reads `url` itself."""

    def create_tables(self) -> None:
        """Create RAW.FHIR_BUNDLES, RAW.LOAD_WATERMARK and RAW.LOAD_ERRORS if missing."""
        ...

    def last_watermark(self) -> str | None:
        """The highest object key covered by a completed load."""
        ...

    def known_keys(self, keys: list[str]) -> set[str]:
        """Which of these keys RAW already holds, as a bundle or as a recorded error."""
        ...

    def load_batch(
        self,
        load_id: str,
        files: list[BatchFile],
        *,
        rejected: list[Rejected],
        started_at: datetime,
    ) -> BatchResult:
        """Load the files (keys unique in the batch), record them or their reasons and the
        `rejected` ones in RAW.LOAD_ERRORS, and write the watermark: one transaction."""
        ...

    def recent_loads(self, limit: int = 5) -> list[LoadRecord]: ...

    def raw_counts(self) -> dict[str, int]:
        """{'bundles': n, 'errors': n, 'loads': n}"""
        ...

    def model_counts(self) -> dict[str, dict[str, int]]:
        """Row counts of the dbt-built relations, per layer schema and model name."""
        ...

    def cursor(self) -> Any:
        """A DB-API cursor on this warehouse's connection, for read-only queries over the
        dbt-built schemas (export-csv)."""
        ...

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run one read-only SELECT; rows as dicts keyed by lower-case column name (Snowflake
        returns upper-case names). For readers such as the report; FhirflowError on failure."""
        ...

    def close(self) -> None: ...


def open_warehouse(
    settings: Settings, kind: str | None = None, *, read_only: bool = False
) -> Warehouse:
    kind = kind or settings.warehouse
    if kind == "duckdb":
        from fhirflow.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(
            settings.duckdb_path, read_only=read_only, memory_limit=settings.duckdb_memory_limit
        )
    if kind == "snowflake":
        from fhirflow.warehouse.snowflake import SnowflakeWarehouse

        return SnowflakeWarehouse.from_settings(settings)
    raise FhirflowError(f"unknown warehouse {kind!r}; use 'duckdb' or 'snowflake'")
