"""The `fhirflow` command: parses arguments, calls `fhirflow.pipeline`, prints the results.

Conventions of dbt and dlt: `-h`/`--help`, `--version`, global options (`--home`,
`--verbose`) before or after the subcommand, and every error one line on stderr with a
non-zero exit (2 for a usage or configuration mistake); stack traces only with --verbose.
Another command group joins with one line, `main.add_command(group)`: its commands get the
global options too, and a `Context` through `@click.pass_obj` (`obj.settings()`).
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import click
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
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
from fhirflow.doctor.cli import doctor as doctor_command
from fhirflow.errors import ConfigError, FhirflowError, first_line
from fhirflow.pipeline import plural
from fhirflow.report.cli import report as report_command
from fhirflow.views.cli import views as views_command

out = Console()
err = Console(stderr=True)

WAREHOUSES = click.Choice(["duckdb", "snowflake"])
STORES = click.Choice(["local", "s3"])


class Context:
    """What every subcommand gets through `@click.pass_obj`."""

    def __init__(self, verbose: bool, overrides: dict[str, Any]) -> None:
        self.verbose = verbose
        self.overrides = overrides

    def settings(self, **more: Any) -> Settings:
        return load_settings(**{**self.overrides, **more})

    def say(self, message: str) -> None:
        err.print(f"[dim]·[/dim] {escape(message)}", highlight=False, soft_wrap=True)


def _hoist(args: list[str]) -> list[str]:
    """Global options moved in front of the subcommand, wherever the user put them."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg == "--verbose" or arg.startswith("--home="):
            front.append(arg)
        elif arg == "--home":
            if i + 1 == len(args):
                raise click.UsageError("Option '--home' requires an argument.")
            front += args[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _error(message: str) -> None:
    err.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)


