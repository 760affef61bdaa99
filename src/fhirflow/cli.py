"""The `fhirflow` command. Thin: each subcommand calls one module and prints a summary."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from fhirflow import pipeline
from fhirflow.config import Settings, load_settings
from fhirflow.errors import FhirflowError

out = Console()
err = Console(stderr=True)


class Context:
    def __init__(self, verbose: bool, overrides: dict[str, Any]) -> None:
        self.verbose = verbose
        self.overrides = overrides

    def settings(self, **more: Any) -> Settings:
        return load_settings(**{**self.overrides, **more})

    def say(self, message: str) -> None:
        err.print(f"[dim]·[/dim] {message}")


def _guard(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn user-facing errors into one line on stderr and a non-zero exit code."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        ctx = click.get_current_context().find_object(Context)
        try:
            fn(*args, **kwargs)
        except FhirflowError as exc:
            if ctx and ctx.verbose:
                traceback.print_exc()
            err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group()
@click.option("--home", type=click.Path(path_type=Path), help="State folder (FHIRFLOW_HOME).")
@click.option("--verbose", is_flag=True, help="Show stack traces on errors.")
@click.pass_context
def main(click_ctx: click.Context, home: Path | None, verbose: bool) -> None:
    """fhirflow: synthetic FHIR R4 patients into an analytics star schema."""
    click_ctx.obj = Context(verbose, {"home": home})


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    return table


def _fmt_mb(value: float | None) -> str | None:
    return None if value is None else f"{value:,.1f}"


def _print_stages(rows: list[pipeline.StageRow]) -> None:
    out.print(_table(
        "Stages", ["stage", "files", "rows", "MB", "seconds", "note"],
        [[r.stage, r.files, r.rows, _fmt_mb(r.megabytes), f"{r.seconds:.1f}", r.note]
         for r in rows],
    ))


def _print_layers(raw: dict[str, int], layers: dict[str, dict[str, int]]) -> None:
    rows: list[list[Any]] = [
        ["raw", "fhir_bundles", raw.get("bundles")],
        ["raw", "fhir_resources", raw.get("resources")],
        ["raw", "load_errors", raw.get("errors")],
        ["raw", "entry_errors", raw.get("entry_errors")],
    ]
    for layer, models in layers.items():
        for name, count in models.items():
            rows.append([layer, name, count])
    out.print(_table("Rows per layer", ["layer", "relation", "rows"], rows))


def _print_transform(result: Any) -> None:
    rows = []
    for s in result.layers.values():
        rows.append([s.layer, s.models_ok, s.models_failed, s.models_skipped, s.tests_passed,
                     s.tests_failed, f"{s.seconds:.1f}"])
    out.print(_table("dbt", ["layer", "models ok", "failed", "skipped", "tests passed",
                             "tests failed", "seconds"], rows))
    for failure in result.failures:
        err.print(f"[red]failed:[/red] {failure}", highlight=False)


@main.command()
@click.option("--from-dir", type=click.Path(path_type=Path),
              help="Ingest an existing Synthea output folder instead of generating.")
@click.option("--patients", type=click.IntRange(min=1), default=20, show_default=True,
              help="Patients to generate when --from-dir is not given.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--years-of-history", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--state", default="Massachusetts", show_default=True)
@click.pass_obj
@_guard
def run(obj: Context, from_dir: Path | None, patients: int, seed: int,
        years_of_history: int, state: str) -> None:
    """Run every stage once: land, upload, load, transform."""
    settings = obj.settings()
    gen = None if from_dir else pipeline.GenerateOptions(patients, seed, years_of_history, state)
    result = pipeline.run_once(settings, from_dir=from_dir, generate=gen, say=obj.say)
    if result.transform:
        _print_transform(result.transform)
    _print_layers(result.raw_counts, result.layer_rows)
    _print_stages(result.stages)
    if not result.success:
        raise FhirflowError("dbt reported failures (above); see "
                            f"{result.transform.target_path}/run_results.json")


@main.command()
@click.option("--patients", "-p", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--seed", "-s", type=int, default=42, show_default=True,
              help="Same arguments, same seed: byte-identical files.")
@click.option("--years-of-history", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--state", default="Massachusetts", show_default=True)
@click.option("--engine", type=click.Choice(["fhirflow", "synthea"]), default="fhirflow",
              show_default=True, help="Our Python generator, or the real Synthea jar.")
@click.option("--synthea-jar", type=click.Path(path_type=Path),
              help="Path to synthea-with-dependencies.jar (SYNTHEA_JAR).")
@click.pass_obj
@_guard
def generate(obj: Context, patients: int, seed: int, years_of_history: int, state: str,
             engine: str, synthea_jar: Path | None) -> None:
    """Write patient bundles (and the run's hospital/practitioner bundles) into landing."""
    import time

    from fhirflow import generate as gen

    settings = obj.settings(synthea_jar=synthea_jar)
    started = time.perf_counter()
    if engine == "synthea":
        if settings.synthea_jar is None:
            raise FhirflowError("--engine synthea needs --synthea-jar PATH or SYNTHEA_JAR")
        obj.say(f"running Synthea {settings.synthea_jar} for {patients} patients")
        result = gen.run_synthea(settings.landing_dir, jar=settings.synthea_jar,
                                 patients=patients, seed=seed,
                                 years_of_history=years_of_history, state=state)
    else:
        obj.say(f"generating {patients} patients (seed {seed})")
        result = gen.generate_patients(settings.landing_dir, patients=patients, seed=seed,
                                       years_of_history=years_of_history, state=state)
    _print_stages([pipeline.StageRow("generate", result.files, result.patients,
                                     result.bytes / 1e6, time.perf_counter() - started,
                                     f"into {settings.landing_dir}")])


@main.command()
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.pass_obj
@_guard
def clean(obj: Context, dry_run: bool) -> None:
    """Remove landed files older than FHIRFLOW_LANDING_TTL_HOURS that the store holds."""
    from fhirflow.landing import clean_landing
    from fhirflow.store import open_store
    from fhirflow.upload import is_uploaded

    settings = obj.settings()
    uploaded = is_uploaded(settings.state_dir, open_store(settings))
    result = clean_landing(settings.landing_dir, settings.landing_ttl_hours, uploaded,
                           dry_run=dry_run)
    reasons: dict[str, int] = {}
    for _path, reason in result.kept:
        reasons[reason] = reasons.get(reason, 0) + 1
    rows = [["removed" if not dry_run else "would remove", len(result.removed)]]
    rows += [[f"kept: {reason}", n] for reason, n in sorted(reasons.items())]
    out.print(_table(f"Landing clean-up ({settings.landing_ttl_hours:g} h TTL)",
                     ["outcome", "files"], rows))
    if obj.verbose:
        for path in result.removed:
            err.print(f"removed {path}", highlight=False)
        for path, reason in result.kept:
            err.print(f"kept {path}: {reason}", highlight=False)


def _progress(in_bytes: bool = True) -> Progress:
    """A progress bar on stderr (bytes, or files when in_bytes is False)."""
    amount = (DownloadColumn(), TransferSpeedColumn()) if in_bytes else (MofNCompleteColumn(),)
    return Progress(TextColumn("{task.description}"), BarColumn(), *amount,
                    TimeRemainingColumn(), console=err, transient=True)


@main.command()
@click.option("--store", type=click.Choice(["local", "s3"]), help="Object store (FHIRFLOW_STORE).")
@click.pass_obj
@_guard
def upload(obj: Context, store: str | None) -> None:
    """Upload landed bundles to the object store (only what it does not hold yet)."""
    settings = obj.settings(store=store)
    with _progress() as bar:
        task = bar.add_task("upload", total=None)

        def advance(files: int, total_files: int, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total,
                       description=f"upload {files}/{total_files} files")

        row, _ = pipeline.upload(settings, obj.say, progress=advance)
    _print_stages([row])


@main.command()
@click.option("--warehouse", type=click.Choice(["duckdb", "snowflake"]),
              help="Warehouse (FHIRFLOW_WAREHOUSE).")
@click.option("--store", type=click.Choice(["local", "s3"]), help="Object store (FHIRFLOW_STORE).")
@click.pass_obj
@_guard
def load(obj: Context, warehouse: str | None, store: str | None) -> None:
    """Load new files from the object store into RAW, batch by batch."""
    settings = obj.settings(warehouse=warehouse, store=store)
    with _progress(in_bytes=False) as bar:
        task = bar.add_task("load", total=None)

        def advance(batch: Any, files: int, total_files: int) -> None:
            bar.update(task, completed=files, total=total_files,
                       description="load")

        row, result = pipeline.load(settings, obj.say, progress=advance)
    _print_stages([row])
    for batch in result.batches:
        for rejected in batch.errors:
            err.print(f"[yellow]quarantined[/yellow] {rejected.key}: {rejected.reason}",
                      highlight=False)
        for entry in batch.entry_errors:
            err.print(f"[yellow]quarantined[/yellow] {entry.key} {entry.where()}: "
                      f"{entry.reason}", highlight=False)


@main.command()
@click.option("--select", "select", help="dbt selection, e.g. tag:staging or stg_patients+.")
@click.option("--layer", type=click.Choice(["staging", "intermediate", "marts"]),
              help="Shorthand for --select tag:<layer>.")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from RAW.")
@click.option("--warehouse", type=click.Choice(["duckdb", "snowflake"]))
@click.pass_obj
@_guard
def transform(obj: Context, select: str | None, layer: str | None, full_refresh: bool,
              warehouse: str | None) -> None:
    """Run dbt build (models and tests) and summarise it per layer."""
    settings = obj.settings(warehouse=warehouse)
    if layer:
        select = f"tag:{layer}"
    _row, result = pipeline.transform(settings, obj.say, select=select,
                                      full_refresh=full_refresh)
    _print_transform(result)
    if not result.success:
        raise FhirflowError(f"dbt reported failures; see {result.target_path}/run_results.json")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--loads", default=5, show_default=True, help="How many recent loads to list.")
@click.pass_obj
@_guard
def status(obj: Context, as_json: bool, loads: int) -> None:
    """Recent loads from RAW.LOAD_WATERMARK and row counts per layer."""
    from fhirflow.warehouse import open_warehouse

    settings = obj.settings()
    warehouse = open_warehouse(settings, read_only=settings.warehouse == "duckdb")
    try:
        recent = warehouse.recent_loads(loads)
        raw = warehouse.raw_counts()
        layers = warehouse.model_counts()
    finally:
        warehouse.close()
    if as_json:
        models = {name: n for per_layer in layers.values() for name, n in per_layer.items()}
        doc = {
            "home": str(settings.home),
            "warehouse": settings.warehouse,
            "raw": raw,
            "loads": [r.as_dict() for r in recent],
            "layers": layers,
            "models": models,
        }
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    out.print(_table("Recent loads", ["load_id", "finished (UTC)", "files", "loaded", "failed",
                                      "MB", "watermark", "status"],
                     [[r.load_id, r.finished_at, r.files_seen, r.files_loaded, r.files_failed,
                       _fmt_mb(r.bytes_loaded / 1e6), r.watermark, r.status] for r in recent]))
    _print_layers(raw, layers)


@main.command("export-csv")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the 18 CSV files (created if missing).")
@click.option("--table", "tables", multiple=True, help="Export only this table (repeatable).")
@click.option("--warehouse", type=click.Choice(["duckdb", "snowflake"]))
@click.pass_obj
@_guard
def export_csv(obj: Context, out_dir: Path, tables: tuple[str, ...],
               warehouse: str | None) -> None:
    """Write the staging layer as Synthea's CSV tables (newest 3.x headers)."""
    from fhirflow.export_csv import export_csv as run_export

    settings = obj.settings(warehouse=warehouse)
    obj.say(f"exporting Synthea CSV tables to {out_dir}")
    result = run_export(settings, out_dir, tables or None)
    out.print(_table(f"Synthea CSV in {out_dir} ({result.seconds:.1f} s)", ["table", "rows"],
                     [[name, count] for name, count in result.rows.items()]))


if __name__ == "__main__":  # pragma: no cover
    main()
