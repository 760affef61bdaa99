"""The one module that composes stages. The CLI and the Airflow tasks call these functions.

Each function opens what its stage needs (store, warehouse, dbt), runs the stage and returns
its own result dataclass; printing and logging are the caller's. Stages hand nothing to each
other in memory: generate/land writes the landing folder, upload reads it, load reads the
object store, dbt reads RAW, so `run_once` is these functions one after the other.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fhirflow.config import Settings
from fhirflow.errors import ConfigError, FhirflowError, first_line
from fhirflow.landing import IngestResult, read_report
from fhirflow.load import LoadProgress, LoadResult, run_load
from fhirflow.store import StoredObject, open_store
from fhirflow.transform import Mode, Selection, TransformResult
from fhirflow.upload import Progress as UploadProgress
from fhirflow.upload import UploadResult, upload_landing
from fhirflow.warehouse import LoadRecord, Warehouse, open_warehouse

if TYPE_CHECKING:
    from fhirflow.report import ReportResult

Say = Callable[[str], None]
Engine = Literal["simulator", "synthea", "auto"]
"""simulator: the built-in generator; synthea: the real jar (SYNTHEA_JAR or --synthea-jar);
auto: Synthea when a jar is configured, else the simulator (the generation DAG)."""
OutputFormat = Literal["bundle", "ndjson", "ndjson.gz"]
"""bundle: Synthea's files; ndjson / ndjson.gz: a FHIR Bulk Data export (the simulator only)."""