class FhirflowGroup(click.Group):
    """Global options anywhere on the line; every failure one line on stderr."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _hoist(args))

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        verbose = "--verbose" in argv[: argv.index("--")] if "--" in argv else "--verbose" in argv
        try:
            code = super().main(argv, prog_name or "fhirflow", complete_var,
                                standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else self.get_help(click.Context(self)))
            code = 0
        except click.ClickException as exc:  # usage mistakes: unknown option, bad value
            where = getattr(exc, "ctx", None)
            hint = f" (see `{where.command_path} -h`)" if where is not None else ""
            _error(f"{exc.format_message()}{hint}")
            code = exc.exit_code
        except (click.exceptions.Abort, KeyboardInterrupt):
            _error("interrupted")
            code = 130
        except FhirflowError as exc:
            if verbose:
                traceback.print_exc()
            _error(str(exc))
            code = exc.exit_code
        except Exception as exc:  # noqa: BLE001 - a bug of ours: still one line by default
            if verbose:
                traceback.print_exc()
            _error(f"unexpected {type(exc).__name__}: {first_line(exc)} "
                   "(run with --verbose for the traceback)")
            code = 1
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


@click.group("fhirflow", cls=FhirflowGroup,
             context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Global options may also follow the command: fhirflow status --home DIR.")
@click.version_option(package_name="fhirflow", prog_name="fhirflow",
                      message="%(prog)s %(version)s")
@click.option("--home", type=click.Path(path_type=Path), help="State folder (FHIRFLOW_HOME).")
@click.option("--verbose", is_flag=True, help="Show stack traces on errors.")
@click.pass_context
def main(click_ctx: click.Context, home: Path | None, verbose: bool) -> None:
    """fhirflow: synthetic FHIR R4 patients into an analytics star schema."""
    click_ctx.obj = Context(verbose, {"home": home})


# --- printing --------------------------------------------------------------------------------


_NUMBER = re.compile(r"-?[\d,]+(\.\d+)?")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    """Numbers right-aligned, text left-aligned."""
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        numeric = all(v is None or _NUMBER.fullmatch(str(v)) for v in (r[i] for r in rows))
        table.add_column(name, justify="right" if numeric and rows else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else escape(str(v)) for v in row])
    return table


def _show(table: Table) -> None:
    """Print a table whole: wider than the terminal (or the 80 columns of a pipe) rather
    than cut with `…`, so object keys and paths can be copied from it."""
    natural = Measurement.get(out, out.options.update_width(100_000), table).maximum
    if natural <= out.width:
        out.print(table)
        return
    width = out.width
    out.width = natural
    try:
        out.print(table)
    finally:
        out.width = width


def _mb(value: float | None) -> str | None:
    return None if value is None else f"{value / 1e6:,.1f}"


def _stage_rows(*results: Any) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for r in results:
        if isinstance(r, pipeline.Generated):
            name = "generate" if r.engine == "simulator" else "generate (synthea)"
            rows.append([name, r.files, _mb(r.bytes), r.seconds,
                         f"{plural(r.patients, 'patient')} into {r.landing_dir}"])
        elif isinstance(r, pipeline.Landed):
            rows.append(["land (--from-dir)", r.files, _mb(r.bytes), r.seconds,
                         f"{plural(r.patients, 'patient')}: {r.ingest.note()}"])
        elif isinstance(r, pipeline.Uploaded):
            rows.append(["upload", r.result.uploaded, _mb(r.result.bytes), r.result.seconds,
                         r.result.note()])
        elif isinstance(r, pipeline.Loaded):
            note = plural(len(r.result.batches), "batch", "batches")
            if r.result.files_failed:
                note += (f", {plural(r.result.files_failed, 'file')} quarantined in "
                         "RAW.LOAD_ERRORS")
            if r.result.entries_rejected:
                note += (f", {plural(r.result.entries_rejected, 'entry', 'entries')} "
                         "quarantined in RAW.ENTRY_ERRORS")
            rows.append(["load", r.result.files_loaded, _mb(r.result.bytes_loaded),
                         r.result.seconds, note])
        else:  # TransformResult
            note = f"{plural(r.models_ok, 'model')}, {plural(r.tests_passed, 'test')} passed"
            if r.failures:
                note += f", {len(r.failures):,} failed"
            rows.append(["transform (dbt)", None, None, r.seconds, note])
    return [[*row[:3], f"{row[3]:.1f}", row[4]] for row in rows]


def _print_stages(*results: Any) -> None:
    _show(_table("Stages", ["stage", "files", "MB", "seconds", "note"], _stage_rows(*results)))
    for r in results:
        skipped = (r.ingest.skipped if isinstance(r, pipeline.Landed)
                   else r.result.skipped if isinstance(r, pipeline.Uploaded) else [])
        for item in skipped:
            err.print(f"[yellow]skipped[/yellow] {escape(str(item.path))}: {escape(item.reason)}",
                      highlight=False, soft_wrap=True)
        for warning in r.ingest.warnings if isinstance(r, pipeline.Landed) else []:
            err.print(f"[yellow]warning[/yellow] {escape(str(warning.path))}: "
                      f"{escape(warning.kind)}: {escape(warning.detail)}",
                      highlight=False, soft_wrap=True)


def _print_layers(status: pipeline.Status) -> None:
    rows: list[list[Any]] = [
        ["raw", "fhir_bundles", status.raw.get("bundles")],
        ["raw", "fhir_resources", status.raw.get("resources")],
        ["raw", "load_errors", status.raw.get("errors")],
        ["raw", "entry_errors", status.raw.get("entry_errors")],
    ]
    for layer, models in status.layers.items():
        rows += [[layer, name, count] for name, count in models.items()]
    _show(_table("Rows per layer", ["layer", "relation", "rows"], rows))


def _print_transform(result: Any) -> None:
    rows = [[s.layer, s.models_ok, s.models_failed, s.models_skipped, s.tests_passed,
             s.tests_failed, f"{s.seconds:.1f}"] for s in result.layers.values()]
    _show(_table("dbt", ["layer", "models ok", "failed", "skipped", "tests passed",
                         "tests failed", "seconds"], rows))
    for failure in result.failures:
        err.print(f"[red]failed:[/red] {escape(failure)}", highlight=False, soft_wrap=True)


def _progress(in_bytes: bool = True) -> Progress:
    """A progress bar on stderr (bytes, or files when in_bytes is False)."""
    amount = (DownloadColumn(), TransferSpeedColumn()) if in_bytes else (MofNCompleteColumn(),)
    return Progress(TextColumn("{task.description}"), BarColumn(), *amount,
                    TimeRemainingColumn(), console=err, transient=True)


def _dbt_failed(result: Any) -> FhirflowError:
    return FhirflowError("dbt reported failures (above); see "
                         f"{result.target_path}/run_results.json")


# --- commands --------------------------------------------------------------------------------

_patients = click.option("--patients", "-p", type=click.IntRange(min=1), default=20,
                         show_default=True, help="Patients to generate.")
_seed = click.option("--seed", "-s", type=int, default=42, show_default=True,
                     help="Same arguments, same seed: byte-identical files.")
_years = click.option("--years-of-history", type=click.IntRange(min=1), default=10,
                      show_default=True)
_state = click.option("--state", default="Massachusetts", show_default=True)
_workers = click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Simulator processes (default: the cores available); the files "
                             "are the same whatever the number.")
_format = click.option("--format", "output_format",
                       type=click.Choice(["bundle", "ndjson", "ndjson.gz"]), default=None,
                       help="bundle (default): Synthea's transaction bundles; ndjson: a FHIR "
                            "Bulk Data export, one file per resource type (ndjson.gz: "
                            "gzip-compressed).")


def _output_format(chosen: str | None) -> pipeline.OutputFormat:
    return cast(pipeline.OutputFormat, chosen or "bundle")


@main.command()
@click.option("--from-dir", type=click.Path(path_type=Path),
              help="Ingest an existing Synthea output folder instead of generating.")
@_patients
@_seed
@_years
@_state
@_workers
@_format
@click.pass_obj
def run(obj: Context, from_dir: Path | None, patients: int, seed: int,
        years_of_history: int, state: str, workers: int | None,
        output_format: str | None) -> None:
    """Run every stage once: land, upload, load, transform."""
    if from_dir and output_format:
        raise ConfigError("--format applies to generated patients; --from-dir takes the "
                          "folder's files as they are")
    options = None if from_dir else pipeline.GenerateOptions(
        patients, seed, years_of_history, state, workers=workers,
        output_format=_output_format(output_format))
    result = pipeline.run_once(obj.settings(), from_dir=from_dir, options=options, say=obj.say)
    _print_transform(result.transform)
    _print_layers(result.status)
    _print_stages(result.landed, result.uploaded, result.loaded, result.transform)
    if not result.success:
        raise _dbt_failed(result.transform)
    if result.report is not None:
        out.print(f"report: {result.report.path}", highlight=False, soft_wrap=True)


@main.command()
@_patients
@_seed
@_years
@_state
@click.option("--engine", type=click.Choice(["simulator", "synthea", "fhirflow"]),
              default="simulator", show_default=True,
              help="The built-in simulator, or the real Synthea jar (`fhirflow` is the "
                   "simulator's old name).")
@click.option("--synthea-jar", type=click.Path(path_type=Path),
              help="Path to synthea-with-dependencies.jar (SYNTHEA_JAR).")
@_workers
@_format
@click.pass_obj
def generate(obj: Context, patients: int, seed: int, years_of_history: int, state: str,
             engine: str, synthea_jar: Path | None, workers: int | None,
             output_format: str | None) -> None:
    """Write patient bundles (and the run's hospital/practitioner bundles) into landing,
    or the same resources as Bulk NDJSON (--format ndjson)."""
    options = pipeline.GenerateOptions(patients, seed, years_of_history, state,
                                       "synthea" if engine == "synthea" else "simulator",
                                       workers=workers,
                                       output_format=_output_format(output_format))
    _print_stages(pipeline.generate(obj.settings(synthea_jar=synthea_jar), options, obj.say))


@main.command()
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.pass_obj
def clean(obj: Context, dry_run: bool) -> None:
    """Remove landed files older than FHIRFLOW_LANDING_TTL_HOURS that the store holds."""
    result = pipeline.clean(obj.settings(), obj.say, dry_run=dry_run)
    rows = [["would remove" if dry_run else "removed", len(result.removed)]]
    rows += [[f"kept: {reason}", n] for reason, n in result.kept_by_reason.items()]
    _show(_table(f"Landing clean-up ({result.ttl_hours:g} h TTL)", ["outcome", "files"], rows))
    if obj.verbose:
        for path in result.removed:
            err.print(f"removed {escape(path)}", highlight=False, soft_wrap=True)
        for path, reason in result.kept:
            err.print(f"kept {escape(path)}: {escape(reason)}", highlight=False, soft_wrap=True)


@main.command()
@click.option("--store", type=STORES, help="Object store (FHIRFLOW_STORE).")
@click.pass_obj
def upload(obj: Context, store: str | None) -> None:
    """Upload landed bundles to the object store (only what it does not hold yet)."""
    settings = obj.settings(store=store)
    with _progress() as bar:
        task = bar.add_task("upload", total=None)

        def advance(files: int, total_files: int, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total,
                       description=f"upload {files}/{total_files} files")

        result = pipeline.upload(settings, obj.say, progress=advance)
    _print_stages(result)


@main.command()
@click.option("--warehouse", type=WAREHOUSES, help="Warehouse (FHIRFLOW_WAREHOUSE).")
@click.option("--store", type=STORES, help="Object store (FHIRFLOW_STORE).")
@click.pass_obj
def load(obj: Context, warehouse: str | None, store: str | None) -> None:
    """Load new files from the object store into RAW, batch by batch."""
    settings = obj.settings(warehouse=warehouse, store=store)
    with _progress(in_bytes=False) as bar:
        task = bar.add_task("load", total=None)

        def advance(_batch: Any, files: int, total_files: int) -> None:
            bar.update(task, completed=files, total=total_files, description="load")

        result = pipeline.load(settings, obj.say, progress=advance)
    _print_stages(result)
    for batch in result.result.batches:
        for rejected in batch.errors:
            err.print(f"[yellow]quarantined[/yellow] {escape(rejected.key)}: "
                      f"{escape(rejected.reason)}", highlight=False, soft_wrap=True)
        for entry in batch.entry_errors:
            err.print(f"[yellow]quarantined[/yellow] {escape(entry.key)} {entry.where()}: "
                      f"{escape(entry.reason)}", highlight=False, soft_wrap=True)


@main.command()
@click.option("--select", "-s", "select",
              help="dbt node selection, e.g. stg_patients+ or +tag:marts.")
@click.option("--exclude", help="dbt nodes to leave out (dbt's --exclude).")
@click.option("--layer", type=click.Choice(["staging", "intermediate", "marts"]),
              help="One layer (--select tag:<layer>); refused when what it reads is behind.")
@click.option("--vars", "dbt_vars", help="dbt variables, YAML: '{staging_lookback_days: 3}'.")
@click.option("--target", help="dbt target in dbt/profiles.yml (FHIRFLOW_DBT_TARGET).")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from RAW.")
@click.option("--warehouse", type=WAREHOUSES, help="Warehouse (FHIRFLOW_WAREHOUSE).")
@click.pass_obj
def transform(obj: Context, select: str | None, exclude: str | None, layer: str | None,
              dbt_vars: str | None, target: str | None, full_refresh: bool,
              warehouse: str | None) -> None:
    """Run dbt build (models and tests) and summarise it per layer."""
    from fhirflow.transform import parse_vars

    settings = obj.settings(warehouse=warehouse, dbt_target=target)
    result = pipeline.transform(settings, obj.say, layer=layer, select=select, exclude=exclude,
                                dbt_vars=parse_vars(dbt_vars), full_refresh=full_refresh)
    _print_transform(result)
    if not result.success:
        raise _dbt_failed(result)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--loads", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many recent loads to list.")
@click.pass_obj
def status(obj: Context, as_json: bool, loads: int) -> None:
    """Recent loads from RAW.LOAD_WATERMARK and row counts per layer."""
    result = pipeline.status(obj.settings(), loads=loads)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    _show(_table("Recent loads", ["load_id", "finished (UTC)", "files", "loaded", "failed",
                                  "MB", "watermark", "status"],
                 [[r.load_id, r.finished_at, r.files_seen, r.files_loaded, r.files_failed,
                   _mb(r.bytes_loaded), r.watermark, r.status] for r in result.loads]))
    _print_layers(result)
    f = result.freshness
    if f is not None:
        _show(_table("Freshness", ["", "load", "at (UTC)"], [
            ["RAW's newest load", f.raw_load, f.raw_loaded_at],
            ["marts built from", f.marts_load or "(not built)", f.marts_built_at],
        ]))
        if f.marts_behind_raw:
            err.print(f"[yellow]marts are behind RAW:[/yellow] "
                      f"{plural(f.loads_not_in_marts, 'load')} not in the marts yet; run "
                      "`fhirflow transform`", highlight=False, soft_wrap=True)


@main.command("export-csv")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the 18 CSV files (created if missing).")
@click.option("--table", "tables", multiple=True, help="Export only this table (repeatable).")
@click.option("--warehouse", type=WAREHOUSES, help="Warehouse (FHIRFLOW_WAREHOUSE).")
@click.pass_obj
def export_csv(obj: Context, out_dir: Path, tables: tuple[str, ...],
               warehouse: str | None) -> None:
    """Write the staging layer as Synthea's CSV tables (newest 3.x headers)."""
    obj.say(f"exporting Synthea CSV tables to {out_dir}")
    result = pipeline.export_csv(obj.settings(warehouse=warehouse), out_dir, list(tables) or None)
    _show(_table(f"Synthea CSV in {out_dir} ({result.seconds:.1f} s)", ["table", "rows"],
                 [[name, count] for name, count in result.rows.items()]))


main.add_command(report_command)
main.add_command(views_command)
main.add_command(doctor_command)


if __name__ == "__main__":  # pragma: no cover
    main()
