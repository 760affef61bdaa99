"""One function per Airflow task, each a few lines over `fhirflow.pipeline`.

They take the task's Settings (from `connections.task_settings()`), log what they did, and
return a small dict for XCom (a task returning None pushes none).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from fhirflow import pipeline
from fhirflow.config import DagSettings, Settings
from fhirflow.errors import FhirflowError
from fhirflow.orchestration.schedules import run_key, seed_for_run
from fhirflow.store import StoredObject
from fhirflow.transform import summarise_run_results

log = logging.getLogger(__name__)

# The layers' own selections, which the remaining-tests task leaves out.
TAG_SELECTORS = ("tag:staging", "tag:intermediate", "tag:marts")

# --- generation and upload --------------------------------------------------------------------


def generate_for_run(settings: Settings, ds: DagSettings, *, dag_id: str, run_id: str,
                     logical_date: datetime | None = None) -> dict[str, Any]:
    """This run's patients into landing: the real Synthea when SYNTHEA_JAR is set, else the
    simulator; the seed follows the run, so a retry makes the same patients again."""
    seed = seed_for_run(ds.generation_seed, dag_id, run_key(logical_date, run_id))
    made = pipeline.generate(settings, pipeline.GenerateOptions(
        ds.generation_patients, seed, ds.generation_years, ds.generation_state, "auto",
        output_format=ds.generation_format), log.info)
    summary = {"engine": made.engine, "seed": seed, "patients": made.patients,
               "files": made.files, "bytes": made.bytes, "seconds": round(made.seconds, 2),
               "landing": str(made.landing_dir)}
    log.info("generated %(patients)s patients (%(engine)s, seed %(seed)s): %(files)s files, "
             "%(bytes)s bytes in %(seconds)ss into %(landing)s", summary)
    return summary


def upload_new_files(settings: Settings) -> dict[str, Any]:
    done = pipeline.upload(settings, log.info)
    r = done.result
    summary = {"store": done.store, "landed": r.landed, "uploaded": r.uploaded,
               "already_uploaded": r.already_uploaded, "bytes": r.bytes,
               "seconds": round(r.seconds, 2)}
    log.info("uploaded %(uploaded)s files (%(bytes)s bytes) to %(store)s; "
             "%(already_uploaded)s already there; %(landed)s landed", summary)
    return summary


def clean_landing_folder(settings: Settings) -> dict[str, Any]:
    """TTL clean-up: only files older than the TTL *and* held by the object store go."""
    done = pipeline.clean(settings, log.info)
    summary = {"removed": len(done.removed), "kept": len(done.kept),
               "kept_not_uploaded": done.kept_by_reason.get("not uploaded yet", 0)}
    log.info("landing clean-up (TTL %sh): removed %s, kept %s (%s not uploaded yet)",
             done.ttl_hours, summary["removed"], summary["kept"], summary["kept_not_uploaded"])
    return summary


# --- the seed's five load steps ---------------------------------------------------------------


def create_tables(settings: Settings) -> str:
    where = pipeline.create_raw_tables(settings)
    log.info("RAW tables ready in %s", where)
    return where


def last_watermark(settings: Settings) -> dict[str, str | None]:
    """{'watermark': key or None}: a dict, because a task returning None pushes no XCom."""
    mark = pipeline.last_watermark(settings)
    log.info("last committed watermark: %s", mark or "(none: nothing loaded yet)")
    return {"watermark": mark}


def list_new_files(settings: Settings, watermark: str | None, *, limit: int) -> dict[str, Any]:
    """New object keys after the watermark, capped at `limit` (the next run takes the rest)."""
    listing = pipeline.list_new(settings, watermark=watermark, limit=limit)
    log.info("%s new files in %s under %s; this run takes %s",
             len(listing.objects) + listing.remaining, listing.store,
             settings.patients_prefix, len(listing.objects))
    return {"files": [[o.key, o.size] for o in listing.objects], "remaining": listing.remaining}


def load_listed_files(settings: Settings, files: list[list[Any]]) -> dict[str, Any]:
    """Load the listed files in batches; each batch commits its rows and watermark together.

    Keys RAW already holds (a retry after some batches committed) are skipped, so a retry
    never loads a file twice.
    """
    def logged(batch: Any, done: int, total: int) -> None:
        log.info("batch %s: %s loaded, %s quarantined, watermark %s (%s/%s files)",
                 batch.load_id, batch.files_loaded, batch.files_failed, batch.watermark,
                 done, total)
        for error in batch.errors:
            log.warning("quarantined %s: %s", error.key, error.reason)

    objects = [StoredObject(key=str(key), size=int(size)) for key, size in files]
    done = pipeline.load(settings, log.info, objects=objects, progress=logged)
    if done.already_in_raw:
        log.info("%s files already in RAW (an earlier try loaded them); skipped",
                 done.already_in_raw)
    r = done.result
    summary = {"batches": len(r.batches), "files_loaded": r.files_loaded,
               "files_failed": r.files_failed, "bytes_loaded": r.bytes_loaded,
               "watermark": r.watermark, "seconds": round(r.seconds, 2)}
    log.info("load: %(files_loaded)s files in %(batches)s batches, %(files_failed)s "
             "quarantined in RAW.LOAD_ERRORS, %(seconds)ss", summary)
    return summary


def verify_watermark(settings: Settings, expected: str | None) -> dict[str, Any]:
    """Report the committed watermark; fail when it is behind what this run loaded."""
    found = pipeline.verify_watermark(settings, expected)
    raw = found.raw
    log.info("committed watermark: %s; RAW holds %s bundles, %s quarantined files, %s loads",
             found.watermark, raw.get("bundles"), raw.get("errors"), raw.get("loads"))
    for row in found.recent:
        log.info("recent load %(load_id)s: %(status)s, %(files_loaded)s loaded, "
                 "%(files_failed)s failed, watermark %(watermark)s", row.as_dict())
    return {"watermark": found.watermark, **raw}


# --- dbt --------------------------------------------------------------------------------------


def check_dbt(settings: Settings) -> dict[str, str]:
    """dbt and the adapter of the configured target are installed; the project is there."""
    found = pipeline.check_dbt(settings)
    log.info("dbt ready: %s", found)
    return found


def invoke_dbt(settings: Settings, command: str, *, target_path: Path | None = None) -> None:
    """A dbt command with no run results to summarise (deps, debug, docs generate)."""
    pipeline.dbt(settings, command, target_path=target_path)
    log.info("dbt %s succeeded", command)


def invoke_dbt_when_changed(settings: Settings, command: str) -> dict[str, Any]:
    """`dbt deps` / `dbt debug`, skipped when neither the project nor the profile changed
    since the last time it succeeded (a fingerprint in state/dbt/checked.json): every run
    would otherwise repeat the same work."""
    from fhirflow.transform.fingerprint import record_success, unchanged_since

    since = unchanged_since(settings, command)
    if since is not None:
        log.info("dbt %s: project and profile unchanged since it succeeded at %s; skipped",
                 command, since)
        return {"command": command, "ran": False, "unchanged_since": since}
    invoke_dbt(settings, command)
    record_success(settings, command)
    return {"command": command, "ran": True}


def run_dbt_layer(settings: Settings, layer: str) -> dict[str, Any]:
    """Build one layer without its tests (or, for `test`, run every test).

    Refused before dbt starts when the layer would read an upstream layer that is behind
    (see fhirflow.transform.consistency). Model and test failures are left to the parse
    task that follows (it logs them in detail, then fails the run); only a dbt that cannot
    run at all, or a refused build, fails here.
    """
    from fhirflow.orchestration.docs import forget_builds, keep_build_manifest, seed_partial_parse
    from fhirflow.transform import dbt_target_path

    if layer == "staging":
        forget_builds(settings)  # a new run: the docs take SQL from its builds only
    # RAW's newest load before dbt starts: the build reads that load or a newer one, so
    # whoever follows a bundle to the marts (bench_airflow_latency.py) never counts it early.
    built_from = pipeline.raw_load(settings) if not layer.startswith("test") else None
    # A first run: start from the shared parse the DAG file made (the DAG imports it)
    seed_partial_parse(settings, dbt_target_path(settings))
    if layer == "test":
        result = pipeline.transform(settings, log.info, mode="tests")
    elif layer == "test-remaining":
        # After the Cosmos layer groups, which ran every test of their models: the tests of
        # nothing they built (RAW's own source tests).
        result = pipeline.transform(settings, log.info, mode="tests",
                                    exclude=" ".join(["resource_type:seed",
                                                      *TAG_SELECTORS]))
    else:
        result = pipeline.transform(settings, log.info, layer=layer, mode="models")
    # What this invocation compiled, for the docs (dbt writes its manifest.json even when a
    # model failed; the docs task compiles what is missing).
    keep_build_manifest(settings, result.target_path or dbt_target_path(settings),
                        "test" if layer.startswith("test") else layer)
    log.info("dbt %s %s finished in %.1fs: %s", result.command, layer, result.seconds,
             "success" if result.success else "with failures")
    return {"command": result.command, "layer": layer, "success": result.success,
            "seconds": round(result.seconds, 2), "target_path": str(result.target_path),
            "raw_load": built_from}


def parse_dbt_results(target_path: Path | str, layer: str, *, tests: bool = False
                      ) -> dict[str, Any]:
    """Log per-layer successes, failures, skips and seconds per model from run_results.json,
    and fail when a model (or, for `tests`, a test) failed."""
    result = summarise_run_results(Path(target_path))
    report: dict[str, Any] = {}
    for name, s in result.layers.items():
        report[name] = {
            "models_ok": s.models_ok, "models_failed": s.models_failed,
            "models_skipped": s.models_skipped, "tests_passed": s.tests_passed,
            "tests_failed": s.tests_failed, "tests_warned": s.tests_warned,
            "seconds": round(s.seconds, 2),
        }
        if tests:
            log.info("[%s] tests: %s passed, %s failed, %s warned (%.1fs)", name,
                     s.tests_passed, s.tests_failed, s.tests_warned, s.seconds)
        else:
            log.info("[%s] models: %s succeeded, %s failed, %s skipped (%.1fs)", name,
                     s.models_ok, s.models_failed, s.models_skipped, s.seconds)
        for model, seconds in sorted(s.model_seconds.items(), key=lambda kv: -kv[1]):
            log.info("[%s]   %-40s %7.2fs", name, model, seconds)
    failures = result.failures
    for failure in failures:
        log.error("%s", failure)
    if failures:
        raise FhirflowError(f"dbt {layer}: {len(failures)} failed: {'; '.join(failures[:5])}")
    return {"layer": layer, "layers": report}


def check_raw_freshness(settings: Settings, ds: DagSettings) -> dict[str, Any]:
    """`dbt source freshness` on RAW.FHIR_BUNDLES; fails when its newest load is older than
    FHIRFLOW_RAW_FRESHNESS_MINUTES (RAW has stopped changing: generation, upload or load
    is stuck)."""
    from fhirflow.transform.freshness import source_freshness

    found = source_freshness(settings, error_after_minutes=ds.raw_freshness_minutes)
    if found.max_loaded_at is None:
        # A fresh deployment: nothing was loaded yet, so nothing has stopped changing.
        log.info("RAW holds no load yet; nothing to check")
        return found.as_dict()
    log.info("RAW freshness: %s (newest load %s, %.0f min ago; fails after %s min)",
             found.status, found.max_loaded_at, found.age_minutes, ds.raw_freshness_minutes)
    if found.status not in {"pass", "warn"}:
        raise FhirflowError(
            f"RAW is stale: its newest load is {found.age_minutes:.0f} min old (limit "
            f"{ds.raw_freshness_minutes} min, FHIRFLOW_RAW_FRESHNESS_MINUTES); check the "
            "generation, upload and load DAGs")
    return found.as_dict()


def docs_dir(settings: Settings, ds: DagSettings) -> Path:
    from fhirflow.transform import dbt_project_dir

    return ds.dbt_docs_dir or dbt_project_dir(settings) / "target"


def generate_docs(settings: Settings, ds: DagSettings) -> str:
    """dbt's docs site; without compiling the project again when this run's builds compiled
    every node (`orchestration.docs`)."""
    from fhirflow.orchestration.docs import prepare_no_compile

    target = docs_dir(settings, ds)
    missing = prepare_no_compile(settings, target)
    if missing:
        log.info("dbt docs: %d nodes not compiled by this run's builds (%s); dbt compiles "
                 "the project", len(missing), ", ".join(m.split(".")[-1] for m in missing[:3]))
    invoke_dbt(settings, "docs generate --no-compile" if not missing else "docs generate",
               target_path=target)
    index = target / "index.html"
    if not index.is_file():
        raise FhirflowError(f"dbt docs generate wrote no {index}")
    log.info("dbt docs written to %s (serve: dbt docs serve --target-path %s)", index, target)
    return str(index)


def write_report(settings: Settings) -> str:
    """The offline HTML report over the marts just built; its path."""
    from fhirflow import pipeline

    path = pipeline.report(settings).path
    log.info("report written to %s", path)
    return str(path)
