"""`fhirflow views`: run, compile and test SQL on FHIR v2 ViewDefinitions.

Registered on the main command with `main.add_command(views)`. Errors are one line on
stderr; an invalid view exits with code 2, other failures with 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from fhirflow.errors import FhirflowError
from fhirflow.views.compiler import DIALECTS, compile_view, load_view_file
from fhirflow.views.runner import FORMATS


def _settings() -> Any:
    """Settings from the root command's context (--home) when there is one."""
    from fhirflow.config import load_settings

    root = click.get_current_context().find_root().obj
    if root is not None and hasattr(root, "settings"):
        return root.settings()
    return load_settings()


def _guard(fn: Callable[..., None]) -> Callable[..., None]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except BrokenPipeError:
            # The reader (head, less) closed the pipe: stop quietly, as Unix tools do, and
            # keep Python's own flush at exit from failing on the closed pipe again.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except FhirflowError as exc:
            root = click.get_current_context().find_root().obj
            if getattr(root, "verbose", False):
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


@click.group("views")
def views() -> None:
    """SQL on FHIR v2 ViewDefinitions: flat tables from FHIR resources."""


@views.command("run")
@click.argument("view", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input", "inputs", multiple=True, type=click.Path(path_type=Path),
              help="NDJSON/JSON files, Bundles or folders of them (repeatable). "
                   "Without it, the view reads the warehouse.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="ndjson", show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of stdout (required for parquet).")
@_guard
def run(view: Path, inputs: tuple[Path, ...], fmt: str, out_path: Path | None) -> None:
    """Run VIEW (a ViewDefinition JSON file) and write its rows."""
    from fhirflow.views.runner import run_files, run_warehouse

    doc = load_view_file(view)
    if inputs:
        result = run_files(doc, list(inputs), fmt, out_path, sys.stdout)
        loaded = result.loaded
        if loaded is not None:
            note = (f"; skipped {len(loaded.skipped)} files that are not JSON"
                    if loaded.skipped else "")
            click.echo(f"{result.rows} rows from {loaded.resources} resources in "
                       f"{loaded.files} files{note}", err=True)
    else:
        result = run_warehouse(_settings(), doc, fmt, out_path, sys.stdout)
        click.echo(f"{result.rows} rows from the warehouse", err=True)


@views.command("compile")
@click.argument("view", type=click.Path(path_type=Path))
@click.option("--dialect", type=click.Choice(DIALECTS), default="duckdb", show_default=True)
@click.option("--dbt-models", "dbt_models", type=click.Path(file_okay=False, path_type=Path),
              help="VIEW is a folder of ViewDefinitions: write a dbt model for each into this "
                   "folder (and their dispatch macros beside the project's macros).")
@_guard
def compile_(view: Path, dialect: str, dbt_models: Path | None) -> None:
    """Print the SQL SELECT that VIEW compiles to, or write dbt models for a folder."""
    if dbt_models is not None:
        from fhirflow.views.dbt_models import write_dbt_models

        written = write_dbt_models(view, dbt_models)
        click.echo(f"wrote {len(written)} dbt models to {dbt_models}", err=True)
        return
    compiled = compile_view(load_view_file(view), dialect)
    click.echo(compiled.sql)


@views.command("test")
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@click.option("--dialect", type=click.Choice(DIALECTS), default="duckdb", show_default=True)
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the results here in the suite's test-report format.")
@_guard
def test(folder: Path, dialect: str, report_path: Path | None) -> None:
    """Run the SQL on FHIR test files in FOLDER (the HL7 suite's format)."""
    from fhirflow.views.suite import run_suite

    if dialect == "duckdb":
        import duckdb

        from fhirflow.views.engines import DuckDBEngine

        result = run_suite(DuckDBEngine(duckdb.connect()), folder)
    else:
        from fhirflow.views.connect import snowflake_connection
        from fhirflow.views.engines import SnowflakeEngine

        con = snowflake_connection(_settings())
        try:
            result = run_suite(SnowflakeEngine(con), folder)
        finally:
            con.close()
    if report_path is not None:
        report_path.write_text(json.dumps(result.report(), indent=2) + "\n")
    for failed in (r for r in result.results if not r.passed):
        click.echo(f"FAIL {failed.file}: {failed.name}: {failed.error}", err=True)
    click.echo(f"{dialect}: {result.passed}/{result.total} tests passed")
    if result.passed != result.total:
        sys.exit(1)
