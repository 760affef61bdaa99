"""The `fhirflow doctor` command. cli.py registers it with `main.add_command(doctor)`; it then
gets `--home`/`--verbose` and the group's Context (`obj.settings()`)."""

from __future__ import annotations

import json
from typing import Any

import click

from fhirflow.errors import FhirflowError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option("--no-round-trip", is_flag=True,
              help="Skip the upload -> load -> dbt build of two generated patients.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, no_round_trip: bool) -> None:
    """Check this deployment: settings, store, warehouse, privileges, stage, dbt, and a round
    trip of two generated patients in scratch schemas. Exit code 1 if any check fails."""
    from fhirflow.config import load_settings
    from fhirflow.doctor import CheckResult, run_doctor

    try:
        # Under `fhirflow` the group's context carries --home; alone, the environment.
        parent: Any = ctx.obj
        settings = parent.settings() if hasattr(parent, "settings") else load_settings()
    except FhirflowError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(exc.exit_code)

    def show(check: CheckResult) -> None:
        if not as_json:
            click.echo(check.line())

    result = run_doctor(settings, round_trip=not no_round_trip, report=show)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        failed = sum(c.status == "fail" for c in result.checks)
        click.echo("all checks passed" if result.ok else f"{failed} check(s) failed")
    ctx.exit(0 if result.ok else 1)
