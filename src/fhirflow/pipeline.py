"""One pass of every stage, in order, each reading what the previous one stored.

Used by `fhirflow run` and by the end-to-end tests. Stages hand nothing to each other in
memory: generate/ingest writes the landing folder, upload reads it, load reads the object
store, dbt reads RAW.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fhirflow.config import Settings
from fhirflow.errors import FhirflowError
from fhirflow.landing import ingest_synthea_output
from fhirflow.load import LoadProgress, LoadResult, run_load
from fhirflow.store import open_store
from fhirflow.transform import TransformResult, run_dbt
from fhirflow.upload import Progress as UploadProgress
from fhirflow.upload import UploadResult, upload_landing
from fhirflow.warehouse import open_warehouse


@dataclass
class StageRow:
    stage: str
    files: int | None
    rows: int | None
    megabytes: float | None
    seconds: float
    note: str = ""


@dataclass
class PipelineResult:
    stages: list[StageRow] = field(default_factory=list)
    transform: TransformResult | None = None
    layer_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    raw_counts: dict[str, int] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.transform is None or self.transform.success


@dataclass(frozen=True)
class GenerateOptions:
    patients: int
    seed: int
    years_of_history: int
    state: str


Say = Callable[[str], None]


def _mb(n: int) -> float:
    return n / 1_000_000


def land(settings: Settings, *, from_dir: Path | None, generate: GenerateOptions | None,
         say: Say) -> StageRow:
    started = time.perf_counter()
    if from_dir is not None:
        say(f"landing Synthea output from {from_dir}")
        ingested = ingest_synthea_output(from_dir, settings.landing_dir)
        return StageRow("land (--from-dir)", ingested.copied + ingested.unchanged,
                        len(ingested.patients), _mb(ingested.bytes),
                        time.perf_counter() - started,
                        f"{ingested.copied} new, {ingested.unchanged} already landed")
    if generate is None:
        raise FhirflowError("nothing to land: pass --from-dir DIR or a number of --patients")
    from fhirflow.generate import generate_patients

    say(f"generating {generate.patients} patients (seed {generate.seed})")
    made = generate_patients(
        settings.landing_dir,
        patients=generate.patients,
        seed=generate.seed,
        years_of_history=generate.years_of_history,
        state=generate.state,
    )
    return StageRow("generate", made.files, made.patients, _mb(made.bytes),
                    time.perf_counter() - started, f"{made.patients} patients")


def upload(settings: Settings, say: Say, store_kind: str | None = None, *,
           progress: UploadProgress | None = None) -> tuple[StageRow, UploadResult]:
    store = open_store(settings, store_kind)
    say(f"uploading to {store.description}")
    result = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir, workers=settings.upload_workers,
                            progress=progress)
    row = StageRow("upload", result.uploaded, None, _mb(result.bytes), result.seconds,
                   f"{result.already_uploaded} already uploaded")
    return row, result


def load(settings: Settings, say: Say, *, store_kind: str | None = None,
         warehouse_kind: str | None = None,
         progress: LoadProgress | None = None) -> tuple[StageRow, LoadResult]:
    store = open_store(settings, store_kind)
    warehouse = open_warehouse(settings, warehouse_kind)
    try:
        say(f"loading new files into {warehouse.description}")
        result = run_load(
            store, warehouse,
            prefix=settings.patients_prefix,
            batch_size=settings.load_batch_size,
            max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
            progress=progress,
        )
    finally:
        warehouse.close()
    note = f"{len(result.batches)} batches"
    if result.files_failed:
        note += f", {result.files_failed} files quarantined in RAW.LOAD_ERRORS"
    if result.entries_rejected:
        note += f", {result.entries_rejected} entries quarantined in RAW.ENTRY_ERRORS"
    row = StageRow("load", result.files_loaded, result.entries_loaded,
                   _mb(result.bytes_loaded), result.seconds, note)
    return row, result


def transform(settings: Settings, say: Say, *, select: str | None = None,
              full_refresh: bool = False) -> tuple[StageRow, TransformResult]:
    say("running dbt build")
    result = run_dbt(settings, "build", select=select, full_refresh=full_refresh)
    models = sum(s.models_ok for name, s in result.layers.items() if name != "seeds")
    tests = sum(s.tests_passed for s in result.layers.values())
    note = f"{models} models, {tests} tests passed"
    if result.failures:
        note += f", {len(result.failures)} failed"
    return StageRow("transform (dbt)", None, None, None, result.seconds, note), result


def run_once(
    settings: Settings,
    *,
    from_dir: Path | None = None,
    generate: GenerateOptions | None = None,
    say: Say = lambda _msg: None,
) -> PipelineResult:
    result = PipelineResult()
    result.stages.append(land(settings, from_dir=from_dir, generate=generate, say=say))
    result.stages.append(upload(settings, say)[0])
    result.stages.append(load(settings, say)[0])
    row, result.transform = transform(settings, say)
    result.stages.append(row)
    # Not read-only: dbt-duckdb keeps its read-write connection open in this process, and
    # DuckDB refuses a second connection to the same file with another configuration.
    warehouse = open_warehouse(settings)
    try:
        result.raw_counts = warehouse.raw_counts()
        result.layer_rows = warehouse.model_counts()
    finally:
        warehouse.close()
    return result
