"""`fhirflow report [--out DIR] [--open]`, registered on the `fhirflow` group by cli.py.

It takes its settings from the group's context object (so `--home` and `--verbose` apply)
and falls back to the environment alone when run on its own (tests, `python -m`).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from fhirflow.config import Settings, load_settings
from fhirflow.errors import FhirflowError


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.obj
    return obj.settings() if hasattr(obj, "settings") else load_settings()


@click.command("report")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for fhirflow-report.html (default: $FHIRFLOW_HOME/report).")
@click.option("--open", "open_it", is_flag=True,
              help="Open the report in the default browser when it is written.")
@click.pass_context
def report(ctx: click.Context, out_dir: Path | None, open_it: bool) -> None:
    """Write the offline HTML report: population, care, cost and data quality."""
    from fhirflow.report import build_report

    try:
        result = build_report(_settings(ctx), out_dir)
    except FhirflowError as exc:
        if getattr(ctx.obj, "verbose", False):
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    drawn = len(result.drawn)
    click.echo(f"report: {result.path} ({drawn} charts, {result.bytes / 1e6:.1f} MB, "
               f"{result.seconds:.1f} s)")
    for key, why in result.not_drawn.items():
        click.echo(f"  {key}: {why}", err=True)
    if open_it and click.launch(str(result.path)) != 0:
        click.echo(f"could not start a browser here; open {result.path} yourself", err=True)