def _quiet(_message: str) -> None:
    pass


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 patient`, `2 patients`, `0 files`; `many` for irregular plurals (`batches`)."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


@contextmanager
def _warehouse(settings: Settings, kind: str | None = None, *,
               read_only: bool = False) -> Iterator[Warehouse]:
    warehouse = open_warehouse(settings, kind, read_only=read_only)
    try:
        yield warehouse
    finally:
        warehouse.close()


# --- generate / land -------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateOptions:
    patients: int = 20
    seed: int = 42
    years_of_history: int = 10
    state: str = "Massachusetts"
    engine: Engine = "simulator"
    workers: int | None = None  # simulator processes; None: the cores available
    output_format: OutputFormat = "bundle"


@dataclass
class Generated:
    engine: Literal["simulator", "synthea"]
    seed: int
    patients: int
    files: int
    bytes: int
    seconds: float
    landing_dir: Path


@dataclass
class Landed:
    """An existing Synthea output folder placed into landing (`--from-dir`)."""

    source: Path
    ingest: IngestResult
    seconds: float

    @property
    def patients(self) -> int:
        return len(self.ingest.patients)

    @property
    def copied(self) -> int:
        return self.ingest.copied

    @property
    def unchanged(self) -> int:
        return self.ingest.unchanged

    @property
    def bytes(self) -> int:
        return self.ingest.bytes

    @property
    def files(self) -> int:
        return self.copied + self.unchanged


def generate(settings: Settings, options: GenerateOptions, say: Say = _quiet) -> Generated:
    """New patients into landing, by the simulator or the real Synthea jar."""
    from fhirflow import generate as gen

    engine = options.engine
    if engine == "auto":
        engine = "synthea" if settings.synthea_jar is not None else "simulator"
    who = plural(options.patients, "patient")
    if engine == "synthea":
        if options.output_format != "bundle":
            raise ConfigError(f"--format {options.output_format} is the simulator's; the Synthea "
                              "jar writes bundles here (use --engine simulator)")
        if settings.synthea_jar is None:
            raise ConfigError("--engine synthea needs --synthea-jar PATH or SYNTHEA_JAR")
        say(f"running Synthea {settings.synthea_jar} for {who} (seed {options.seed})")
        made = gen.run_synthea(settings.landing_dir, jar=settings.synthea_jar,
                               patients=options.patients, seed=options.seed,
                               years_of_history=options.years_of_history, state=options.state)
    else:
        say(f"generating {who} (seed {options.seed})")
        made = gen.generate_patients(settings.landing_dir, patients=options.patients,
                                     seed=options.seed,
                                     years_of_history=options.years_of_history,
                                     state=options.state, workers=options.workers,
                                     output_format=options.output_format)
    return Generated(engine, options.seed, made.patients, made.files, made.bytes, made.seconds,
                     settings.landing_dir)


def land(settings: Settings, from_dir: Path, say: Say = _quiet) -> Landed:
    """An existing Synthea output folder (or its fhir/ subfolder) into landing."""
    from fhirflow.landing import ingest_synthea_output, write_report

    if not Path(from_dir).is_dir():
        raise ConfigError(f"--from-dir {from_dir}: no such folder")
    started = time.perf_counter()
    say(f"landing Synthea output from {from_dir}")
    ingested = ingest_synthea_output(Path(from_dir), settings.landing_dir,
                                     max_inspect_bytes=settings.max_file_bytes)
    write_report(settings.state_dir, ingested, source=Path(from_dir))
    return Landed(Path(from_dir), ingested, time.perf_counter() - started)


# --- upload / clean --------------------------------------------------------------------------


@dataclass
class Uploaded:
    store: str
    result: UploadResult


@dataclass
class Cleaned:
    ttl_hours: float
    dry_run: bool
    removed: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (landing relpath, reason)

    @property
    def kept_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(reason for _path, reason in self.kept).items()))


def upload(settings: Settings, say: Say = _quiet, *, store_kind: str | None = None,
           progress: UploadProgress | None = None) -> Uploaded:
    """Landed files the store does not hold yet into the object store."""
    store = open_store(settings, store_kind)
    say(f"uploading to {store.description}")
    result = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir, workers=settings.upload_workers,
                            progress=progress)
    return Uploaded(store.description, result)


def clean(settings: Settings, say: Say = _quiet, *, dry_run: bool = False) -> Cleaned:
    """Landed files older than the TTL that the store holds; never one not uploaded yet."""
    from fhirflow.landing import clean_landing
    from fhirflow.upload import is_uploaded

    store = open_store(settings)
    say(f"cleaning {settings.landing_dir} (files older than {settings.landing_ttl_hours:g} h)")
    result = clean_landing(settings.landing_dir, settings.landing_ttl_hours,
                           is_uploaded(settings.state_dir, store), dry_run=dry_run)
    return Cleaned(settings.landing_ttl_hours, dry_run, result.removed, result.kept)


# --- load ------------------------------------------------------------------------------------


@dataclass
class Loaded:
    warehouse: str
    result: LoadResult
    already_in_raw: int = 0  # of the objects given, those RAW held before (a retry)


@dataclass
class Listing:
    """New objects after the watermark, at most `limit` of them (the next run takes the rest)."""

    store: str
    objects: list[StoredObject]
    remaining: int


@dataclass
class WatermarkCheck:
    watermark: str | None
    raw: dict[str, int]
    recent: list[LoadRecord]


def load(settings: Settings, say: Say = _quiet, *, objects: list[StoredObject] | None = None,
         store_kind: str | None = None, warehouse_kind: str | None = None,
         progress: LoadProgress | None = None) -> Loaded:
    """New files (or exactly `objects`, minus what RAW holds) into RAW, batch by batch."""
    store = open_store(settings, store_kind)
    with _warehouse(settings, warehouse_kind) as warehouse:
        say(f"loading {'new files' if objects is None else plural(len(objects), 'listed file')}"
            f" into {warehouse.description}")
        result = run_load(store, warehouse, prefix=settings.patients_prefix,
                          batch_size=settings.load_batch_size,
                          max_file_bytes=settings.max_file_bytes, progress=progress,
                          objects=objects, fetch_workers=settings.upload_workers)
    return Loaded(warehouse.description, result, already_in_raw=result.files_skipped)


def create_raw_tables(settings: Settings) -> str:
    """RAW.FHIR_BUNDLES, LOAD_WATERMARK and LOAD_ERRORS if missing; the warehouse's name."""
    with _warehouse(settings) as warehouse:
        warehouse.create_tables()
        return warehouse.description


def last_watermark(settings: Settings) -> str | None:
    with _warehouse(settings) as warehouse:
        return warehouse.last_watermark()


def list_new(settings: Settings, *, watermark: str | None, limit: int) -> Listing:
    from fhirflow.load import list_new_files

    store = open_store(settings)
    with _warehouse(settings) as warehouse:
        pending = list_new_files(store, warehouse, prefix=settings.patients_prefix,
                                 watermark=watermark)
    return Listing(store.description, pending[:limit], max(0, len(pending) - limit))


def verify_watermark(settings: Settings, expected: str | None) -> WatermarkCheck:
    """The committed watermark, checked against the last key a load reported.

    Each batch commits its watermark with its rows, so there is nothing to write; one
    behind what the load reported would mean a lost commit.
    """
    with _warehouse(settings) as warehouse:
        found = WatermarkCheck(warehouse.last_watermark(), warehouse.raw_counts(),
                               warehouse.recent_loads(3))
    if expected and (found.watermark is None or found.watermark < expected):
        raise FhirflowError(f"committed watermark {found.watermark!r} is behind this run's last "
                            f"loaded key {expected!r}; inspect RAW.LOAD_WATERMARK")
    return found


# --- transform -------------------------------------------------------------------------------


@contextmanager
def _reading_raw(warehouse: Warehouse) -> Iterator[None]:
    """A RAW that is not there yet (a warehouse file without a load) as one clear line."""
    try:
        yield
    except FhirflowError:
        raise
    except Exception as exc:  # noqa: BLE001 - each driver has its own error types
        raise FhirflowError(f"cannot read RAW in {warehouse.description} ({first_line(exc)}); "
                            "run `fhirflow load` first") from None


def raw_load(settings: Settings) -> str | None:
    """RAW's newest load id (None before the first): what a dbt build reflects."""
    with _warehouse(settings, read_only=True) as warehouse, _reading_raw(warehouse):
        recent = warehouse.recent_loads(1)
    return recent[0].load_id if recent else None


def transform(settings: Settings, say: Say = _quiet, *, layer: str | None = None,
              select: str | None = None, exclude: str | None = None,
              dbt_vars: dict[str, Any] | None = None, full_refresh: bool = False,
              mode: Mode = "build") -> TransformResult:
    """dbt over RAW: everything, one layer (`layer`), or dbt's own `select`/`exclude`.

    Refused (InconsistentBuild, before dbt starts) when a model would be built from inputs
    of different loads, e.g. marts over a staging layer newer than intermediate.
    """
    from fhirflow import transform as tf

    if layer and (select or exclude):
        raise ConfigError("--layer is a shorthand for --select tag:<layer>; give one or the other")
    selection = tf.layer_selection(layer) if layer else Selection(select, exclude)
    say(f"running dbt {'test' if mode == 'tests' else 'build'} ({selection.describe()})")
    loaded = None if mode == "tests" else raw_load(settings)
    return tf.build(settings, selection, raw_load=loaded, mode=mode, full_refresh=full_refresh,
                    dbt_vars=dbt_vars, layer=layer, progress=say)


def check_dbt(settings: Settings) -> dict[str, str]:
    """dbt, the target's adapter and the project are in place (versions and paths)."""
    from fhirflow.transform import check_installation

    return check_installation(settings)


def dbt(settings: Settings, command: str, *, target_path: Path | None = None) -> None:
    """dbt's deps, debug or `docs generate`, with fhirflow's project and profile."""
    from fhirflow.transform import dbt_command

    dbt_command(settings, command, target_path=target_path)


def export_csv(settings: Settings, out_dir: Path, tables: list[str] | None = None) -> Any:
    """The staging layer back to Synthea's CSV tables (fhirflow.export_csv's result)."""
    from fhirflow.export_csv import export_csv as export

    return export(settings, out_dir, tables)


# --- status and the whole run ----------------------------------------------------------------


@dataclass
class Freshness:
    """How far the marts are behind RAW: RAW's newest load against the load the marts were
    last built from (the load ledger of `fhirflow.transform.consistency`)."""

    raw_loaded_at: str | None  # when RAW's newest complete load finished (UTC, ISO 8601)
    raw_load: str | None
    marts_built_at: str | None  # when the marts were last built successfully
    marts_load: str | None  # the RAW load the marts reflect (the oldest among them)
    marts_behind_raw: bool
    loads_not_in_marts: int  # complete loads RAW holds that the marts do not reflect yet

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Loads looked at to count those not in the marts; a count at this cap means "at least".
_FRESHNESS_LOADS = 1000


def freshness(settings: Settings, loads: list[LoadRecord]) -> Freshness:
    """`loads`: RAW's loads, newest first."""
    from fhirflow.transform import consistency

    complete = [r for r in loads if r.status == "complete"]
    newest = complete[0] if complete else None
    ledger = consistency.read_ledger(consistency.ledger_path(settings.state_dir),
                                     settings.resolved_dbt_target)
    marts = {uid: b for uid, b in ledger.items() if ".dim_" in uid or ".fct_" in uid}
    built = [b for b in marts.values() if b.ok and b.load]
    all_ok = bool(marts) and len(built) == len(marts)
    marts_load = min(b.load for b in built) if all_ok else None
    if marts_load == consistency.NO_LOAD:
        marts_load = None
    behind = [r for r in complete if marts_load is None or r.load_id > marts_load]
    finished = newest.finished_at if newest else None
    if finished is not None and finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)  # RAW stores UTC without a zone
    return Freshness(
        raw_loaded_at=finished.isoformat() if finished else None,
        raw_load=newest.load_id if newest else None,
        marts_built_at=max(b.at for b in built) if all_ok else None,
        marts_load=marts_load,
        marts_behind_raw=bool(behind),
        loads_not_in_marts=len(behind),
    )


@dataclass
class Status:
    home: Path
    warehouse: str
    raw: dict[str, int]
    loads: list[LoadRecord]
    layers: dict[str, dict[str, int]]
    freshness: Freshness | None = None

    @property
    def models(self) -> dict[str, int]:
        return {name: n for per_layer in self.layers.values() for name, n in per_layer.items()}

    landing: dict[str, Any] | None = None  # the last --from-dir ingest: skipped files, warnings

    def as_dict(self) -> dict[str, Any]:
        return {"home": str(self.home), "warehouse": self.warehouse, "raw": self.raw,
                "loads": [r.as_dict() for r in self.loads], "layers": self.layers,
                "models": self.models, "landing": self.landing,
                "freshness": self.freshness.as_dict() if self.freshness else None}


def status(settings: Settings, *, loads: int = 5) -> Status:
    """Recent loads from RAW.LOAD_WATERMARK, row counts per layer and the marts' freshness
    against RAW (read-only)."""
    if loads < 0:
        raise ConfigError(f"--loads must be zero or more, got {loads}")
    with _warehouse(settings, read_only=True) as warehouse, _reading_raw(warehouse):
        every = warehouse.recent_loads(max(loads, _FRESHNESS_LOADS))
        return Status(settings.home, settings.warehouse, warehouse.raw_counts(), every[:loads],
                      warehouse.model_counts(), landing=read_report(settings.state_dir),
                      freshness=freshness(settings, every))


@dataclass
class RunResult:
    landed: Generated | Landed
    uploaded: Uploaded
    loaded: Loaded
    transform: TransformResult
    status: Status
    report: ReportResult | None = None  # written when the build succeeded

    @property
    def success(self) -> bool:
        return self.transform.success


def run_once(settings: Settings, *, from_dir: Path | None = None,
             options: GenerateOptions | None = None, say: Say = _quiet) -> RunResult:
    """Every stage once: land `from_dir` (or generate with `options`), upload, load,
    transform; then the status."""
    if from_dir is not None:
        landed: Generated | Landed = land(settings, from_dir, say)
    elif options is not None:
        landed = generate(settings, options, say)
    else:
        raise ConfigError("nothing to land: pass --from-dir DIR or a number of --patients")
    uploaded = upload(settings, say)
    loaded = load(settings, say)
    transformed = transform(settings, say)
    result = RunResult(landed, uploaded, loaded, transformed, status(settings))
    if transformed.success:
        result.report = report(settings, say=say)
    return result


def report(settings: Settings, out_dir: Path | None = None, say: Say = _quiet) -> ReportResult:
    """The offline HTML report over the marts and data-quality models."""
    from fhirflow.report import build_report

    say("writing the report")
    return build_report(settings, out_dir)
